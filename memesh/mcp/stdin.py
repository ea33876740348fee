"""A window's stdin as lines: the one thread that reads it, and the pure line splitter.

Lines are split by :func:`split_lines` from raw chunks: a line (its newline included) of
up to ``limit`` bytes is yielded whole; a longer one is skipped to its end, unread, and
yields :data:`OVERSIZE`; blank lines yield nothing. The reader reads the file descriptor
with ``os.read`` whenever the stream has one, never through ``sys.stdin``'s buffered
object: a daemon thread blocked inside that object holds its lock, and an interpreter
that exits (EOF, SIGINT) while the lock is held aborts with "Fatal Python error:
_enter_buffered_busy".
"""
from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator

from memesh.mcp.jsonrpc import MAX_LINE_BYTES

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing on the proxy's start-up path
if TYPE_CHECKING:
    from typing import Any, BinaryIO

CHUNK = 1 << 16  # bytes per read: large enough for speed, small enough to allocate cheaply


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


EOF = _Marker("EOF")
OVERSIZE = _Marker("OVERSIZE")


def split_lines(chunks: Iterable[bytes], limit: int = MAX_LINE_BYTES) -> Iterator[bytes | _Marker]:
    """Lines of a byte stream given as chunks (see the module docstring); pure."""
    line = bytearray()
    over = False
    for chunk in chunks:
        start = 0
        size = len(chunk)
        while start < size:
            newline = chunk.find(b"\n", start)
            end = size if newline < 0 else newline + 1
            if not over:
                line += chunk[start:end]
                if len(line) > limit:
                    over = True
                    line.clear()
            if newline < 0:
                break
            if over:
                over = False
                yield OVERSIZE
            elif line.strip():
                yield bytes(line)
            line.clear()
            start = end
    if over:
        yield OVERSIZE
    elif line.strip():
        yield bytes(line)


def _chunks(stream: BinaryIO | int) -> Iterator[bytes]:
    fd = stream if isinstance(stream, int) else None
    if fd is None:
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
            fd = None
    read: Callable[[], bytes]
    if fd is not None:
        read = lambda: os.read(fd, CHUNK)  # noqa: E731
    else:
        read = getattr(stream, "read1", None) or stream.read  # type: ignore[union-attr]
        read = (lambda r=read: r(CHUNK))  # noqa: E731
    while True:
        try:
            chunk = read()
        except (OSError, ValueError):
            return
        if not chunk:
            return
        yield chunk


class StdinReader(threading.Thread):
    """Reads stdin lines from the first instant; oversize lines become OVERSIZE, the end EOF.

    Until a handler is attached, items wait in ``lines`` (nothing sent during start-up is
    lost). :meth:`attach` hands the queued items to the handler, in order, and from then
    on this thread calls the handler itself. A handler must never block for long: this
    thread is the one that notices the end of stdin.
    """

    def __init__(self, stream: BinaryIO | int, limit: int = MAX_LINE_BYTES):
        super().__init__(name="stdin", daemon=True)
        self.stream = stream
        self.limit = limit
        self.lines: queue.Queue = queue.Queue()
        self.ended = threading.Event()
        self._handler: Callable[[Any], None] | None = None
        self._order = threading.Lock()  # held while items are handed over: keeps them in order

    def attach(self, handler: Callable[[Any], None]) -> None:
        with self._order:
            self._handler = handler
            self._drain()

    def _drain(self) -> None:
        while True:
            try:
                item = self.lines.get_nowait()
            except queue.Empty:
                return
            self._handler(item)  # type: ignore[misc]

    def _emit(self, item: Any) -> None:
        with self._order:
            if self._handler is None:
                self.lines.put(item)
                return
            self._drain()
            self._handler(item)

    def run(self) -> None:
        try:
            for item in split_lines(_chunks(self.stream), self.limit):
                self._emit(item)
        finally:
            self.ended.set()
            self._emit(EOF)
