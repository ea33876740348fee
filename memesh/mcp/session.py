"""One MCP session: the server side of one client window, for both protocol eras.

The host feeds raw lines in with :meth:`McpSession.submit` and takes the lines to send
with :meth:`McpSession.poll`; the session never touches a file or socket. Standalone mode
hosts it on stdin/stdout (:mod:`memesh.mcp.standalone`); the daemon hosts one per proxy
connection.

Life of a request: parsed (:mod:`memesh.mcp.jsonrpc`), counted in by ``tracker.begin()``,
routed to an era (:mod:`memesh.mcp.protocol`), handled (:mod:`memesh.mcp.methods`) inline
if cheap or on the executor (``tools/call``, ``resources/read``), then its one reply is
queued and ``tracker.end()`` is called (in ``finally``: whatever fails, the request is
counted out). A ``notifications/cancelled`` drops the reply (and anything queued for it)
instead; the work is told through ``ToolContext.cancelled``.

Executor calls keep the window's order (a write after every earlier call, a read after
earlier writes). A call that has to wait is held in the session, never on a worker: the
call it waits for hands it to the executor as it finishes, and at most
:data:`MAX_RUNNING` calls of one session are on the executor at once, so one busy window
cannot occupy the workers the daemon shares between all windows.

Handshake-era state: negotiated ``version`` (None before ``initialize``), ``initialized``
(after ``notifications/initialized``; only then are list-changed and resource-updated
notifications sent), the log level set by ``logging/setLevel`` (none: no log messages) and
the subscribed resource URIs. Stateless requests carry all they need in ``_meta``.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

from memesh.errors import MemeshError, ValidationError
from memesh.mcp import jsonrpc, protocol, resources
from memesh.mcp.events import TOOLS, EventBus
from memesh.mcp.jsonrpc import INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, RpcError
from memesh.mcp.methods import HANDSHAKE_ONLY, METHODS, OPENING, SHARED, STATELESS_ONLY, Call, Method
from memesh.mcp.tools import ToolRegistry, default_registry

logger = logging.getLogger(__name__)

TOOLS_PAGE_SIZE = 50   # every memesh tool fits in one page; paging exists for later growth
DEFAULT_WORKERS = 4    # concurrent tool calls per session when the host gives no executor
MAX_RUNNING = 4        # a session's calls on the (possibly shared) executor at once; the rest wait here
LOGGER_NAME = "memesh"


@dataclasses.dataclass
class _Out:
    line: str
    owner: tuple[bool, Any] | None = None   # the request this line belongs to
    merge: tuple[str, str] | None = None    # identical pending notifications are sent once


class McpSession:
    """The MCP server state machine of one client window; thread-safe."""

    def __init__(self, services: Any, *, context: dict[str, Any] | None = None, tracker: Any = None,
                 executor: Executor | None = None, registry: ToolRegistry | None = None,
                 tools_page_size: int = TOOLS_PAGE_SIZE) -> None:
        self.services = services
        self.context = dict(context or {})
        self._tracker = tracker
        self._own_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(DEFAULT_WORKERS, thread_name_prefix="memesh-mcp")
        self.registry = registry or default_registry()
        self.tools_page_size = tools_page_size
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)   # outbox filled, call finished, closed
        self._outbox: deque[_Out] = deque()
        self._batches = 0
        self._calls: dict[tuple[bool, Any], Call] = {}
        self._last_write: Call | None = None
        self._reads_since_write: list[Call] = []
        self._running = 0                        # this session's calls submitted to the executor
        self._ready: deque[tuple[Call, Method]] = deque()   # may run, waiting for a MAX_RUNNING slot
        self._closed = False
        self.version: str | None = None        # negotiated handshake version
        self.initialized = False
        self.log_level: str | None = None
        self.subscriptions: set[str] = set()
        self.client_info: Any = None
        self.client_roots = False          # the client declared the roots capability
        self._roots_asked = 0
        self._roots_request: str | None = None
        # Our request ids carry a token of their own: after a daemon restart the proxy
        # replays the window into a new session, and the client must never see an id twice.
        self._id_token = uuid.uuid4().hex[:12]
        events = getattr(services, "events", None)
        self.events = events if events is not None else EventBus()
        self._unsubscribe = [self.events.subscribe(self._on_event), self.registry.subscribe(self._on_event)]

    # -- the host's side ------------------------------------------------------------
    def submit(self, line: str | bytes) -> None:
        """Take one raw line from the client. Raises only what ``tracker.begin()`` raises."""
        if self._closed:
            logger.debug("session closed; dropping a line")
            return
        message = jsonrpc.parse_line(line)
        if message is None:
            return
        if isinstance(message, jsonrpc.Invalid):
            self._queue(message.reply)
        elif isinstance(message, jsonrpc.Notification):
            self._on_notification(message)
        elif isinstance(message, jsonrpc.Response):
            self._on_response(message)
        else:
            if self._tracker is not None:
                self._tracker.begin()   # DaemonDraining propagates before any work
            self._on_request(message)

    def poll(self, timeout: float) -> list[str]:
        """Wait up to ``timeout`` seconds for outgoing lines; return all that are ready."""
        return self.poll_batch(timeout)[1]

    def poll_batch(self, timeout: float) -> tuple[int, list[str]]:
        """Like :meth:`poll`, numbering each non-empty batch (1, 2, …; 0 for none).

        Two threads may take batches (a long poll, and the submitter collecting an answer
        that was ready at once); writing batches in number order keeps the session's
        output order, e.g. no progress notification after its request's answer.
        """
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._changed:
            while not self._outbox and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            if not self._outbox:
                return 0, []
            lines = [out.line for out in self._outbox]
            self._outbox.clear()
            self._batches += 1
            return self._batches, lines

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until no request is in flight; return whether none is."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._calls, max(timeout, 0.0))

    def in_flight(self) -> int:
        """Requests accepted and not yet answered (or cancelled)."""
        with self._lock:
            return len(self._calls)

    def pending(self) -> int:
        """Lines queued for the client and not yet taken by :meth:`poll`."""
        with self._lock:
            return len(self._outbox)

    def close(self) -> None:
        """Stop: cancel what is in flight, unsubscribe, release the executor we own."""
        with self._changed:
            if self._closed:
                return
            self._closed = True
            calls = list(self._calls.values())
            self._ready.clear()
            self._changed.notify_all()
        for call in calls:
            call.cancelled.set()
            if call.future is not None:
                call.future.cancel()
            elif call.method is not None:   # a slow call held back, never started: count it out now
                self._finish(call, None)
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        if self._own_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # -- outgoing ---------------------------------------------------------------------
    def _queue(self, message: dict[str, Any], owner: Any = None, merge: tuple[str, str] | None = None) -> None:
        line = jsonrpc.dumps(message)
        with self._changed:
            if merge is not None and any(out.merge == merge for out in self._outbox):
                return
            self._outbox.append(_Out(line, owner, merge))
            self._changed.notify_all()

    def _queue_for(self, call: Call, message: dict[str, Any]) -> bool:
        """Queue a notification that belongs to ``call``; never after its reply or a cancel."""
        line = jsonrpc.dumps(message)
        with self._changed:
            if call.finished or call.cancelled.is_set():
                return False
            self._outbox.append(_Out(line, call.key))
            self._changed.notify_all()
        return True

    def _finish(self, call: Call, line: str | None) -> None:
        """Queue ``call``'s one reply line (unless cancelled) and count it out, exactly once.

        Calls that waited for this one and may now run are started (see :meth:`_on_request`).
        """
        start: list[tuple[Call, Method]] = []
        with self._changed:
            if call.finished:
                return
            call.finished = True
            if self._calls.get(call.key) is call:
                del self._calls[call.key]
            if line is not None and not call.cancelled.is_set():
                self._outbox.append(_Out(line, call.key))
            for later in call.dependents:
                later.waiting -= 1
                if later.waiting == 0 and not later.finished:
                    self._ready.append((later, later.method))
            call.dependents = []
            if call.submitted:
                call.submitted = False
                self._running -= 1
            start = self._take_ready()
            self._changed.notify_all()
        self._count_out()
        self._submit(start)

    def _count_out(self) -> None:
        if self._tracker is not None:
            try:
                self._tracker.end()
            except Exception:
                logger.exception("request tracker failed to count a request out")

    # -- requests ---------------------------------------------------------------------
    def _on_request(self, request: jsonrpc.Request) -> None:
        call = Call(request, jsonrpc.id_key(request.id))
        with self._lock:
            duplicate = call.key in self._calls
            if not duplicate:
                self._calls[call.key] = call
        if duplicate:
            self._queue(jsonrpc.error(request.id, INVALID_REQUEST, f"Invalid Request: id {request.id!r} is already in use by a request in progress"))
            self._count_out()
            return
        try:
            method = self._route(call)
        except Exception as exc:
            self._finish(call, self._error_reply(call, exc))
            return
        if not method.slow:
            self._run(call, method)
            return
        reads = self._reads(call)
        with self._lock:
            # Calls of one window keep their order where it matters: a write waits for every
            # earlier call, a read for earlier writes; reads run side by side. A call that
            # must wait is held here, not on a worker: the call it waits for starts it when
            # it finishes, so one window's queue never occupies the shared executor.
            after = [] if self._last_write is None else [self._last_write]
            if reads:
                self._reads_since_write = [c for c in self._reads_since_write if not c.finished] + [call]
            else:
                after += self._reads_since_write
                self._last_write, self._reads_since_write = call, []
            call.method = method
            for earlier in after:
                if not earlier.finished:
                    earlier.dependents.append(call)
                    call.waiting += 1
            if call.waiting == 0:
                self._ready.append((call, method))
            start = self._take_ready()
        self._submit(start)

    def _take_ready(self) -> list[tuple[Call, Method]]:
        """Ready calls that fit under MAX_RUNNING, marked as submitted (hold the lock).

        Nothing starts once the session is closed: :meth:`close` counts the held calls out.
        """
        start = []
        if self._closed:
            self._ready.clear()
            return start
        while self._ready and self._running < MAX_RUNNING:
            call, method = self._ready.popleft()
            if call.finished:
                continue
            call.submitted = True
            self._running += 1
            start.append((call, method))
        return start

    def _submit(self, start: list[tuple[Call, Method]]) -> None:
        """Hand ready calls to the executor (outside the lock)."""
        for call, method in start:
            try:
                future = self._executor.submit(self._run, call, method)
            except RuntimeError as exc:   # the executor is shut down: we are closing
                self._finish(call, self._error_reply(call, MemeshError(f"the server is shutting down ({exc})")))
                continue
            call.future = future
            future.add_done_callback(lambda done, call=call: self._count_out_if_never_run(call, done))

    def _count_out_if_never_run(self, call: Call, future: Future) -> None:
        if future.cancelled():   # cancelled before it started: _run will never finish it
            self._finish(call, None)

    def _route(self, call: Call) -> Method:
        """Pick the handler and the era; check what the era requires of the request."""
        request = call.request
        method = METHODS.get(request.method)
        if method is None:
            raise RpcError(METHOD_NOT_FOUND, f"Method not found: {request.method}")
        params = {} if request.params is None else request.params
        if not isinstance(params, dict):
            raise RpcError(INVALID_PARAMS, "params: expected an object")
        call.params = params
        meta = params.get("_meta")
        if meta is not None and not isinstance(meta, dict):
            raise RpcError(INVALID_PARAMS, "params._meta: expected an object")
        token = (meta or {}).get("progressToken")
        if isinstance(token, (str, int)) and not isinstance(token, bool):
            call.progress_token = token
        if method.era == OPENING:
            return method
        if protocol.is_stateless(meta):
            if method.era == HANDSHAKE_ONLY:
                raise RpcError(METHOD_NOT_FOUND, f"Method not found: {request.method} does not exist in protocol {protocol.STATELESS_VERSIONS[0]}")
            call.log_level = protocol.check_envelope(meta)
            call.era = protocol.STATELESS
            return method
        if method.era == STATELESS_ONLY or (self.version is None and not method.before_initialize):
            raise RpcError(INVALID_PARAMS, f"params._meta[{protocol.PROTOCOL_VERSION_KEY!r}]: required field is missing "
                                           f"(send it with every request, or call initialize first)")
        return method

    def _reads(self, call: Call) -> bool:
        """Whether a slow call only reads (order among reads does not matter)."""
        if call.request.method != "tools/call":
            return True
        tool = self.registry.get(call.params.get("name")) if isinstance(call.params.get("name"), str) else None
        return tool is None or tool.read_only

    def _run(self, call: Call, method: Method) -> None:
        line: str | None = None
        try:
            if call.cancelled.is_set():
                return
            try:
                value = method.handler(self, call)
                if call.era == protocol.STATELESS:
                    value = protocol.decorate_stateless(call.request.method, value)
                line = jsonrpc.dumps(jsonrpc.result(call.request.id, value))
            except Exception as exc:
                line = self._error_reply(call, exc)
        finally:
            self._finish(call, line)   # whatever happened: the request is counted out

    def _error_reply(self, call: Call, exc: Exception) -> str:
        """THE place where an exception becomes a JSON-RPC error reply (as its line); never raises."""
        request_id, method = call.request.id, call.request.method
        try:
            if isinstance(exc, RpcError):
                reply = jsonrpc.error(request_id, exc.code, exc.message, exc.data)
            elif isinstance(exc, ValidationError):
                reply = jsonrpc.error(request_id, INVALID_PARAMS, str(exc))
            elif isinstance(exc, MemeshError):
                logger.warning("%s failed: %s", method, exc)
                reply = jsonrpc.error(request_id, INTERNAL_ERROR, str(exc))
            else:
                logger.exception("%s (id %r) failed", method, request_id)
                reply = jsonrpc.error(request_id, INTERNAL_ERROR, f"Internal error in {method} ({type(exc).__name__}); see the memesh log")
            return jsonrpc.dumps(reply)
        except Exception:
            logger.exception("%s (id %r): could not build the error reply for %r", method, request_id, type(exc))
            return jsonrpc.dumps(jsonrpc.error(request_id, INTERNAL_ERROR, f"Internal error in {method}; see the memesh log"))

    # -- notifications ----------------------------------------------------------------
    def _on_notification(self, message: jsonrpc.Notification) -> None:
        params = message.params if isinstance(message.params, dict) else {}
        if message.method == "notifications/initialized":
            with self._lock:
                if self.version is not None:
                    self.initialized = True
            self._ask_roots()
        elif message.method == "notifications/roots/list_changed":
            self._ask_roots()
        elif message.method == "notifications/cancelled":
            self._cancel(params.get("requestId"), params.get("reason"))
        else:
            logger.debug("ignoring notification %s", message.method)

    def _cancel(self, request_id: Any, reason: Any) -> None:
        if not jsonrpc.is_valid_id(request_id):
            return
        key = jsonrpc.id_key(request_id)
        with self._changed:
            call = self._calls.get(key)
            if call is not None and call.request.method == "initialize":
                return   # the spec forbids cancelling initialize
            if call is not None:
                call.cancelled.set()
            # A reply or progress already queued but not yet taken is withdrawn too.
            self._outbox = deque(out for out in self._outbox if out.owner != key)
        if call is None:
            return
        logger.info("request %r (%s) cancelled by the client: %s", request_id, call.request.method, reason or "no reason given")
        if call.future is not None:
            call.future.cancel()   # not started yet: its done-callback counts it out

    def _on_event(self, topic: str, project: str | None = None) -> None:
        """A topic was published (in any thread): tell the client if it is listening.

        A change in one project reaches only the windows whose resource shows that project.
        """
        with self._lock:
            if not self.initialized or self._closed:
                return
            watched = [r for r in resources.available(self.services) if r.topic == topic and r.uri in self.subscriptions]
        uris = [r.uri for r in watched if r.concerns(self.context, project)]
        for uri in uris:
            self._queue(jsonrpc.notification("notifications/resources/updated", {"uri": uri}), merge=("updated", uri))
        if topic == TOOLS:
            self._queue(jsonrpc.notification("notifications/tools/list_changed"), merge=("list_changed", TOOLS))

    # -- what handlers use ---------------------------------------------------------------
    def begin_handshake(self, version: str, client_info: Any, capabilities: Any = None) -> None:
        """``initialize`` was answered with ``version``: handshake-era requests may follow.

        Raises RpcError -32600 if this session was initialized already (nothing changes).
        """
        with self._lock:
            if self.version is not None:
                raise RpcError(INVALID_REQUEST, f"Invalid Request: this session is already initialized "
                                                f"(protocol {self.version}); initialize is sent once per connection")
            self.version, self.initialized, self.client_info = version, False, client_info
            self.client_roots = isinstance(capabilities, dict) and isinstance(capabilities.get("roots"), dict)
        logger.info("initialize: client %r, speaking %s", client_info, version)

    # -- the client's roots (which project this window works in) ----------------------------
    def _ask_roots(self) -> None:
        """Ask a client that declared ``roots`` for them (handshake era only: the stateless
        era never sends requests to the client)."""
        with self._lock:
            if not (self.client_roots and self.initialized):
                return
            self._roots_asked += 1
            request_id = f"memesh-roots-{self._id_token}-{self._roots_asked}"
            self._roots_request = request_id
        self._queue({"jsonrpc": "2.0", "id": request_id, "method": "roots/list"})

    def _on_response(self, message: jsonrpc.Response) -> None:
        with self._lock:
            expected = message.id is not None and message.id == self._roots_request
        if not expected:
            logger.debug("ignoring a response to id %r: no request of ours has that id", message.id)
            return
        result = message.result if isinstance(message.result, dict) else {}
        roots = result.get("roots")
        if isinstance(roots, list):
            uris = [r.get("uri") for r in roots if isinstance(r, dict) and isinstance(r.get("uri"), str)]
            self.context["roots"] = uris
            logger.info("client roots: %s", uris)
        elif message.error is not None:
            logger.info("the client did not list its roots: %s", message.error)

    def notify(self, method: str, params: dict[str, Any]) -> bool:
        """Send a server-initiated notification (A2A deliveries), once the client is initialized."""
        with self._lock:
            if not self.initialized or self._closed:
                return False
        self._queue(jsonrpc.notification(method, params))
        return True

    def set_log_level(self, level: str) -> None:
        with self._lock:
            self.log_level = level

    def watch(self, uri: str, on: bool) -> None:
        """Subscribe to (or unsubscribe from) ``notifications/resources/updated`` for ``uri``."""
        with self._lock:
            (self.subscriptions.add if on else self.subscriptions.discard)(uri)

    def progress(self, call: Call, progress: float, total: float | None = None, message: str | None = None) -> None:
        """Send ``notifications/progress`` for ``call`` if it asked (strictly increasing, never after its reply)."""
        if call.progress_token is None:
            return
        with self._lock:
            if call.last_progress is not None and progress <= call.last_progress:
                return   # progress must strictly increase
            call.last_progress = progress
        params: dict[str, Any] = {"progressToken": call.progress_token, "progress": progress}
        if total is not None:
            params["total"] = total
        if message:
            params["message"] = message
        self._queue_for(call, jsonrpc.notification("notifications/progress", params))

    def log(self, call: Call, level: str, data: Any) -> None:
        """Send ``notifications/message`` for ``call`` if the client asked for ``level`` or lower."""
        threshold = call.log_level if call.era == protocol.STATELESS else self.log_level
        if protocol.level_passes(level, threshold):
            self._queue_for(call, jsonrpc.notification("notifications/message", {"level": level, "logger": LOGGER_NAME, "data": data}))
