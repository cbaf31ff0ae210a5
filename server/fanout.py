"""Fan-out of live-session messages between server processes, through Redis.

With `TELEREHAB_REDIS_URL` set, every message of a live session held by one
process is also published on `{prefix}:live:{id}`, the session's non-pose
messages are kept in a short list (replayed to a therapist who joins late),
and the session's owner and state sit in the hash `{prefix}:live`. A
therapist's WebSocket that reaches another process subscribes there. Without
Redis, one process serves everything.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

logger = logging.getLogger(__name__)

HISTORY = 200


class Fanout:
    """Publishes a process's live sessions; follows other processes' ones."""

    def __init__(self, url: str, prefix: str = "telerehab") -> None:
        import redis.asyncio as redis

        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.prefix = prefix
        self._pending: set[asyncio.Task] = set()

    def _channel(self, session_id: int) -> str:
        return f"{self.prefix}:live:{session_id}"

    def listener(self, session_id: int, patient_id: int, video: bool):
        """A LiveSession listener (called on the event loop) that publishes."""

        def publish(msg: dict) -> None:
            task = asyncio.ensure_future(self._publish(session_id, patient_id, video, msg))
            self._pending.add(task)
            task.add_done_callback(self._done)

        return publish

    def _done(self, task: asyncio.Task) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("redis fan-out: %s", task.exception())

    async def _publish(self, session_id: int, patient_id: int, video: bool, msg: dict) -> None:
        raw = json.dumps(msg, separators=(",", ":"))
        channel = self._channel(session_id)
        pipe = self.client.pipeline()
        pipe.publish(channel, raw)
        if msg["type"] != "pose":
            pipe.rpush(f"{channel}:history", raw)
            pipe.ltrim(f"{channel}:history", -HISTORY, -1)
            pipe.expire(f"{channel}:history", 24 * 3600)
        if msg["type"] == "status":
            entry = {"patient_id": patient_id, "state": msg["state"], "video": video}
            pipe.hset(f"{self.prefix}:live", str(session_id), json.dumps(entry))
        if msg["type"] == "summary":
            pipe.hdel(f"{self.prefix}:live", str(session_id))
        await pipe.execute()

    async def sessions(self) -> dict[int, dict]:
        """Live sessions of every process: id -> {patient_id, state, video}."""
        found = await self.client.hgetall(f"{self.prefix}:live")
        return {int(k): json.loads(v) for k, v in found.items()}

    async def follow(self, session_id: int) -> AsyncIterator[dict]:
        """The session's history, then its messages as they are published."""
        channel = self._channel(session_id)
        pubsub = self.client.pubsub()
        await pubsub.subscribe(channel)  # before reading history: nothing falls between
        try:
            seen = await self.client.lrange(f"{channel}:history", 0, -1)
            for raw in seen:
                yield json.loads(raw)
            async for item in pubsub.listen():
                if item["type"] == "message":
                    msg: dict[str, Any] = json.loads(item["data"])
                    if msg["type"] != "pose" and json.dumps(msg, separators=(",", ":")) in seen:
                        continue  # already replayed
                    yield msg
        finally:
            await pubsub.unsubscribe(channel)
            await pubsub.aclose()

    async def close(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self.client.aclose()
