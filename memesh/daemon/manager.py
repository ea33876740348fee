"""``MeshManager``: the ``BaseManager`` subclass through which clients reach the daemon.

Every shared typeid of :data:`memesh.daemon.server.TYPEIDS` is registered here with its
``exposed`` list, and used the way stock ``BaseManager`` code uses a manager::

    m = MeshManager(address=socket_path, authkey=key)
    m.connect()
    m.graph().search_nodes("sqlite")

The daemon serves ONE long-lived object per typeid under a fixed ident equal to the
typeid, so ``m.graph()`` needs no ``create`` round trip and the proxy it returns is owned
by the daemon (no ``incref``/``decref``: a client that dies leaks nothing). Calls go over
the stock per-thread connection, which is dropped after any error mid-call (the next
call would otherwise read the previous reply).

``memesh.connect()`` builds on the same class with a *transport*: its proxies send every
call through the handle's one hardened channel (timeouts, reconnect, error policy).
"""
from __future__ import annotations

import functools
import importlib
import inspect
from multiprocessing import managers
from typing import Callable

from memesh.daemon.server import TYPEIDS, MeshServer

#: Where each typeid's class lives: proxies carry its docstrings and signatures (help()).
CLASSES = {
    "control": "memesh.daemon.control:Control",
    "graph": "memesh.store.graph:KnowledgeGraph",
    "memory": "memesh.store.memory:MemoryStore",
    "mcp": "memesh.daemon.mcp_host:McpHost",
    "a2a": "memesh.a2a.hub:A2AHub",
}

#: (ident, method, args, kwargs) -> result: how a proxy's call reaches the daemon.
Transport = Callable[[str, str, tuple, dict], object]


def _class_of(typeid: str):
    module, _, name = CLASSES.get(typeid, ":").partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


class MeshProxy(managers.BaseProxy):
    """A proxy for one of the daemon's fixed shared objects; methods are its ``exposed`` list."""

    _exposed_: tuple[str, ...] = ()

    def _callmethod(self, methodname, args=(), kwds={}):
        transport = getattr(self._manager, "transport", None)
        if transport is not None:
            return transport(self._id, methodname, tuple(args), dict(kwds))
        try:
            conn = self._tls.connection
        except AttributeError:
            self._connect()
            conn = self._tls.connection
        try:
            conn.send((self._id, methodname, args, kwds))
            kind, result = conn.recv()
        except BaseException:
            del self._tls.connection  # out of step now: the next call opens a new one
            conn.close()
            raise
        if kind == "#RETURN":
            return result
        raise managers.convert_to_error(kind, result)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        raise AttributeError(f"the shared {self._token.typeid!r} object has no method {name!r}; it has: {', '.join(self._exposed_)}")

    def __repr__(self) -> str:
        pid = getattr(self._manager, "daemon_pid", None)
        where = f"memesh daemon pid {pid}" if pid else f"the memesh daemon at {self._token.address}"
        return f"<shared {self._token.typeid} in {where}: {', '.join(self._exposed_)}>"

    def __str__(self) -> str:
        return repr(self)


def _method(typeid: str, name: str, real):
    def method(self, /, *args, **kwds):
        return self._callmethod(name, args, kwds)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = real.__doc__ if real is not None and real.__doc__ else f"Run {typeid}.{name} in the daemon."
    if real is not None:
        try:
            method.__signature__ = inspect.signature(real)  # with self: a bound proxy method drops it
        except (TypeError, ValueError):
            pass
    return method


@functools.cache
def proxy_type(typeid: str) -> type:
    """The proxy class of ``typeid`` (made once): one method per exposed name, documented."""
    exposed = TYPEIDS[typeid][0]
    cls = _class_of(typeid)
    namespace = {"_exposed_": exposed, "__doc__": cls.__doc__ if cls is not None and cls.__doc__ else MeshProxy.__doc__}
    for name in exposed:
        namespace[name] = _method(typeid, name, getattr(cls, name, None))
    return type(f"{typeid.capitalize()}Proxy", (MeshProxy,), namespace)


class MeshManager(managers.BaseManager):
    """The BaseManager subclass of memesh; every shared typeid is registered here.

    ``transport`` (used by :func:`memesh.connect`) replaces the stock connections: every
    proxy call becomes ``transport(ident, method, args, kwargs)``.
    """

    _Server = MeshServer

    def __init__(self, address=None, authkey=None, serializer="pickle", ctx=None, *, transport: Transport | None = None):
        super().__init__(address, authkey, serializer, ctx)
        self.transport = transport
        self.daemon_pid: int | None = None

    def connect(self) -> None:
        """Connect to the running daemon (with a transport, that channel is already connected)."""
        if self.transport is None:
            super().connect()
        else:
            self._state.value = managers.State.STARTED

    def _fixed_proxy(self, typeid: str) -> MeshProxy:
        if self._state.value != managers.State.STARTED:
            raise managers.ProcessError(f"MeshManager is not connected; call connect() before {typeid}()")
        token = managers.Token(typeid, self._address, typeid)
        return proxy_type(typeid)(token, self._serializer, manager=self, authkey=self._authkey, exposed=TYPEIDS[typeid][0], manager_owned=True)


def _typeid_method(typeid: str):
    def get(self: MeshManager) -> MeshProxy:
        return self._fixed_proxy(typeid)

    get.__name__ = get.__qualname__ = typeid
    get.__doc__ = f"The daemon's shared ``{typeid}`` object (a proxy; one per daemon, never created or freed)."
    return get


for _typeid, (_exposed, _tracked) in TYPEIDS.items():
    MeshManager.register(_typeid, exposed=_exposed, create_method=False)
    setattr(MeshManager, _typeid, _typeid_method(_typeid))
