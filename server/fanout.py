"""Fan-out of live-session messages between server processes, through Redis.

With `TELEREHAB_REDIS_URL` set, every message of a live session held by one
process is also published on `{prefix}:live:{id}`, the session's non-pose
messages are kept in a short list (replayed to a therapist who joins late),
and the session's owner and state sit in the hash `{prefix}:live`. A
therapist's WebSocket that reaches another process subscribes there. Without
Redis, one process serves everything.

Liveness: each process renews `{prefix}:alive:{owner}` (expiring after
`ttl_s`) and rewrites its sessions' entries every `ttl_s / 3`. An entry whose
owner's heartbeat expired (the process was killed, crashed or lost Redis) is
no longer listed, and is removed when found, by any request or by the
heartbeat of any process. If its owner was a process of this host that no
longer runs (a killed `--workers` worker), `on_gone(ids)` records those
sessions (as interrupted) at once, so a patient can end them without waiting
for a restart. An owner merely cut off from Redis still runs them: it writes
their entries again when Redis is back, and its sessions are left alone.

Faults: every Redis call gives up after `timeout_s`. While Redis is out, the
sessions go on in their process; their messages are not published (counted in
`dropped`) until the heartbeat reaches Redis again, which rewrites the entries.
A follower (`follow`) resubscribes by itself when Redis comes back.

Control requests: each process subscribes to its inbox `{prefix}:inbox:{owner}`.
A process asked for a session that another one holds (`owner_of`) sends the
request there (`ask`) and waits at most `forward_timeout_s` for the answer,
which comes back to its own inbox. Nobody subscribed to the inbox (the owner
is gone), Redis out, no answer in time, or too many requests waiting: the
asker gets `UnreachableError` (a 503 with Retry-After), never a hang; each
case is counted by kind in `stats()`. A process answers at most
MAX_ANSWERING forwarded requests at once; one more is refused (counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from telerehab.errors import UnreachableError

logger = logging.getLogger(__name__)

HISTORY = 200
RETRY_S = 1.0  # a follower's wait before it subscribes again after a Redis error
MAX_ASKING = 64  # forwarded requests this process waits on at once
MAX_ANSWERING = 16  # forwarded requests this process answers at once


class Fanout:
    """Publishes a process's live sessions; follows other processes' ones."""

    def __init__(
        self, url: str, prefix: str = "telerehab", *, timeout_s: float = 2.0, ttl_s: float = 15.0,
        forward_timeout_s: float = 10.0,
    ) -> None:  # fmt: skip
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # No retries: a call that fails has taken its timeout once, not four times.
        self.client = redis.Redis.from_url(
            url, decode_responses=True, socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0),
        )  # fmt: skip
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.held: dict[int, dict] = {}  # this process's sessions: id -> entry
        self.up = True  # False from a failed call until the heartbeat succeeds again
        self.dropped = 0  # messages not published while Redis was out
        self._pending: set[asyncio.Task] = set()
        self._beating: asyncio.Task | None = None
        # control requests (see the module's docstring)
        self.forward_timeout_s = forward_timeout_s
        self.on_ask: Callable[[dict], Awaitable[dict]] | None = None  # answers a forwarded one
        self.listening = False  # subscribed to this process's inbox
        self.counts: Counter[str] = Counter()  # forwarded, answered, and each failure by kind
        self._waiting: dict[str, asyncio.Future] = {}  # request id -> its answer, once it comes
        self._answering: set[asyncio.Task] = set()
        self._inbox_task: asyncio.Task | None = None
        self.on_gone: Callable[[list[int]], Awaitable[None]] | None = None  # dead ones found

    def _channel(self, session_id: int) -> str:
        return f"{self.prefix}:live:{session_id}"

    def _alive_key(self, owner: str) -> str:
        return f"{self.prefix}:alive:{owner}"

    # ----------------------------------------------------------------- heartbeat

    def start(self) -> None:
        """Begin the heartbeat and listen to the inbox (on the event loop, at
        the app's start)."""
        if self._beating is None:
            self._beating = asyncio.ensure_future(self._heartbeat())
        if self._inbox_task is None:
            self._inbox_task = asyncio.ensure_future(self._listen())

    async def beat(self) -> None:
        """Renew this process's heartbeat and rewrite its sessions' entries."""
        pipe = self.client.pipeline()
        pipe.set(self._alive_key(self.owner), "1", px=int(self.ttl_s * 1000))
        for sid, entry in self.held.items():
            pipe.hset(f"{self.prefix}:live", str(sid), json.dumps(entry))
        await pipe.execute()

    async def _heartbeat(self) -> None:
        while True:
            try:
                await self.beat()
                await self.sessions()  # finds the sessions of processes that died
            except Exception as exc:  # Redis out: the sessions go on here
                self._down(exc)
            else:
                if not self.up:
                    logger.warning("Redis is back: fan-out resumes (%d messages were not "
                                   "published while it was out)", self.dropped)  # fmt: skip
                self.up = True
            await asyncio.sleep(self.ttl_s / 3)

    def _down(self, exc: BaseException) -> None:
        if self.up:
            why = f"{type(exc).__name__}: {exc}"
            logger.warning("Redis unreachable (%s): live sessions go on in this process, "
                           "unseen by the others until it is back", why)  # fmt: skip
        self.up = False

    # ----------------------------------------------------------------- publish

    def listener(self, session_id: int, patient_id: int, video: bool):
        """A LiveSession listener (called on the event loop) that publishes.
        The session is listed at once, in state "created"."""
        self.held[session_id] = {"patient_id": patient_id, "state": "created", "video": video,
                                 "owner": self.owner}  # fmt: skip
        self._spawn(self._write_entry(session_id))

        def publish(msg: dict) -> None:
            if msg["type"] == "status" and session_id in self.held:  # not after its summary
                self.held[session_id] = {**self.held[session_id], "state": msg["state"]}
            elif msg["type"] == "summary":
                self.held.pop(session_id, None)
            if not self.up:  # the heartbeat finds out when Redis is back
                self.dropped += 1
                return
            self._spawn(self._publish(session_id, msg))

        return publish

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._pending.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.dropped += 1
            self._down(task.exception())  # type: ignore[arg-type]

    async def _write_entry(self, session_id: int) -> None:
        entry = self.held.get(session_id)
        if entry is not None:
            await self.client.hset(f"{self.prefix}:live", str(session_id), json.dumps(entry))

    async def _publish(self, session_id: int, msg: dict) -> None:
        raw = json.dumps(msg, separators=(",", ":"))
        channel = self._channel(session_id)
        pipe = self.client.pipeline()
        pipe.publish(channel, raw)
        if msg["type"] != "pose":
            pipe.rpush(f"{channel}:history", raw)
            pipe.ltrim(f"{channel}:history", -HISTORY, -1)
            pipe.expire(f"{channel}:history", 24 * 3600)
        entry = self.held.get(session_id)
        if msg["type"] == "status" and entry is not None:
            pipe.hset(f"{self.prefix}:live", str(session_id), json.dumps(entry))
        if msg["type"] == "summary":
            pipe.hdel(f"{self.prefix}:live", str(session_id))
        await pipe.execute()

    # ----------------------------------------------------------------- control requests

    def _inbox(self, owner: str) -> str:
        return f"{self.prefix}:inbox:{owner}"

    async def owner_of(self, session_id: int) -> dict | None:
        """The entry of a live session whose process's heartbeat is alive
        ({patient_id, state, video, owner}), or None. Raises Redis's error."""
        raw = await self.client.hget(f"{self.prefix}:live", str(session_id))
        if raw is None:
            return None
        entry = json.loads(raw)
        if await self.client.get(self._alive_key(str(entry.get("owner")))) is None:
            return None  # its process is gone; `sessions` removes such entries
        return entry

    async def ask(self, owner: str, request: dict) -> dict:
        """Send `request` to the process `owner` and return its answer, within
        `forward_timeout_s`; UnreachableError (counted by kind) otherwise."""
        if not self.listening:
            raise self._failed("no inbox (Redis out)", "Redis is unreachable from here")
        if len(self._waiting) >= MAX_ASKING:
            raise self._failed("too many waiting", f"{MAX_ASKING} requests wait already", 1)
        rid = uuid.uuid4().hex
        answer = asyncio.get_running_loop().create_future()
        self._waiting[rid] = answer
        ask = {"kind": "ask", "id": rid, "from": self.owner, "request": request}
        try:
            try:
                receivers = await self.client.publish(self._inbox(owner), json.dumps(ask))
            except Exception as exc:
                if not redis_error(exc):
                    raise
                raise self._failed("Redis unreachable", "Redis is unreachable") from None
            if receivers == 0:
                raise self._failed("owner gone", "it is gone")
            try:
                got = await asyncio.wait_for(answer, self.forward_timeout_s)
            except TimeoutError:
                why = f"it did not answer within {self.forward_timeout_s:g} s"
                raise self._failed("no answer in time", why) from None
            if "refused" in got:
                raise self._failed("refused by the owner", got["refused"], 1)
            self.counts["forwarded"] += 1
            return got
        finally:
            self._waiting.pop(rid, None)

    def _failed(self, kind: str, why: str, retry_s: float | None = None) -> UnreachableError:
        """Counted; retry by default once a gone owner's entry has expired."""
        self.counts[f"failed: {kind}"] += 1
        retry_s = retry_s if retry_s is not None else max(1, math.ceil(self.ttl_s))
        return UnreachableError(f"the server process holding this live session cannot "
                                f"answer now ({why}): try again shortly", retry_s)  # fmt: skip

    async def _listen(self) -> None:
        """This process's inbox: requests other processes forward to it, and
        the answers to those it forwarded. Subscribes again after an error."""
        channel = self._inbox(self.owner)
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(channel)
                self.listening = True
                while True:
                    item = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if item is not None:
                        self._received(item["data"])
            except Exception as exc:  # Redis out (or a bug: logged); subscribe again
                if not redis_error(exc):
                    logger.exception("the inbox of control requests failed")
                else:
                    logger.info("control requests through Redis paused (%s)", exc)
            finally:
                self.listening = False
                with contextlib.suppress(Exception):
                    await pubsub.unsubscribe(channel)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(RETRY_S)

    def _received(self, raw: str) -> None:
        try:
            msg = json.loads(raw)
            kind, rid = msg["kind"], msg["id"]
        except (ValueError, KeyError, TypeError):
            self.counts["dropped: unreadable message"] += 1
            return
        if kind == "answer":
            waiting = self._waiting.get(rid)
            if waiting is None or waiting.done():
                self.counts["dropped: answer too late"] += 1
            else:
                waiting.set_result(msg)
        elif kind == "ask":
            if self.on_ask is None or len(self._answering) >= MAX_ANSWERING:
                self.counts["refused: too many to answer"] += 1
                busy = {"refused": f"it answers {MAX_ANSWERING} already"}
                task = asyncio.ensure_future(self._reply(msg, busy))
            else:
                task = asyncio.ensure_future(self._answer(msg))
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)

    async def _answer(self, ask: dict) -> None:
        try:
            answer = await self.on_ask(ask["request"])  # type: ignore[misc]
        except Exception:  # a bug: answered, never left to time out
            logger.exception("a forwarded request failed")
            answer = {"refused": "it failed (logged there)"}
        self.counts["answered for another process"] += 1
        await self._reply(ask, answer)

    async def _reply(self, ask: dict, answer: dict) -> None:
        reply = json.dumps({**answer, "kind": "answer", "id": ask["id"]})
        try:
            if await self.client.publish(self._inbox(str(ask.get("from"))), reply) == 0:
                self.counts["dropped: asker gone"] += 1
        except Exception as exc:
            if not redis_error(exc):
                raise
            self.counts["dropped: answer not sent (Redis unreachable)"] += 1

    def stats(self) -> dict:
        """What `/api/health` shows of Redis: reachable, and every count."""
        return {"up": self.up, "inbox": self.listening, "not_published": self.dropped,
                **dict(sorted(self.counts.items()))}  # fmt: skip

    # ----------------------------------------------------------------- read

    async def sessions(self) -> dict[int, dict]:
        """Live sessions of every process whose heartbeat is alive:
        id -> {patient_id, state, video}. Entries of dead processes are removed.
        Raises Redis's error when it cannot be asked."""
        found = {int(k): json.loads(v) for k, v in
                 (await self.client.hgetall(f"{self.prefix}:live")).items()}  # fmt: skip
        owners = sorted({str(e.get("owner")) for e in found.values()})
        beating = await self.client.mget([self._alive_key(o) for o in owners]) if owners else []
        alive = {o for o, b in zip(owners, beating, strict=True) if b is not None}
        dead = [sid for sid, e in found.items() if e.get("owner") not in alive]
        if dead:
            logger.info("live sessions %s: their server process is gone from Redis", dead)
            await self.client.hdel(f"{self.prefix}:live", *map(str, dead))
            ended = [sid for sid in dead if _stopped_here(str(found[sid].get("owner")))]
            if ended and self.on_gone is not None:
                try:
                    await self.on_gone(ended)
                except Exception:  # not Redis's fault: logged, the next start does it
                    logger.exception("recording the sessions %s of a dead process failed", ended)
        return {sid: {k: e[k] for k in ("patient_id", "state", "video")}
                for sid, e in found.items() if e.get("owner") in alive}  # fmt: skip

    async def follow(self, session_id: int) -> AsyncIterator[dict]:
        """The session's history, then its messages as they are published,
        until its summary or until its process is gone. Through a Redis outage
        it subscribes again and replays what it missed of the history."""
        channel = self._channel(session_id)
        delivered: set[str] = set()  # non-pose messages already yielded
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(channel)  # before the history: nothing falls between
                for raw in await self.client.lrange(f"{channel}:history", 0, -1):
                    if raw not in delivered:
                        delivered.add(raw)
                        yield json.loads(raw)
                silent = 0.0
                while True:
                    item = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if item is None:
                        silent += 1.0
                        if silent >= self.ttl_s:  # is its process still there?
                            silent = 0.0
                            if session_id not in await self.sessions():
                                return
                        continue
                    silent = 0.0
                    raw = item["data"]
                    msg: dict[str, Any] = json.loads(raw)
                    if msg["type"] != "pose":
                        if raw in delivered:
                            continue  # already replayed
                        delivered.add(raw)
                    yield msg
            except Exception as exc:
                if not redis_error(exc):
                    raise
                logger.info("session %s: following through Redis paused (%s)", session_id, exc)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.unsubscribe(channel)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(RETRY_S)

    async def close(self) -> None:
        """Stop the heartbeat and the inbox, and say this process is gone (best
        effort)."""
        for task in (self._beating, self._inbox_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._answering:
            await asyncio.gather(*self._answering, return_exceptions=True)
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        with contextlib.suppress(Exception):
            pipe = self.client.pipeline()
            pipe.delete(self._alive_key(self.owner))
            if self.held:
                pipe.hdel(f"{self.prefix}:live", *map(str, self.held))
            await pipe.execute()
        await self.client.aclose()


def _stopped_here(owner: str) -> bool:
    """Whether `owner` (hostname:pid:nonce) was a process of this host that no
    longer runs (or is a zombie); False when that cannot be told."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:  # another user's process: it runs
        return False
    try:  # killed, not yet reaped by its parent
        return Path(f"/proc/{pid_text}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def redis_error(exc: BaseException) -> bool:
    """Redis out or too slow (not a bug of ours)."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError | TimeoutError)
