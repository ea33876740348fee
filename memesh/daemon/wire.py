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

import errno
import os
import socket
import struct
import time
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


def set_receive_timeout(sock: socket.socket, seconds: float) -> None:
    """SO_RCVTIMEO on a socket object we hold (0 = block forever); one system call."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", int(seconds), int((seconds % 1) * 1e6)))


class _Deadline:
    """Bounds the *whole* rest of a message once its header arrived, not each read.

    A peer that drips one byte every few seconds would renew a per-read timeout forever;
    before each blocking read the kernel timeout is set to what is left of the message's
    time. Nothing is set while every read finds its data already there (the usual case).
    """

    __slots__ = ("sock", "until", "armed")

    def __init__(self, sock: socket.socket, seconds: float):
        self.sock = sock
        self.until = time.monotonic() + seconds
        self.armed = False

    def before_read(self) -> None:
        left = self.until - time.monotonic()
        if left <= 0:
            raise TimeoutError(errno.ETIMEDOUT, "the rest of the message did not arrive in time")
        set_receive_timeout(self.sock, max(left, 0.001))
        self.armed = True

    def disarm(self) -> None:
        if self.armed:
            set_receive_timeout(self.sock, 0)
            self.armed = False


FAST_BODY = 1 << 20  # a body up to this size is first taken without blocking, in one call


def _read_exact(fd: int, size: int, deadline: _Deadline | None = None) -> bytes:
    chunks = []
    remaining = size
    while remaining:
        if deadline is not None:
            deadline.before_read()
        chunk = os.read(fd, min(remaining, DRAIN_CHUNK * 8))
        if not chunk:
            if remaining == size:
                raise EOFError
            raise EOFError("end of file in the middle of a message")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _discard(fd: int, size: int, deadline: _Deadline | None = None) -> None:
    while size:
        if deadline is not None:
            deadline.before_read()
        chunk = os.read(fd, min(size, DRAIN_CHUNK))
        if not chunk:
            raise EOFError("end of file in the middle of an oversize message")
        size -= len(chunk)


def read_frame(fd: int, max_bytes: int, sock: socket.socket | None = None, message_timeout: float = 0.0) -> bytes:
    """Read one frame; an oversize one is read and thrown away, then MessageTooLarge.

    After MessageTooLarge the stream is still aligned on the next frame, so the caller
    can answer with an error and keep serving the connection.

    With ``sock`` (the socket under ``fd``) and ``message_timeout`` > 0, waiting for the
    *first* byte is unbounded (an idle connection is the reaper's business), but once it
    came the whole message must arrive within ``message_timeout`` seconds, or
    ``TimeoutError``/``BlockingIOError`` (an ``OSError``) ends the connection: a huge
    length header followed by silence cannot pin the serving thread.
    """
    head = os.read(fd, 4)
    if not head:
        raise EOFError
    deadline = None
    if sock is not None and message_timeout > 0:
        deadline = _Deadline(sock, message_timeout)
    try:
        if len(head) < 4:
            head += _read_exact(fd, 4 - len(head), deadline)
        (size,) = struct.unpack("!i", head)
        if size == -1:
            (size,) = struct.unpack("!Q", _read_exact(fd, 8, deadline))
        if size < 0:
            raise EOFError("corrupt frame header")
        if size > max_bytes:
            _discard(fd, size, deadline)
            raise MessageTooLarge(f"message of {size} bytes refused: the daemon accepts at most {max_bytes} bytes (daemon.max_message_bytes)")
        if deadline is None or size == 0 or size > FAST_BODY:
            return _read_exact(fd, size, deadline)
        try:
            body = sock.recv(size, socket.MSG_DONTWAIT)
            if not body:
                raise EOFError("end of file in the middle of a message")
        except BlockingIOError:
            body = b""
        if len(body) == size:
            return body
        return body + _read_exact(fd, size - len(body), deadline)
    finally:
        if deadline is not None:
            deadline.disarm()


def read_object(fd: int, max_bytes: int, sock: socket.socket | None = None, message_timeout: float = 0.0):
    return ForkingPickler.loads(read_frame(fd, max_bytes, sock, message_timeout))


FULL_TAG = b"#FULL"


def full_frame(open_connections: int, limit: int) -> bytes:
    """The one frame a daemon at its connection cap sends instead of a challenge."""
    payload = FULL_TAG + f" {open_connections} {limit}".encode()
    return struct.pack("!i", len(payload)) + payload


def parse_full(frame: bytes) -> tuple[int, int] | None:
    """Pure: (open connections, limit) if ``frame`` starts with a full-daemon refusal, else None."""
    if len(frame) < 4 + len(FULL_TAG) or frame[4:4 + len(FULL_TAG)] != FULL_TAG:
        return None
    (size,) = struct.unpack("!i", frame[:4])
    fields = frame[4 + len(FULL_TAG):4 + max(0, size)].split()
    try:
        return int(fields[0]), int(fields[1])
    except (IndexError, ValueError):
        return 0, 0


def full_message(open_connections: int, limit: int, where: str = "") -> str:
    at = f" at {where}" if where else ""
    return (f"the memesh daemon{at} is full: {open_connections} connections open, daemon.max_connections is {limit}. "
            "Close some windows or raise daemon.max_connections (then `memesh daemon restart`)")


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
