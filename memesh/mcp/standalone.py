"""Standalone mode: one MCP session served in-process on this process's stdin/stdout.

Used when daemon mode is disabled (``MEMESH_DISABLE_DAEMON=1``), and as the fallback
when the daemon cannot be used. It is the proxy's own loop (``memesh.mcp.proxy``) over an
in-process session instead of a daemon session, so both modes share one implementation
of reading, writing, EOF handling and oversize lines.

What is here: :class:`LocalChannel` (the channel interface over an in-process host),
:class:`LocalHost` (one session whose tool calls run on daemon threads, so a long call
never holds up the exit after stdin ends) and :class:`UnusableHost`, which answers every
request with one error saying why memesh cannot serve (its home is unusable) and what
to do, so the client shows that reason instead of a server that died silently.

Run it with ``python -m memesh.mcp.standalone`` (standalone whatever the settings say).
"""
from __future__ import annotations

import errno
import queue
import sys
import threading
from concurrent.futures import Executor, Future
from typing import Any, BinaryIO

from memesh.mcp import jsonrpc

LOCAL_WORKERS = 16  # concurrent tool calls of the one window; SQLite serialises writes anyway


class LocalChannel:
    """The channel interface over an in-process session host (standalone mode)."""

    def __init__(self, host: Any):
        self._host = host
        self.closed = False

    def call(self, ident: str, method: str, args: tuple = (), kwargs: dict | None = None, timeout: float | None = None):
        if ident == "mcp":
            return getattr(self._host, method)(*args, **(kwargs or {}))
        return None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._host.shutdown()


class DaemonThreadExecutor(Executor):
    """A small thread pool whose threads never keep the process alive.

    ``ThreadPoolExecutor`` joins its threads when the interpreter exits, so one long tool
    call would delay the exit after stdin EOF past what clients allow (2 s). An
    interrupted call is like a killed process: SQLite rolls back what was not committed.
    """

    def __init__(self, workers: int, name: str = "memesh-local"):
        self._workers = workers
        self._name = name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._shut = False

    def submit(self, fn, /, *args, **kwargs) -> Future:
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot schedule new calls after shutdown")
            future: Future = Future()
            self._queue.put((future, fn, args, kwargs))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._workers:
                thread = threading.Thread(target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del item, future
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shut = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
        for _ in threads:
            self._queue.put(None)
        if wait:
            for thread in threads:
                thread.join()


class LocalHost:
    """One in-process MCP session over local services, with the daemon host's interface."""

    def __init__(self, services: Any):
        self._services = services
        self._executor = DaemonThreadExecutor(LOCAL_WORKERS)
        self._session: Any = None

    def open(self, context: dict | None = None) -> dict:
        from memesh.mcp.session import McpSession
        from memesh.mcp.tools import read_only_tool_names

        self._session = McpSession(self._services, context=dict(context or {}), executor=self._executor)
        return {"sid": "local", "readOnlyTools": read_only_tool_names()}

    def submit(self, sid: str, line: str) -> tuple[int, list[str]]:
        self._session.submit(line)
        return self._session.poll_batch(0)

    def poll(self, sid: str, timeout: float = 1.0) -> tuple[int, list[str]]:
        return self._session.poll_batch(timeout)

    def shutdown(self) -> None:
        if self._session is not None:
            self._session.close()
        self._executor.shutdown(wait=False, cancel_futures=True)


class UnusableHost:
    """Answers every request with ``reason`` (JSON-RPC internal error); serves nothing else."""

    def __init__(self, reason: str):
        self.reason = reason
        self._closed = threading.Event()
        self._batches = 0
        self._lock = threading.Lock()

    def open(self, context: dict | None = None) -> dict:
        return {"sid": "unusable", "readOnlyTools": []}

    def submit(self, sid: str, line: str) -> tuple[int, list[str]]:
        message = jsonrpc.parse_line(line)
        if isinstance(message, jsonrpc.Request):
            reply = jsonrpc.error(message.id, jsonrpc.INTERNAL_ERROR, self.reason)
        elif isinstance(message, jsonrpc.Invalid):
            reply = message.reply
        else:
            return 0, []
        with self._lock:
            self._batches += 1
            return self._batches, [jsonrpc.dumps(reply)]

    def poll(self, sid: str, timeout: float = 1.0) -> tuple[int, list[str]]:
        self._closed.wait(max(0.0, min(float(timeout), 5.0)))
        return 0, []

    def shutdown(self) -> None:
        self._closed.set()


def unusable_home_reason(home: Any, exc: BaseException) -> str:
    """One message for a home memesh cannot use: what is wrong, then what to do."""
    import sqlite3

    restart = "then restart this MCP server (in Claude Code: /mcp, reconnect)"
    elsewhere = "or point MEMESH_HOME at a directory of your own"
    code = getattr(exc, "errno", None)
    if isinstance(exc, (NotADirectoryError, FileExistsError)) or code in (errno.ENOTDIR, errno.EEXIST):
        what = f"memesh cannot use its home {home}: it is not a directory ({exc})"
        todo = f"move that file aside (mv {home} {home}.bak) {elsewhere}"
    elif code == errno.EROFS or "readonly" in str(exc).lower().replace(" ", "") or "read-only" in str(exc).lower():
        what = f"memesh cannot write to its home {home}: it is read-only ({exc})"
        todo = f"make it writable {elsewhere}"
    elif isinstance(exc, PermissionError) or code in (errno.EACCES, errno.EPERM):
        what = f"memesh cannot use its home {home}: permission denied ({exc})"
        todo = f"give it back to your user (chmod 700 {home}) {elsewhere}"
    elif isinstance(exc, sqlite3.DatabaseError):
        what = f"memesh cannot open its database in {home}: {exc}"
        todo = f"move the damaged file aside (mv {home}/memesh.db {home}/memesh.db.bad; a new one is created) {elsewhere}"
    else:
        what = f"memesh cannot use its home {home}: {exc}"
        todo = f"run `memesh daemon status` for details and fix what it names, {elsewhere}"
    return f"{what}. To fix: {todo}; {restart}."


def run(settings: Any, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> int:
    """Serve one window in-process until stdin ends; returns the exit status (0)."""
    from memesh.mcp.proxy import serve
    from memesh.mcp.stdin import StdinReader

    reader = StdinReader(stdin if stdin is not None else sys.stdin.fileno())
    reader.start()
    return serve(settings, reader, stdout, standalone=True)


def main() -> int:
    import logging

    from memesh.config import load_settings
    from memesh.mcp.proxy import install_signal_handlers

    install_signal_handlers()
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="memesh %(levelname)s %(name)s: %(message)s")
    return run(load_settings())


if __name__ == "__main__":
    sys.exit(main())
