"""Control requests for a live session that another server process holds.

Only the process holding a live session can answer its offer, pause, resume,
end, watch and status. A request that reaches another process is sent to the
holder through Redis (`Fanout.ask`) as it came (method, path, query, headers
with the login, body, the client's address) and answered there by replaying
it into the holder's own app, which checks the login again like any request.
The holder's answer (status code, headers, body) goes back as it is, so no
sticky proxy is needed. A replayed request is marked (`FORWARDED` in its ASGI
scope) and is never sent on a second time.
"""

from __future__ import annotations

import asyncio
import base64
import logging

from fastapi import Request, Response

logger = logging.getLogger(__name__)
FORWARDED = "telerehab.forwarded"  # ASGI scope key: this request was replayed here


def forwarded(request: Request) -> bool:
    """Whether `request` came from another process (answer it here, whatever)."""
    return bool(request.scope.get(FORWARDED))


async def envelope(request: Request) -> dict:
    """`request` as JSON for Redis (its body was read and kept by FastAPI)."""
    return {
        "method": request.method,
        "path": request.url.path,
        "query": request.url.query,
        "headers": [[k, v] for k, v in request.headers.items()],
        "client": request.client.host if request.client else "",
        "body": base64.b64encode(await request.body()).decode("ascii"),
    }


async def replay(app, request: dict) -> dict:
    """Answer a forwarded request (an `envelope`) with `app`, as if it had
    arrived here: {status, headers, body (base64)}."""
    body = base64.b64decode(request["body"])
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request["method"],
        "scheme": "http",
        "path": request["path"],
        "raw_path": request["path"].encode(),
        "query_string": request["query"].encode("latin-1"),
        "root_path": "",
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in request["headers"]],
        "client": (request["client"], 0),
        "server": ("forwarded", 0),
        "state": {},
        FORWARDED: True,
    }
    answered = asyncio.Event()
    sent_body = False
    status = 500
    headers: list[list[str]] = []
    chunks: list[bytes] = []

    async def receive() -> dict:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await answered.wait()  # like a client that stays until it has its answer
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            headers.extend([k.decode("latin-1"), v.decode("latin-1")]
                           for k, v in message.get("headers", []))  # fmt: skip
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                answered.set()

    try:
        await app(scope, receive, send)
    except Exception:  # the app has sent its 500 already, as for any request
        if not answered.is_set():
            raise
        logger.exception("%s %s (forwarded): failed", request["method"], request["path"])
    finally:
        answered.set()
    return {"status": status, "headers": headers,
            "body": base64.b64encode(b"".join(chunks)).decode("ascii")}  # fmt: skip


def response(answer: dict) -> Response:
    """The holder's answer, to send as this process's own."""
    headers = {k: v for k, v in answer["headers"] if k.lower() != "content-length"}
    return Response(base64.b64decode(answer["body"]), answer["status"], headers)
