"""The front door's guard: an ASGI middleware in front of every route.

In order, for each HTTP request:

1. ``Host`` must be ``127.0.0.1:<port>`` or ``localhost:<port>`` (our port): anything else
   is a DNS-rebinding attempt → 421;
2. a request carrying ``Origin`` comes from a web page → 403 (agents are not browsers);
3. while the daemon drains → 503 with ``Retry-After``;
4. everything except ``GET`` of an agent card needs ``Authorization: Bearer <token>`` → 401;
5. the body is read here, up to :data:`MAX_BODY` bytes; more → 413 (the connection is
   closed, the server keeps serving), then replayed to the app.

Requests that pass are counted in flight with the daemon's ShutdownCoordinator until
their response is complete — except event streams, which are counted until their headers
are sent (a stream may last as long as its task; a drain ends it instead).
"""
from __future__ import annotations

import hmac
import json
import logging
from typing import Any, Awaitable, Callable

from memesh.errors import DaemonDraining

log = logging.getLogger(__name__)

MAX_BODY = 10 * 1024 * 1024
RETRY_AFTER = "2"   # s a client should wait before retrying against the next daemon
CARD_SUFFIX = "/.well-known/agent-card.json"

Scope = dict
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]


def allowed_hosts(port: int) -> frozenset[str]:
    return frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})


def is_card_request(method: str, path: str) -> bool:
    return method in ("GET", "HEAD") and path.endswith(CARD_SUFFIX)


def check(method: str, path: str, headers: dict[str, str], port: int, token: str, accepting: bool) -> tuple[int, str] | None:
    """The refusal for a request as ``(status, reason)``, or None to let it through (pure)."""
    if headers.get("host", "").lower() not in allowed_hosts(port):
        return 421, f"this server answers only to 127.0.0.1:{port} or localhost:{port}"
    if "origin" in headers:
        return 403, "requests from web pages (with an Origin header) are refused"
    if not accepting:
        return 503, "the daemon is shutting down or upgrading; retry shortly"
    if is_card_request(method, path):
        return None
    given = headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        return 401, "missing or wrong bearer token; `memesh a2a token` prints it"
    return None


class Guard:
    def __init__(self, app: ASGIApp, *, port: int, token: str, coordinator: Any) -> None:
        self.app, self.port, self.token, self.coordinator = app, port, token, coordinator

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = check(scope["method"], scope["path"], headers, self.port, self.token, self.coordinator.accepting)
        if refusal is not None:
            await _refuse(send, *refusal)
            return
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
            await _refuse(send, 413, f"request body over {MAX_BODY} bytes")
            return
        body, complete = await _read_body(receive)
        if not complete:
            await _refuse(send, 413, f"request body over {MAX_BODY} bytes")
            return
        try:
            self.coordinator.begin("a2a")
        except DaemonDraining:
            await _refuse(send, 503, "the daemon is shutting down or upgrading; retry shortly")
            return
        counted = True

        def count_out() -> None:
            nonlocal counted
            if counted:
                counted = False
                self.coordinator.end()

        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def watch(message: dict) -> None:
            if message["type"] == "http.response.start":
                kinds = [v for k, v in message.get("headers", []) if k.lower() == b"content-type"]
                if any(v.startswith(b"text/event-stream") for v in kinds):
                    count_out()
            await send(message)

        try:
            await self.app(scope, replay, watch)
        finally:
            count_out()


async def _read_body(receive: Callable) -> tuple[bytes, bool]:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return b"", False
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True


async def _refuse(send: Callable, status: int, reason: str) -> None:
    body = json.dumps({"error": reason}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 503:
        headers.append((b"retry-after", RETRY_AFTER.encode()))
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="memesh"'))
    if status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
