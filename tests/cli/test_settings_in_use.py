"""Declared settings and dependencies are used: ``daemon.heartbeat_interval`` is what
clients promise, and colorlog colours log lines on a terminal (and only there)."""
from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time

from tests.mcp.stdio_driver import StdioServer
from tests.support import wait_until

ESC = "\x1b["


def rows_by_name(mesh) -> dict[str, dict]:
    return {row["name"]: row for row in mesh.control.status()["clients"]}


CONNECTED = """
import memesh, sys
mesh = memesh.connect(name=sys.argv[1])
print("ready", flush=True)
sys.stdin.read()
"""


def test_connect_promises_the_configured_heartbeat_and_a_stopped_client_is_dropped(memesh_home):
    memesh_home.start_daemon()
    watcher = memesh_home.connect(name="watcher", heartbeat=0)
    env = {"MEMESH_DAEMON_HEARTBEAT_INTERVAL": "300"}
    stopped = memesh_home.popen([sys.executable, "-c", CONNECTED, "stopped"], env=env, text=True, stdin=subprocess.PIPE)
    idle = memesh_home.popen([sys.executable, "-c", CONNECTED, "idle"], env=env, text=True, stdin=subprocess.PIPE)
    assert stopped.stdout.readline().strip() == "ready" and idle.stdout.readline().strip() == "ready"
    rows = rows_by_name(watcher)
    assert rows["stopped"]["heartbeatInterval"] == rows["idle"]["heartbeatInterval"] == 0.3
    os.killpg(stopped.pid, signal.SIGSTOP)  # its connection stays open, its beats stop
    wait_until(lambda: "stopped" not in rows_by_name(watcher), 30, "the stopped client to be dropped for missed heartbeats")
    assert "idle" in rows_by_name(watcher)  # idle for as long, but its heartbeat thread kept it listed
    assert "missed heartbeats" in memesh_home.log_text()


def test_a_window_promises_the_configured_heartbeat_interval(memesh_home):
    memesh_home.start_daemon()
    watcher = memesh_home.connect(name="watcher", heartbeat=0)
    window = StdioServer([sys.executable, "-m", "memesh"], {**memesh_home.env, "MEMESH_DAEMON_HEARTBEAT_INTERVAL": "7000"})
    try:
        window.initialize()
        (row,) = [row for row in watcher.control.status()["clients"] if row["kind"] == "proxy"]
        assert row["heartbeatInterval"] == 7.0
    finally:
        window.kill()


def read_until(fd: int, wanted: str, timeout: float) -> str:
    """What the pty showed until ``wanted`` appeared (bounded)."""
    seen = ""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{wanted!r} did not appear on the terminal; it showed {seen!r}"
        readable, _, _ = select.select([fd], [], [], left)
        if readable:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the other side closed
                break
            if not chunk:
                break
            seen += chunk.decode("utf-8", "replace")
    return seen


def test_daemon_run_on_a_terminal_shows_coloured_log_lines_and_a_plain_log_file(memesh_home):
    master, slave = pty.openpty()
    try:
        proc = memesh_home.popen([sys.executable, "-m", "memesh", "daemon", "run"], stdout=slave, stderr=slave, stdin=slave)
        os.close(slave)
        slave = -1
        shown = read_until(master, f"ready: pid {proc.pid}", 30)
        line = next(line for line in shown.splitlines() if f"ready: pid {proc.pid}" in line)
        assert ESC in line and "INFO" in line
        wait_until(lambda: "ready" in memesh_home.log_text(), 10, "the ready line in the log file")
        assert ESC not in memesh_home.log_text()
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def test_cli_warnings_are_coloured_on_a_terminal_and_plain_in_a_pipe(memesh_home):
    memesh_home.env["MEMESH_DAEMON_HEALTH_TIMEOUT"] = "200"
    memesh_home.start_daemon()
    memesh_home.kill_daemon(signal.SIGSTOP)  # stop --force then warns that it terminates it
    master, slave = pty.openpty()
    try:
        proc = memesh_home.popen([sys.executable, "-m", "memesh", "daemon", "stop", "--force"], stdout=slave, stderr=slave, stdin=slave)
        os.close(slave)
        slave = -1
        shown = read_until(master, "stopped memesh daemon", 30)
        assert proc.wait(timeout=30) == 0
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    warning = next(line for line in shown.splitlines() if "terminating it" in line)
    assert ESC in warning and "WARNING" in warning
