"""The manager wire protocol as memesh speaks it, on top of ``multiprocessing.connection``.

Framing is CPython's: a 4-byte big-endian signed length (``-1`` then an 8-byte length for
huge messages) followed by a pickle. Authentication is CPython's HMAC challenge in both
directions. A session on a connection is BaseManager's ``accept_connection`` mode: after
the handshake the client sends ``(None, "accept_connection", (name,), {})`` once, then
``(ident, method, args, kwargs)`` per call, answered by ``("#RETURN", value)``,
``("#ERROR", exception)`` or ``("#TRACEBACK", text)``.

What we add: a size cap that *drains* an oversize message instead of leaving the stream
desynchronised (the stock reader closes the connection), and kernel-level receive/send
timeouts so that no read or write can block forever.
"""
from __future__ import annotations

import os
import socket
import struct
from multiprocessing.reduction import ForkingPickler

from memesh.errors import MessageTooLarge

DRAIN_CHUNK = 1 << 20


def set_timeouts(sock_or_fd: socket.socket | int, receive: float | None, send: float | None = None) -> None:
    """Kernel send/receive timeouts (None or 0 = block forever) on a socket or its fd."""
    sock = sock_or_fd if isinstance(sock_or_fd, socket.socket) else socket.socket(fileno=os.dup(sock_or_fd))
    try:
        for option, value in ((socket.SO_RCVTIMEO, receive), (socket.SO_SNDTIMEO, send)):
            if value is None and option == socket.SO_SNDTIMEO:
                continue
            seconds = float(value or 0)
            sock.setsockopt(socket.SOL_SOCKET, option, struct.pack("ll", int(seconds), int((seconds % 1) * 1e6)))
    finally:
        if not isinstance(sock_or_fd, socket.socket):
            sock.close()


def _read_exact(fd: int, size: int) -> bytes:
    chunks = []
    remaining = size
    while remaining:
        chunk = os.read(fd, min(remaining, DRAIN_CHUNK * 8))
        if not chunk:
            if remaining == size:
                raise EOFError
            raise EOFError("end of file in the middle of a message")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _discard(fd: int, size: int) -> None:
    while size:
        chunk = os.read(fd, min(size, DRAIN_CHUNK))
        if not chunk:
            raise EOFError("end of file in the middle of an oversize message")
        size -= len(chunk)


def read_frame(fd: int, max_bytes: int) -> bytes:
    """Read one frame; an oversize one is read and thrown away, then MessageTooLarge.

    After MessageTooLarge the stream is still aligned on the next frame, so the caller
    can answer with an error and keep serving the connection.
    """
    (size,) = struct.unpack("!i", _read_exact(fd, 4))
    if size == -1:
        (size,) = struct.unpack("!Q", _read_exact(fd, 8))
    if size < 0:
        raise EOFError("corrupt frame header")
    if size > max_bytes:
        _discard(fd, size)
        raise MessageTooLarge(f"message of {size} bytes refused: the daemon accepts at most {max_bytes} bytes (daemon.max_message_bytes)")
    return _read_exact(fd, size)


def read_object(fd: int, max_bytes: int):
    return ForkingPickler.loads(read_frame(fd, max_bytes))


def dumps(obj) -> bytes:
    return bytes(ForkingPickler.dumps(obj))


def peer_credentials(sock: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end of a Unix socket; (0, -1) if unknown."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return 0, os.getuid()  # macOS: the 0700 directory is the boundary
    raw = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", raw)
    return pid, uid
