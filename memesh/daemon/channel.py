"""One authenticated client connection to the daemon (the client half of ``wire``).

A ``Channel`` is thread-safe (calls are serialised by a lock) and single-use after an
error: any exception in the middle of a call (timeout, Ctrl-C, EOF) may leave a reply in
flight that the *next* call would read as its own, so the channel closes itself and the
caller opens a new one. It never hides a reconnect: that policy lives in ``client``.
"""
from __future__ import annotations

import os
import socket
import threading
from multiprocessing import connection as mpc

from memesh.daemon import wire
from memesh.errors import DaemonFull, MemeshError

DEFAULT_CALL_TIMEOUT = 300.0  # a hung daemon must not pin a client forever; long calls are rare


class ChannelBroken(MemeshError):
    """The connection failed mid-call; ``sent`` says whether the request had gone out."""

    sent = False


class RemoteError(MemeshError):
    """The daemon failed in a way that produced only a traceback text."""


class HelloTimeout(MemeshError):
    """Connected, but the daemon did not complete the handshake in time."""


def _refused_as_full(sock: socket.socket, path: str) -> None:
    """Look at the daemon's first frame without taking it: a refusal instead of a challenge?"""
    first = sock.recv(64, socket.MSG_PEEK)
    full = wire.parse_full(first)
    if full is not None:
        raise DaemonFull(wire.full_message(*full, where=path))


class Channel:
    def __init__(self, conn: mpc.Connection, path: str):
        self._conn = conn
        self.path = path
        self._lock = threading.Lock()
        self._timeout: float | None = None
        self.closed = False

    @classmethod
    def open(cls, path: str, key: bytes, timeout: float, name: str = "memesh") -> "Channel":
        """Connect, authenticate both ways and enter the session, all within ``timeout``.

        Raises ``HelloTimeout`` if the daemon accepted but did not answer in time (a hung
        or stopped process), ``DaemonFull`` if it serves as many connections as it may,
        ``OSError``/``AuthenticationError`` if it refused.
        """
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.settimeout(None)
            wire.set_timeouts(sock, receive=timeout, send=timeout)
            try:
                _refused_as_full(sock, path)
            except (BlockingIOError, socket.timeout, TimeoutError) as exc:
                raise HelloTimeout(f"the daemon at {path} accepted the connection but did not answer within {timeout:.1f}s") from exc
            conn = mpc.Connection(sock.detach())
        except BaseException:
            sock.close()
            raise
        try:
            mpc.answer_challenge(conn, key)
            mpc.deliver_challenge(conn, key)
            conn.send_bytes(wire.dumps((None, "accept_connection", (name,), {})))
            kind, result = conn.recv()
            if kind == "#ERROR" and isinstance(result, DaemonFull):
                raise result
            if kind != "#RETURN":
                raise RemoteError(f"the daemon refused the session: {result}")
        except (BlockingIOError, socket.timeout, TimeoutError) as exc:
            conn.close()
            raise HelloTimeout(f"the daemon at {path} accepted the connection but did not answer within {timeout:.1f}s") from exc
        except BaseException:
            conn.close()
            raise
        channel = cls(conn, path)
        channel._timeout = timeout
        return channel

    def fileno(self) -> int:
        return self._conn.fileno()

    def call(self, ident: str, method: str, args: tuple = (), kwargs: dict | None = None, timeout: float | None = DEFAULT_CALL_TIMEOUT):
        with self._lock:
            if self.closed:
                raise ChannelBroken("the connection to the daemon is closed")
            sent = False
            try:
                if timeout != self._timeout:
                    wire.set_timeouts(self._conn.fileno(), receive=timeout, send=timeout)
                    self._timeout = timeout
                # Pickled to bytes first: Connection.send() hands a memoryview of a BytesIO
                # down to the write, and when that write fails (the daemon went away) the
                # traceback keeps it in a reference cycle that crashes the garbage
                # collector of CPython 3.12.1 (gh-111049). Bytes carry no such buffer.
                self._conn.send_bytes(wire.dumps((ident, method, tuple(args), kwargs or {})))
                sent = True
                kind, result = self._conn.recv()
            except BaseException as exc:
                self._close_locked()
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                broken = ChannelBroken(f"lost the connection to the daemon during {ident}.{method}: {exc!r}")
                broken.sent = sent
                raise broken from exc
        if kind == "#RETURN":
            return result
        if kind == "#ERROR":
            raise result
        raise RemoteError(f"{ident}.{method} failed in the daemon:\n{result}")

    def _close_locked(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self._conn.close()
            except OSError:
                pass

    def close(self) -> None:
        # Not under the lock: closing must also interrupt a call blocked in recv.
        if not self.closed:
            self.closed = True
            try:
                dup = socket.socket(fileno=os.dup(self._conn.fileno()))
                try:
                    dup.shutdown(socket.SHUT_RDWR)
                finally:
                    dup.close()
            except OSError:
                pass
            with self._lock:
                try:
                    self._conn.close()
                except OSError:
                    pass
