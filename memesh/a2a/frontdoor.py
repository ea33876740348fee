"""The front door: uvicorn serving the A2A app in its own thread and event loop.

:meth:`FrontDoor.start` is called after the daemon reported ready (spawn→ready does not
pay for importing uvicorn, starlette and the a2a-sdk). The thread binds 127.0.0.1 — the
configured ``a2a.port``, else the next free port above it (up to :data:`PORT_TRIES`), or
any free port for 0 — and only then imports and builds the app, so the port is known as
early as possible. :meth:`drain` (the daemon began draining) answers blocking
``SendMessage`` calls with the task as it stands and makes the guard refuse new requests
with 503; :meth:`stop` closes the listener, ends open streams and joins the thread
(bounded), so the next daemon can take the same port.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import threading
from typing import Any, Callable

log = logging.getLogger(__name__)

PORT_TRIES = 100           # ports tried above a taken a2a.port before giving up
START_LIMIT = 30.0         # s the thread may take to import and bind (a loaded machine)
STOP_LIMIT = 5.0           # s stop() waits for the thread
GRACE = 1                  # s uvicorn gives open connections at stop


def bind_loopback(port: int, tries: int = PORT_TRIES) -> socket.socket:
    """A listening socket on 127.0.0.1: ``port``, else the next free one; any port for 0."""
    candidates = [0] if port == 0 else [p for p in range(port, min(port + tries, 65536))]
    last: OSError | None = None
    for candidate in candidates:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it: without it a response written in two pieces
        # (headers, body) waits ~40 ms for the client's delayed ACK (measured here).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind(("127.0.0.1", candidate))
            sock.listen(2048)
            sock.set_inheritable(False)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise
    raise OSError(errno.EADDRINUSE, f"no free port in {candidates[0]}-{candidates[-1]} on 127.0.0.1 ({last})")


class FrontDoor:
    def __init__(self, hub: Any, settings: Any, coordinator: Any, home: Any,
                 on_port: Callable[[int], None] | None = None) -> None:
        self.hub, self.settings, self.coordinator, self.home = hub, settings, coordinator, home
        self.on_port = on_port
        self.port = 0
        self.error: str | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._handler: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._serving = threading.Event()
        self.started = threading.Event()   # set once serving (or failed: see error)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="a2a-front-door", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            sock = bind_loopback(self.settings["a2a.port"])
        except OSError as exc:
            self.error = f"A2A front door not started: {exc}"
            log.error("%s; set a2a.port to a free port (or 0)", self.error)
            self.started.set()
            return
        self.port = sock.getsockname()[1]
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(sock))
        except Exception as exc:
            self.error = f"A2A front door failed: {exc}"
            log.exception("A2A front door failed")
        finally:
            self.started.set()
            self.hub.detach_engine()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                sock.close()

    async def _serve(self, sock: socket.socket) -> None:
        # The daemon configures no OpenTelemetry exporter, so the SDK's spans would only cost
        # time (~1 ms of a ~6 ms SendMessage here); set the variable to true to trace.
        os.environ.setdefault("OTEL_INSTRUMENTATION_A2A_SDK_ENABLED", "false")
        import uvicorn

        from memesh.a2a.app import build_app
        from memesh.a2a.engine import Engine, HubRequestHandler
        from memesh.a2a.executor import WindowExecutor
        from memesh.a2a.security import Guard
        from memesh.a2a.taskstore import HubTaskStore
        from memesh.a2a.token import ensure_token

        token = ensure_token(self.home)
        store = HubTaskStore(self.hub.store)
        ttl = self.settings.seconds("a2a.task_ttl")
        executor = WindowExecutor(self.hub.registry.is_online, ttl)
        from memesh.a2a.app import handler_card

        handler = HubRequestHandler(executor, store, handler_card(f"http://127.0.0.1:{self.port}/"),
                                    registry=self.hub.registry,
                                    blocking_timeout=self.settings.seconds("a2a.blocking_timeout"))
        self._handler = handler
        engine = Engine(self.hub, store, executor, handler, asyncio.get_running_loop(), ttl,
                        keep_finished=self.settings.seconds("a2a.keep_finished"))
        app = Guard(build_app(handler, self.hub.registry, self.port), port=self.port, token=token,
                    coordinator=self.coordinator)
        config = uvicorn.Config(app, lifespan="off", access_log=False, log_config=None, log_level="warning",
                                timeout_graceful_shutdown=GRACE, server_header=False)
        self._server = uvicorn.Server(config)
        if self._stopping:   # stop() came while we were importing: never start serving
            return
        sweeper = asyncio.ensure_future(engine.sweep_forever())
        self.hub.attach_engine(engine, self.port)
        if self.on_port is not None:
            self.on_port(self.port)
        log.info("A2A front door on http://127.0.0.1:%d/ (token in %s)", self.port, self.home)
        self.started.set()
        self._serving.set()
        try:
            await self._server.serve(sockets=[sock])
        finally:
            sweeper.cancel()
            self.hub.detach_engine()
            await handler.aclose()

    def drain(self) -> None:
        """Release blocking waits (the daemon is draining; the guard refuses new work)."""
        loop, handler = self.loop, self._handler
        if loop is not None and handler is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(handler.draining.set)
            except RuntimeError:
                pass

    def stop(self) -> None:
        self._stopping = True
        self.drain()
        server = self._server
        if server is not None:
            server.should_exit = True
        if not self._serving.is_set():
            # Still importing (the daemon was asked to stop right after ready): nothing is
            # served yet; the thread sees the flag and closes the socket, or the exit does.
            return
        if self._thread is not None:
            self._thread.join(STOP_LIMIT)
            if self._thread.is_alive():
                if server is not None:
                    server.force_exit = True
                self._thread.join(STOP_LIMIT)
            if self._thread.is_alive():
                log.warning("A2A front door did not stop within %.0f s", 2 * STOP_LIMIT)
            else:
                log.info("A2A front door closed (port %d)", self.port)
