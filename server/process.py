"""One server process: uvicorn serving the app, with an orderly, bounded stop.

Left to itself, uvicorn on SIGTERM stops listening, then waits for every open
connection (a therapist's WebSocket may stay open for hours) before it runs
the app's shutdown, where live sessions are recorded as interrupted. Here the
live sessions are closed first (recorded as interrupted, peers and workers
stopped, their WebSockets sent the summary), then open connections get what
is left of `shutdown_timeout_s`, at least `MIN_GRACE_S`, and are cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from telerehab.settings import Settings

logger = logging.getLogger(__name__)
MIN_GRACE_S = 1.0


class Server(uvicorn.Server):
    """uvicorn's server, saying where it listens and stopping within a bound."""

    def __init__(self, config: uvicorn.Config, bound_s: float,
                 on_listen: Callable[[str], None] | None = None) -> None:  # fmt: skip
        super().__init__(config)
        self.bound_s = bound_s
        self.on_listen = on_listen

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        for server in self.servers if self.on_listen else ():
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                self.on_listen(f"http://{host}:{port}/")

    async def shutdown(self, sockets=None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.bound_s
        app: FastAPI = self.config.app
        try:
            await asyncio.wait_for(app.state.live.close_all(), self.bound_s)
        except TimeoutError:
            logger.error("live sessions not all closed within %g s; the next start "
                         "records what is left as interrupted", self.bound_s)  # fmt: skip
        self.config.timeout_graceful_shutdown = max(MIN_GRACE_S, deadline - loop.time())
        await super().shutdown(sockets)


def serve(app: FastAPI, settings: Settings, host: str, port: int,
          on_listen: Callable[[str], None] | None = None) -> None:  # fmt: skip
    """Serve `app` until SIGTERM or Ctrl+C; `on_listen(url)` once it listens."""
    # A WebSocket client sends one small message (its login); the body limit bounds it too.
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", ws_max_size=settings.max_body_bytes,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )  # fmt: skip
    Server(config, settings.shutdown_timeout_s, on_listen).run()
