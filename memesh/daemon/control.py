"""The ``control`` shared object: hello, ping, heartbeat, bye, status, stop, upgrade.

Every method takes and returns plain data. ``status`` only reads in-memory state under
short locks, so it answers promptly even while other threads are busy with slow calls.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from memesh.daemon import clients as clientmod

if TYPE_CHECKING:  # pragma: no cover
    from memesh.daemon.process import Daemon


class Control:
    """Daemon control surface, served to every client as the ``control`` typeid."""

    def __init__(self, daemon: "Daemon"):
        self._daemon = daemon

    def hello(self, info: dict | None = None) -> dict:
        """Introduce the calling client; returns the daemon's identity and versions.

        ``info`` may carry ``session`` (shared by all connections of one client),
        ``name``, ``kind`` (proxy, repl, cli, …), ``version``, ``protocol``, ``build``,
        ``cwd``, ``heartbeat`` (seconds; the client promises a call at least that often) and
        ``probe`` (true for a status query: it does not restart the idle clock).
        """
        info = info if isinstance(info, dict) else {}
        conn = clientmod.current()
        if conn is not None:
            self._daemon.clients.hello(conn, info)
        if not info.get("probe"):  # `memesh daemon status` only looks: that is not activity
            self._daemon.coordinator.touch()
        return self._daemon.identity()

    def ping(self) -> float:
        """Liveness probe: the daemon's wall clock (seconds since the epoch)."""
        return time.time()

    def heartbeat(self) -> None:
        """Keep-alive for clients that declared a heartbeat interval in their hello."""

    def bye(self) -> None:
        """The client is leaving: release its state now rather than at EOF."""
        conn = clientmod.current()
        if conn is not None and conn.client is not None:
            self._daemon.clients.drop_client(conn.client.session, "said goodbye")

    def status(self) -> dict:
        """Everything ``memesh daemon status`` shows, as plain data."""
        return self._daemon.status()

    def stop(self, force: bool = False, reason: str = "") -> dict:
        """Ask the daemon to stop: drain in-flight work first unless ``force``."""
        conn = clientmod.current()
        who = f"pid {conn.peer_pid}" if conn is not None else "a client"
        self._daemon.request_stop(reason or f"stop requested by {who}", force=bool(force))
        return {"pid": self._daemon.pid, "inflight": self._daemon.coordinator.inflight, "force": bool(force)}

    def request_upgrade(self, info: dict | None = None) -> dict:
        """A newer client asks this daemon to drain and hand over to the installed code."""
        info = info if isinstance(info, dict) else {}
        reason = f"upgrade requested by {info.get('name') or 'a client'} {info.get('version') or ''}".strip()
        conn = clientmod.current()
        # Before draining: the clients about to race for the next start must find who asked.
        self._daemon.record_handover(info, conn.peer_pid if conn is not None and conn.peer_pid else info.get("pid"))
        self._daemon.request_stop(reason, force=False)
        return {"pid": self._daemon.pid, "accepted": True}
