"""The ``mcp`` shared object: one MCP session per window, held in the daemon.

A window's proxy opens a session (``open``), pushes raw stdin lines into it (``submit``,
returns at once) on one connection and long-polls its outgoing lines (``poll``) on a
second one, so a slow tool call never blocks a ping or a cancel. Sessions belong to the
client that opened them and are closed when that client is gone (EOF, bye, missed
heartbeats) — never by reference counting.

Every request a session accepts is tracked by the daemon's ShutdownCoordinator until
its response is queued; while the daemon drains, ``submit`` raises DaemonDraining before
touching the request, which the proxy answers by resending it to the next daemon.
"""
from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from memesh.daemon import clients as clientmod
from memesh.daemon.shutdown import ShutdownCoordinator
from memesh.errors import NotFound

log = logging.getLogger(__name__)

MAX_POLL = 5.0  # seconds; a poll must return well within the client's heartbeat interval
TOOL_WORKERS = 16  # tool calls run here; SQLite writes serialise anyway, reads overlap


def read_only_tools() -> list[str]:
    """Names of the tools whose annotations say they only read."""
    from memesh.mcp.tools import read_only_tool_names

    return read_only_tool_names()


class _Tracker:
    """Adapts the coordinator to the session's begin/end protocol, per owning client."""

    def __init__(self, coordinator: ShutdownCoordinator, owner: str):
        self._coordinator = coordinator
        self._owner = owner

    def begin(self) -> None:
        self._coordinator.begin(self._owner)

    def end(self) -> None:
        self._coordinator.end()


class McpHost:
    """Per-window MCP sessions over the daemon's shared services."""

    def __init__(self, services, coordinator: ShutdownCoordinator, registry: clientmod.ClientRegistry):
        self._services = services
        self._coordinator = coordinator
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[object, str]] = {}
        self._executor = ThreadPoolExecutor(max_workers=TOOL_WORKERS, thread_name_prefix="mcp-tool")
        registry.on_client_gone(self._client_gone)

    def open(self, context: dict | None = None) -> dict:
        """Start an MCP session for the calling client.

        Returns ``{"sid": …, "readOnlyTools": […]}``: the proxy needs to know which tool
        calls it may safely resend after a crash.
        """
        from memesh.mcp.session import McpSession

        conn = clientmod.current()
        owner = conn.client.session if conn is not None and conn.client is not None else ""
        context = dict(context) if isinstance(context, dict) else {}
        if conn is not None:
            context.setdefault("pid", conn.peer_pid)
        session = McpSession(self._services, context=context, tracker=_Tracker(self._coordinator, owner), executor=self._executor)
        sid = uuid.uuid4().hex
        with self._lock:
            self._sessions[sid] = (session, owner)
        a2a = getattr(self._services, "a2a", None)
        if a2a is not None:   # the window is an A2A agent while its session lives
            session.context["a2aSession"] = sid
            a2a.attach(sid, session, session.context)
        log.debug("mcp session %s opened for client %s (cwd %s)", sid[:8], owner[:8], context.get("cwd"))
        return {"sid": sid, "readOnlyTools": read_only_tools()}

    def _get(self, sid: str):
        with self._lock:
            entry = self._sessions.get(sid)
        if entry is None:
            raise NotFound(f"no MCP session {sid!r} in this daemon (it was closed or the daemon restarted); open a new one")
        return entry[0]

    def submit(self, sid: str, line: str) -> tuple[int, list[str]]:
        """Hand one raw line from the window to its session.

        Returns the batch of outgoing lines that was ready at once (answers to ``ping``,
        ``tools/list``, … are), saving the window a trip through ``poll``; later output
        comes through ``poll``. Batches are numbered (see ``McpSession.poll_batch``).
        """
        session = self._get(sid)
        session.submit(line)
        return session.poll_batch(0)

    def poll(self, sid: str, timeout: float = 1.0) -> tuple[int, list[str]]:
        """Wait up to ``timeout`` s (capped) for the session's next batch of outgoing lines."""
        try:
            timeout = max(0.0, min(float(timeout), MAX_POLL))
        except (TypeError, ValueError):
            timeout = 1.0
        return self._get(sid).poll_batch(timeout)

    def close(self, sid: str) -> None:
        with self._lock:
            entry = self._sessions.pop(sid, None)
        if entry is not None:
            a2a = getattr(self._services, "a2a", None)
            if a2a is not None:
                a2a.detach(sid)
            entry[0].close()

    def pending_output(self) -> int:
        """Lines queued for windows but not yet polled (the daemon waits for them on stop)."""
        with self._lock:
            sessions = [s for s, _ in self._sessions.values()]
        return sum(s.pending() for s in sessions)

    def count(self) -> int:
        return len(self._sessions)

    def _client_gone(self, owner: str) -> None:
        with self._lock:
            sids = [sid for sid, (_, o) in self._sessions.items() if o == owner]
        for sid in sids:
            self.close(sid)

    def shutdown(self) -> None:
        with self._lock:
            sids = list(self._sessions)
        for sid in sids:
            self.close(sid)
        self._executor.shutdown(wait=False, cancel_futures=True)
