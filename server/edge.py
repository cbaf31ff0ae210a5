"""What every HTTP request meets first: a bound on the body's size (checked
before anything parses it or looks at the login) and the security headers of
every response. Both are plain ASGI middleware, so they also cover static
files and errors.
"""

from __future__ import annotations

import json
import logging

logger = logging.getLogger(__name__)

# The pages load scripts and styles from /static only (no inline script or
# style attribute), talk to this origin only (WebSocket included), and may not
# be framed. Swagger UI (/api/docs) loads its bundle from a CDN and starts with
# an inline script: it gets its own, looser policy.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/api/docs", "/api/redoc")


class BodyLimit:
    """413 for a body over `max_bytes`: at once when Content-Length says so,
    else as soon as the streamed body passes the limit. The body (at most
    `max_bytes`) is read here, before the app parses it or checks the login,
    and handed on as one message."""

    def __init__(
        self, app, max_bytes: int, uploads: dict[str, int] | None = None, cookie: str = ""
    ) -> None:
        """`uploads`: a larger limit for the paths named (video uploads), for a
        request that carries a login (a bearer token, or the `cookie`): an
        anonymous request keeps the small limit, so nobody pushes a large body
        at the server before the login is looked at."""
        self.app = app
        self.max_bytes = max_bytes
        self.uploads = uploads or {}
        self.cookie = cookie.encode()

    def _limit(self, scope) -> int:
        larger = self.uploads.get(scope.get("path", ""))
        if larger is None:
            return self.max_bytes
        for name, value in scope["headers"]:
            if (name == b"authorization" and value[:7].lower() == b"bearer ") or (
                name == b"cookie" and self.cookie and self.cookie + b"=" in value
            ):
                return larger
        return self.max_bytes

    async def _refuse(self, send, limit: int) -> None:
        body = json.dumps(
            {"detail": f"request body: larger than the limit of {limit} bytes"}
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        limit = self._limit(scope)
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = limit + 1
                if declared > limit:
                    return await self._refuse(send, limit)
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                return await self._refuse(send, limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class SecurityHeaders:
    """CSP, no framing, no sniffing, no referrer across origins; HSTS when the
    cookies are Secure (the server is reached over HTTPS)."""

    def __init__(self, app, hsts: bool) -> None:
        self.app = app
        base = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(self), microphone=(), geolocation=()"),
        ]
        if hsts:
            base.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
        self.headers = [*base, (b"content-security-policy", CSP.encode())]
        self.docs_headers = [*base, (b"content-security-policy", DOCS_CSP.encode())]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        extra = self.docs_headers if scope["path"].startswith(DOCS_PATHS) else self.headers

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {n.lower() for n, _v in headers}
                headers += [h for h in extra if h[0] not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
