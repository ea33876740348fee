"""Who is connected to the daemon: connections, the client sessions they belong to, heartbeats.

A *connection* is one authenticated socket served by one server thread. A *client* is
one program (a window's proxy, a REPL, a CLI call) identified by the session id it sends
in its hello; a proxy uses two connections for one client. A client is gone when its
last connection closes, or when it declared a heartbeat interval and missed three beats
(a client with a call in flight is alive, whatever its heartbeat: its beat may be queued
behind that very call on the same connection); then every piece of daemon-side state registered for it is released through the
``on_client_gone`` callbacks, never through BaseManager reference counting (a SIGKILLed
client sends no decref).
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
import socket
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)

MISSED_BEATS = 3

_local = threading.local()
_ids = itertools.count(1)


def missed_heartbeat(now: float, last_seen: float, interval: float, misses: int = MISSED_BEATS, busy: int = 0) -> bool:
    """Pure: has a client that promised a beat every ``interval`` s been silent too long?

    ``busy`` is the number of its calls the daemon is running: a client waiting for an
    answer is alive (its beats wait behind that call on the same connection).
    """
    return busy <= 0 and interval > 0 and now - last_seen > misses * interval


def idle_too_long(now: float, last_active: float, limit: float, said_hello: bool, busy: int = 0, pressure: bool = True) -> bool:
    """Pure: should an authenticated connection that never said hello be cut?

    A connection that said hello is judged by its client's heartbeats (or its EOF).
    One that never did, and has neither a call running nor sent anything for ``limit``
    seconds, gives its slot up when slots are short (``pressure``): stock
    ``BaseManager`` code never says hello and may sit idle for long, and harms nobody
    while the daemon has room.
    """
    return pressure and not said_hello and busy <= 0 and limit > 0 and now - last_active > limit


@dataclasses.dataclass
class Connection:
    id: int
    sock: socket.socket | None
    peer_pid: int
    peer_uid: int
    opened: float  # wall clock
    client: "Client | None" = None
    authenticated: bool = False  # set once the handshake is complete and the session entered
    last_active: float = dataclasses.field(default_factory=time.monotonic)  # last request read
    busy: int = 0  # calls of this connection the daemon is running now

    def kick(self, how: int = socket.SHUT_RDWR) -> None:
        """Make the serving thread see EOF (shutdown wakes a blocked read).

        With ``SHUT_RD`` requests already queued on the socket are still read and
        answered first, and the peer's further sends fail at once (EPIPE), so a client
        never has to guess whether a request it sent was seen.
        """
        if self.sock is not None:
            try:
                self.sock.shutdown(how)
            except OSError:
                pass


@dataclasses.dataclass
class Client:
    session: str
    name: str
    kind: str
    pid: int
    connected_since: float  # wall clock
    heartbeat_interval: float  # seconds; 0 = relies on EOF only
    last_seen: float  # monotonic
    last_seen_wall: float
    version: str = ""
    cwd: str = ""
    connections: set[int] = dataclasses.field(default_factory=set)
    busy: int = 0  # calls of this client the daemon is running now (all its connections)

    def row(self) -> dict:
        return {
            "session": self.session,
            "name": self.name,
            "kind": self.kind,
            "pid": self.pid,
            "version": self.version,
            "cwd": self.cwd,
            "connectedSince": self.connected_since,
            "lastHeartbeat": self.last_seen_wall,
            "heartbeatInterval": self.heartbeat_interval,
            "connections": len(self.connections),
        }


def current() -> Connection | None:
    """The connection served by the calling thread (None outside a server thread)."""
    return getattr(_local, "connection", None)


def set_current(conn: Connection | None) -> None:
    _local.connection = conn


class ClientRegistry:
    """Thread-safe table of connections and clients."""

    def __init__(self, on_change: Callable[[], None] = lambda: None):
        self._lock = threading.Lock()
        self.connections: dict[int, Connection] = {}
        self.clients: dict[str, Client] = {}
        self._gone_callbacks: list[Callable[[str], None]] = []
        self._on_change = on_change

    def on_client_gone(self, callback: Callable[[str], None]) -> None:
        self._gone_callbacks.append(callback)

    def open(self, sock: socket.socket | None, peer_pid: int, peer_uid: int) -> Connection:
        conn = Connection(next(_ids), sock, peer_pid, peer_uid, time.time())
        with self._lock:
            self.connections[conn.id] = conn
        return conn

    @property
    def connection_count(self) -> int:
        return len(self.connections)

    def hello(self, conn: Connection, info: dict) -> Client:
        """Attach a connection to its client session (creating the client on first hello)."""
        session = str(info.get("session") or f"conn-{conn.id}")
        now = time.monotonic()
        created = False
        with self._lock:
            client = self.clients.get(session)
            if client is None:
                created = True
                client = Client(
                    session=session,
                    name=str(info.get("name") or "client")[:80],
                    kind=str(info.get("kind") or "client")[:20],
                    pid=conn.peer_pid or int(info.get("pid") or 0),
                    connected_since=time.time(),
                    heartbeat_interval=max(0.0, float(info.get("heartbeat") or 0)),
                    last_seen=now,
                    last_seen_wall=time.time(),
                    version=str(info.get("version") or "")[:40],
                    cwd=str(info.get("cwd") or "")[:4096],
                )
                self.clients[session] = client
            client.connections.add(conn.id)
            conn.client = client
        if created:
            log.info("client %s connected: %s pid %s (%s)", session[:8], client.name, client.pid, client.kind)
            self._on_change()
        return client

    def seen(self, conn: Connection) -> None:
        now = time.monotonic()
        conn.last_active = now
        client = conn.client
        if client is not None:
            client.last_seen = now
            client.last_seen_wall = time.time()

    def call_started(self, conn: Connection) -> Client | None:
        """A request of ``conn`` is being run: its client is alive until :meth:`call_ended`.

        Returns the client counted (a hello during the call attaches a client that was
        not counted; the same one must be uncounted at the end).
        """
        self.seen(conn)
        with self._lock:
            conn.busy += 1
            client = conn.client
            if client is not None:
                client.busy += 1
        return client

    def call_ended(self, conn: Connection, client: Client | None) -> None:
        with self._lock:
            conn.busy -= 1
            if client is not None:
                client.busy -= 1
        self.seen(conn)  # the silence that counts starts when the answer leaves

    def close(self, conn: Connection) -> None:
        """The connection ended; if it was its client's last one, the client is gone."""
        gone = None
        with self._lock:
            self.connections.pop(conn.id, None)
            client = conn.client
            if client is not None:
                client.connections.discard(conn.id)
                if not client.connections and self.clients.get(client.session) is client:
                    del self.clients[client.session]
                    gone = client
        if gone is not None:
            self._release(gone, "disconnected")

    def drop_client(self, session: str, reason: str) -> None:
        """Forget a client now (bye, missed heartbeats) and cut its connections."""
        with self._lock:
            client = self.clients.pop(session, None)
            conns = [self.connections[c] for c in client.connections if c in self.connections] if client else []
        if client is None:
            return
        for conn in conns:
            conn.kick()
        self._release(client, reason)

    def _release(self, client: Client, reason: str) -> None:
        log.info("client %s gone (%s): %s pid %s", client.session[:8], reason, client.name, client.pid)
        for callback in self._gone_callbacks:
            try:
                callback(client.session)
            except Exception:
                log.exception("releasing state of client %s", client.session)
        self._on_change()

    def kick_unauthenticated(self, deadline: float, now: float | None = None) -> int:
        """Cut connections still in the handshake ``deadline`` seconds after they opened.

        The per-read timeout alone would let a peer that drips one byte at a time hold a
        connection (and its thread) for as long as it likes.
        """
        now = time.time() if now is None else now
        with self._lock:
            late = [c for c in self.connections.values() if not c.authenticated and now - c.opened > deadline]
        for conn in late:
            conn.kick()
        return len(late)

    def kick_idle(self, limit: float, now: float | None = None) -> int:
        """Cut authenticated connections that never said hello and stayed silent ``limit`` s
        (called when the daemon is short of connection slots)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            idle = [c for c in self.connections.values()
                    if c.authenticated and idle_too_long(now, c.last_active, limit, c.client is not None, c.busy)]
        for conn in idle:
            log.info("closing connection %d of pid %s: no hello and nothing sent for %.0fs", conn.id, conn.peer_pid, limit)
            conn.kick()
        return len(idle)

    def reap(self, now: float | None = None) -> list[str]:
        """Drop clients that missed their heartbeats; returns their session ids."""
        now = time.monotonic() if now is None else now
        with self._lock:
            late = [c.session for c in self.clients.values()
                    if missed_heartbeat(now, c.last_seen, c.heartbeat_interval, busy=c.busy)]
        for session in late:
            self.drop_client(session, "missed heartbeats")
        return late

    def rows(self) -> list[dict]:
        with self._lock:
            return [c.row() for c in sorted(self.clients.values(), key=lambda c: c.connected_since)]

    def count(self, kinds_excluded: tuple[str, ...] = ("cli",)) -> int:
        with self._lock:
            return sum(1 for c in self.clients.values() if c.kind not in kinds_excluded)

    def kick_all(self, how: int = socket.SHUT_RDWR) -> None:
        with self._lock:
            conns = list(self.connections.values())
        for conn in conns:
            conn.kick(how)
