"""Test drivers that speak raw JSON-RPC lines to an MCP server.

``SessionClient`` drives an in-process :class:`~memesh.mcp.session.McpSession` through
``submit``/``poll``; ``StdioServer`` drives a real subprocess through its pipes (a reader
thread feeds a queue, so every read has a deadline). Both keep every message they
received in ``received`` and share the request helpers of :class:`_Driver`.
"""
from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import subprocess
import threading
import time
from typing import Any

WAIT = 10.0  # seconds any single expected message may take; a hang fails, it does not stall

CLAUDE_CODE_INITIALIZE = (
    '{"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"roots":{}},'
    '"clientInfo":{"name":"claude-code","version":"2.1.x"}},"jsonrpc":"2.0","id":0}'
)
STATELESS_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "memesh-tests", "version": "1"},
}


class _Driver:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def _next(self, timeout: float) -> dict[str, Any] | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def send_line(self, line: str | bytes) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def send(self, message: dict[str, Any]) -> None:
        self.send_line(json.dumps(message))

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

    def start(self, method: str, params: dict[str, Any] | None = None, id: Any = None) -> Any:
        """Send a request without waiting; returns its id."""
        request_id = next(self._ids) if id is None else id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return request_id

    def reply(self, request_id: Any, timeout: float = WAIT) -> dict[str, Any]:
        """The reply to ``request_id`` (received earlier or arriving within ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.received:
                if "method" not in message and message.get("id") == request_id and type(message.get("id")) is type(request_id):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no reply to id {request_id!r} within {timeout}s; got {self.received[-5:]}")
            self._next(remaining)

    def request(self, method: str, params: dict[str, Any] | None = None, id: Any = None, timeout: float = WAIT) -> dict[str, Any]:
        return self.reply(self.start(method, params, id), timeout)

    def result(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = self.request(method, params)
        assert "result" in reply, reply
        return reply["result"]

    def call(self, name: str, arguments: dict[str, Any] | None = None, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"name": name, "arguments": arguments or {}}
        if meta is not None:
            params["_meta"] = meta
        return self.result("tools/call", params)

    def initialize(self, version: str = "2025-11-25") -> dict[str, Any]:
        result = self.result("initialize", {"protocolVersion": version, "capabilities": {},
                                            "clientInfo": {"name": "memesh-tests", "version": "1"}})
        self.notify("notifications/initialized")
        return result

    def drain(self, timeout: float = 0.2) -> list[dict[str, Any]]:
        """Collect whatever arrives within ``timeout`` (for asserting that nothing does)."""
        before = len(self.received)
        deadline = time.monotonic() + timeout
        while self._next(0) is not None:   # everything that has arrived already
            pass
        while (remaining := deadline - time.monotonic()) > 0:
            self._next(remaining)
        return self.received[before:]

    def wait_notification(self, method: str, count: int = 1, timeout: float = WAIT) -> list[dict[str, Any]]:
        """Wait until ``count`` notifications ``method`` have arrived; return them."""
        deadline = time.monotonic() + timeout
        while len(found := self.notifications(method)) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{method} x{count} did not arrive within {timeout}s; got {self.received[-5:]}")
            self._next(remaining)
        return found

    def notifications(self, method: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("method") == method]

    def replies_to(self, request_id: Any) -> list[dict[str, Any]]:
        return [m for m in self.received if "method" not in m and m.get("id") == request_id
                and type(m.get("id")) is type(request_id)]


class SessionClient(_Driver):
    """Drives an in-process session; every outgoing line is checked to be one JSON object."""

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.session = session
        self.lines: list[str] = []

    def send_line(self, line: str | bytes) -> None:
        self.session.submit(line)

    def _next(self, timeout: float) -> dict[str, Any] | None:
        lines = self.session.poll(timeout)
        for line in lines:
            assert "\n" not in line and "\r" not in line, line
            message = json.loads(line)
            assert isinstance(message, dict) and message.get("jsonrpc") == "2.0", line
            self.lines.append(line)
            self.received.append(message)
        return None


class StdioServer(_Driver):
    """A server subprocess on pipes; ``kill()`` (teardown) stops its whole process group."""

    def __init__(self, argv: list[str], env: dict[str, str], stderr: Any = subprocess.PIPE) -> None:
        super().__init__()
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=stderr, start_new_session=True)
        self.raw: list[bytes] = []
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._stderr = b""
        if stderr is subprocess.PIPE:
            threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr += line

    @property
    def stderr_text(self) -> str:
        return self._stderr.decode("utf-8", "replace")

    def send_line(self, line: str | bytes) -> None:
        data = line.encode("utf-8") if isinstance(line, str) else line
        assert self.proc.stdin is not None
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def _next(self, timeout: float) -> dict[str, Any] | None:
        try:
            line = self._lines.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None
        if line is None:
            self._lines.put(None)  # keep reporting EOF
            raise AssertionError(f"the server closed stdout; stderr: {self.stderr_text[-2000:]}")
        self.raw.append(line)
        assert line.endswith(b"\n") and line.count(b"\n") == 1, line[:200]
        message = json.loads(line.decode("utf-8"))
        assert isinstance(message, dict) and message.get("jsonrpc") == "2.0", line[:200]
        self.received.append(message)
        return message

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def rest_of_stdout(self, timeout: float = WAIT) -> list[bytes]:
        """Lines written after the last one read, up to EOF on stdout (bounded)."""
        rest, deadline = [], time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                raise AssertionError("stdout did not reach EOF in time") from None
            if line is None:
                self._lines.put(None)
                return rest
            rest.append(line)

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=WAIT)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
