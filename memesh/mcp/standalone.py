"""Standalone mode: one MCP session served in-process on this process's stdin/stdout.

Used when the daemon is disabled (``MEMESH_DISABLE_DAEMON=1``) and by the tests as the
reference server. The wire is newline-delimited JSON-RPC (:mod:`memesh.mcp.jsonrpc`):
stdout carries protocol lines only, each written whole and flushed; logs go to stderr.

Threads: a reader feeds stdin lines to :meth:`McpSession.submit` (a line over
:data:`~memesh.mcp.jsonrpc.MAX_LINE_BYTES` is skipped unread and answered with an error);
a writer copies what :meth:`McpSession.poll` returns to stdout, one flushed line at a
time. On stdin EOF (or once stdout is gone) the calls in flight get up to
:data:`EOF_GRACE_S` to finish, their replies are written, and ``run`` returns 0.

Run it with ``python -m memesh.mcp.standalone``.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO

from memesh.mcp import jsonrpc
from memesh.mcp.events import EventBus
from memesh.mcp.session import McpSession

logger = logging.getLogger(__name__)

EOF_GRACE_S = 1.5      # in-flight calls may finish after stdin EOF; the client waits ~2 s, then kills
POLL_TICK_S = 0.1      # how often the writer (and the main thread) re-check whether to stop
READ_CHUNK = 1 << 20   # bytes per read from stdin


@dataclasses.dataclass
class _Services:
    graph: Any
    events: Any


class _Writer:
    """Writes whole lines to the wire; shared by the reader (oversize replies) and the main loop."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.broken = False

    def write(self, lines: list[str]) -> None:
        if not lines or self.broken:
            return
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        with self._lock:
            try:
                self._stream.write(data)
                self._stream.flush()
            except (OSError, ValueError):
                self.broken = True   # the client closed its end; stdin EOF follows


def _fd_lines(fd: int) -> Iterator[bytes | None]:
    """Lines read straight from a file descriptor; None stands for a skipped oversize line.

    ``os.read`` holds no Python-level lock, so a reader still blocked here when the
    process exits (stdout gone, stdin still open) cannot hang interpreter shutdown.
    """
    pending, skipping = bytearray(), False
    while chunk := os.read(fd, READ_CHUNK):
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            if not skipping:
                pending += chunk[start:end + 1]
                yield None if len(pending) > jsonrpc.MAX_LINE_BYTES + 1 else bytes(pending)
            else:
                yield None
            pending.clear()
            skipping, start = False, end + 1
        if not skipping:
            pending += chunk[start:]
            if len(pending) > jsonrpc.MAX_LINE_BYTES:
                pending.clear()
                skipping = True
    if skipping:
        yield None
    elif pending:
        yield bytes(pending)


def _stream_lines(stream: BinaryIO) -> Iterator[bytes | None]:
    """The same over a file object without a descriptor (an in-memory stream)."""
    while line := stream.readline(jsonrpc.MAX_LINE_BYTES + 1):
        if len(line) > jsonrpc.MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := stream.readline(READ_CHUNK)) and not rest.endswith(b"\n"):
                pass
            yield None
        else:
            yield line


def lines_of(stdin: BinaryIO) -> Iterator[bytes | None]:
    """Every line of ``stdin`` (None for each line over the size limit), until EOF."""
    try:
        fd = stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return _stream_lines(stdin)
    return _fd_lines(fd)


def read_lines(stdin: BinaryIO, session: McpSession, writer: _Writer, eof: threading.Event) -> None:
    """Reader thread body: submit every line, answer oversize ones, set ``eof`` at the end."""
    try:
        for line in lines_of(stdin):
            if line is None:
                logger.warning("discarded a message larger than %d bytes", jsonrpc.MAX_LINE_BYTES)
                writer.write([jsonrpc.dumps(jsonrpc.oversize_reply())])
            else:
                session.submit(line)
    except Exception:
        logger.exception("stdin reader failed; treating it as end of input")
    finally:
        eof.set()


def _pump(session: McpSession, writer: _Writer, stop: threading.Event) -> None:
    """Writer thread body: copy the session's outgoing lines to the wire until told to stop."""
    while not stop.is_set() and not writer.broken:
        writer.write(session.poll(POLL_TICK_S))


def serve(session: McpSession, stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Pump lines between the streams and ``session`` until stdin ends; returns 0."""
    writer = _Writer(stdout)
    eof, stop = threading.Event(), threading.Event()
    reader = threading.Thread(target=read_lines, args=(stdin, session, writer, eof), name="memesh-stdin", daemon=True)
    pump = threading.Thread(target=_pump, args=(session, writer, stop), name="memesh-stdout", daemon=True)
    reader.start()
    pump.start()
    while not eof.wait(POLL_TICK_S) and not writer.broken:
        pass
    if not session.wait_idle(EOF_GRACE_S):
        logger.warning("stdin closed with %d call(s) still running; exiting without their replies", session.in_flight())
    stop.set()
    pump.join(POLL_TICK_S + 0.3)
    writer.write(session.poll(0))
    return 0


def run(settings: Any, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> int:
    """Serve one MCP client on ``stdin``/``stdout`` over the database under ``settings.home``."""
    from memesh.paths import ensure_layout, paths_for
    from memesh.store.db import Database
    from memesh.store.graph import KnowledgeGraph

    stdin = sys.stdin.buffer if stdin is None else stdin
    stdout = sys.stdout.buffer if stdout is None else stdout
    paths = paths_for(settings.home)
    ensure_layout(paths)
    database = Database(paths.db)
    session = McpSession(_Services(graph=KnowledgeGraph(database), events=EventBus()),
                         context={"cwd": os.getcwd(), "pid": os.getppid(), "mode": "standalone"})
    try:
        return serve(session, stdin, stdout)
    finally:
        session.close()
        database.close()


def main() -> int:
    """``python -m memesh.mcp.standalone``: settings from the environment, logs to stderr."""
    from memesh.config import load_settings
    from memesh.errors import MemeshError

    try:
        settings = load_settings()
    except MemeshError as exc:
        sys.stderr.write(f"memesh: {exc}\n")
        return exc.exit_code
    level = getattr(logging, str(settings["daemon.log_level"]).upper(), logging.INFO)
    logging.basicConfig(stream=sys.stderr, level=level,
                        format="memesh %(levelname)s %(name)s: %(message)s")
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
