"""Attaching to the daemon from Python: ``memesh.connect()`` and the ``Mesh`` handle.

``Mesh`` stands on :class:`~memesh.daemon.manager.MeshManager`: its ``graph``, ``memory``
and ``control`` are that manager's proxies (methods exactly the typeid's ``exposed``
list), with the manager's transport set to :meth:`Mesh.call`, so they share ONE
connection for all objects and all threads of this process. Reconnection policy (the
only place it lives):

* the daemon says it is draining (stop, restart, upgrade) → wait for its successor,
  reconnect, resend;
* the connection broke before the request was sent, or the call only reads → reconnect
  and retry;
* it broke after a state-changing request was sent → :class:`OutcomeUnknown`.

After every error the connection is discarded, never reused (see ``channel``).
"""
from __future__ import annotations

import os
import threading
import uuid

from memesh import identity
from memesh.config import Settings, load_settings
from memesh.daemon.channel import Channel, ChannelBroken
from memesh.daemon.manager import MeshManager
from memesh.daemon.spawn import connect_compatible, wait_for_handover
from memesh.errors import DaemonDraining, OutcomeUnknown
from memesh.paths import paths_for

#: Calls that only read: safe to send again after a broken connection.
READ_ONLY = {
    "control": {"hello", "ping", "heartbeat", "status", "bye"},
    "graph": {"read_graph", "search_nodes", "open_nodes", "stats"},
    "memory": {"recall", "list", "stats"},
    "a2a": {"agents", "inbox", "tasks", "get_task", "status"},
}
MAX_ATTEMPTS = 4


class Mesh:
    """A connection to the user's daemon with the shared objects bound as attributes."""

    mode = "daemon"

    def __init__(self, settings: Settings, *, name: str = "python", kind: str = "repl", start: bool = True, heartbeat: float | None = None):
        if heartbeat is None:
            heartbeat = settings.seconds("daemon.heartbeat_interval")
        self.settings = settings
        self.paths = paths_for(settings.home)
        self.session = uuid.uuid4().hex
        self._start = start
        self.info = {
            **identity.identity(),
            "session": self.session,
            "name": name,
            "kind": kind,
            "pid": os.getpid(),
            "cwd": os.getcwd(),
            "heartbeat": heartbeat,
        }
        self._channel: Channel | None = None
        self.hello: dict = {}
        self.manager = MeshManager(address=str(self.paths.socket), transport=self.call)
        self._connect()
        self.manager.connect()
        self.control = self.manager.control()
        self.graph = self.manager.graph()
        self.memory = self.manager.memory()
        self.a2a = self.manager.a2a()   # send, inbox, reply, agents, tasks (memesh.a2a.hub)
        self._closed = threading.Event()
        if heartbeat > 0:
            threading.Thread(target=self._beat, args=(heartbeat,), name="memesh-heartbeat", daemon=True).start()

    def _beat(self, interval: float) -> None:
        """Keep the promise made in the hello: a call at least every ``interval`` seconds."""
        while not self._closed.wait(interval / 2):
            channel = self._channel
            if channel is None or channel.closed:
                continue  # only a call of the program reconnects (and may start a daemon), never a beat
            try:
                channel.call("control", "heartbeat", timeout=interval)
            except Exception:
                pass  # the channel closed itself; the program's next call reconnects

    @property
    def daemon_pid(self) -> int | None:
        return self.hello.get("pid")

    def _connect(self) -> Channel:
        channel, hello = connect_compatible(self.settings, self.paths, self.info, start=self._start, name=self.info["name"])
        self._channel, self.hello = channel, hello
        self.manager._address = channel.path  # what the manager reports; calls use the channel
        self.manager.daemon_pid = hello.get("pid")
        return channel

    def call(self, ident: str, method: str, args: tuple = (), kwargs: dict | None = None, timeout: float | None = 300.0):
        """Run ``ident.method(*args, **kwargs)`` in the daemon, reconnecting as the policy allows."""
        for attempt in range(MAX_ATTEMPTS):
            channel = self._channel or self._connect()
            try:
                return channel.call(ident, method, args, kwargs, timeout=timeout)
            except DaemonDraining:
                self._drop()
                wait_for_handover(self.paths, self.settings)
            except ChannelBroken as exc:
                self._drop()
                if exc.sent and method not in READ_ONLY.get(ident, ()):
                    raise OutcomeUnknown(
                        f"the daemon went away while running {ident}.{method}; it may or may not have taken effect — check before repeating it"
                    ) from exc
                if attempt == MAX_ATTEMPTS - 1:
                    raise
        raise DaemonDraining("the daemon kept draining; try again in a moment")

    def _drop(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def close(self) -> None:
        """Say goodbye (the daemon frees this client's state at once) and disconnect."""
        self._closed.set()
        if self._channel is not None:
            try:
                self._channel.call("control", "bye", timeout=2.0)
            except Exception:
                pass
            self._drop()

    def __enter__(self) -> "Mesh":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<memesh.Mesh daemon pid {self.daemon_pid} at {self.paths.home}>"


class StandaloneControl:
    """The control surface when daemon mode is disabled: status only, nothing to stop."""

    def __init__(self, settings: Settings):
        self._settings = settings

    def status(self) -> dict:
        from memesh.store.url import describe, parse_storage_url

        paths = paths_for(self._settings.home)
        return {
            "mode": "standalone",
            "reason": f"daemon disabled ({self._settings.sources['daemon.enabled']})",
            "version": identity.__version__,
            "protocol": identity.PROTOCOL_VERSION,
            "home": str(paths.home),
            "dbPath": str(paths.db),
            "storage": describe(parse_storage_url(self._settings["storage.url"]), str(paths.db)),
        }

    def ping(self) -> float:
        import time

        return time.time()

    def __repr__(self) -> str:
        return "<memesh standalone control (daemon disabled)>"


class StandaloneMesh:
    """What ``connect`` returns when daemon mode is disabled: objects on the database, in-process."""

    mode = "standalone"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.paths = paths_for(settings.home)
        self.control = StandaloneControl(settings)
        self._storage = None

    def _open(self):
        """The storage named by ``storage.url`` (the home's SQLite file by default), opened once."""
        if self._storage is None:
            from memesh.paths import ensure_layout
            from memesh.store.storage import open_from_settings

            ensure_layout(self.paths)
            self._storage = open_from_settings(self.settings, self.paths.db)
        return self._storage

    @property
    def graph(self):
        return self._open().graph

    @property
    def memory(self):
        """The memory store, in-process on the storage (no daemon in standalone mode)."""
        return self._open().memory

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<memesh.StandaloneMesh (daemon disabled) at {self.paths.home}>"


def connect(settings: Settings | None = None, *, name: str = "python", kind: str = "repl", start: bool = True, heartbeat: float | None = None):
    """Attach to this user's daemon, starting it if needed (and allowed).

    ``heartbeat`` (seconds; default ``daemon.heartbeat_interval``, 0 = none): a background
    thread calls the daemon at least that often, and the daemon drops this client after
    three missed beats (a stopped or hung process), not only when its connection closes.

    Returns a :class:`Mesh` (``.control``, ``.graph``), or a :class:`StandaloneMesh`
    working directly on the database when daemon mode is disabled
    (``MEMESH_DISABLE_DAEMON=1``); no daemon is started then.
    """
    settings = settings or load_settings()
    if not settings.daemon_enabled:
        return StandaloneMesh(settings)
    return Mesh(settings, name=name, kind=kind, start=start, heartbeat=heartbeat)
