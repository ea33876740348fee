"""Clients: a vanished client leaves ``status`` promptly and leaves nothing behind.

The clients here are real processes running ``memesh.connect(heartbeat=…)`` that make a
tracked graph call (so the daemon holds per-client state for them) and then heartbeat.
The measuring side is an in-process ``Mesh`` of the test.
"""
from __future__ import annotations

import os
import signal
import sys
import time

import psutil
import pytest

from memesh.daemon.process import CHECK_INTERVAL
from tests.support import wait_until

CLIENT = """
import sys, time
import memesh
interval = float(sys.argv[1])
mesh = memesh.connect(name=sys.argv[2], kind="repl", heartbeat=interval)
mesh.graph.stats()
print("ready", mesh.session, flush=True)
while True:
    time.sleep(interval / 3)  # the client's heartbeat cadence
    mesh.control.heartbeat()
"""


def start_clients(home, count: int, interval: float, prefix: str = "client") -> dict[str, object]:
    """Start ``count`` client processes; returns {session: Popen} once all have connected."""
    procs = [home.popen([sys.executable, "-c", CLIENT, str(interval), f"{prefix}-{i}"], text=True) for i in range(count)]
    sessions = {}
    for proc in procs:
        line = proc.stdout.readline().split()
        assert line[:1] == ["ready"], f"client failed to connect: {proc.stderr.read() if proc.poll() is not None else line}"
        sessions[line[1]] = proc
    return sessions


def sessions_in_status(mesh) -> set[str]:
    return {row["session"] for row in mesh.control.status()["clients"]}


@pytest.fixture
def daemon(memesh_home):
    memesh_home.start_daemon()
    return memesh_home


def test_a_client_killed_with_sigkill_leaves_status_within_three_heartbeat_intervals(daemon):
    interval = 0.5
    watcher = daemon.connect(name="watcher")
    (session, proc), = start_clients(daemon, 1, interval).items()
    assert session in sessions_in_status(watcher)
    killed_at = time.monotonic()
    os.killpg(proc.pid, signal.SIGKILL)
    wait_until(lambda: session not in sessions_in_status(watcher), 30, "the killed client to leave status")
    wait_until(lambda: f"client {session[:8]} gone (disconnected)" in daemon.log_text(), 30,
               lambda: f"the client to be dropped at EOF, not later for missed beats ({time.monotonic() - killed_at:.2f}s)")


def test_a_silent_client_is_dropped_after_three_missed_heartbeats_while_a_beating_one_stays(daemon):
    interval = 0.3
    watcher = daemon.connect(name="watcher")
    clients = start_clients(daemon, 2, interval)
    (silent, silent_proc), (beating, _beating_proc) = clients.items()
    os.killpg(silent_proc.pid, signal.SIGSTOP)  # connection stays open, beats stop
    stopped_at = time.monotonic()
    wait_until(lambda: silent not in sessions_in_status(watcher), 30,
               "the silent client to be dropped")
    silent_for = time.monotonic() - stopped_at
    assert silent_for >= 3 * interval * 0.9, f"dropped after {silent_for:.2f}s, before three intervals"
    assert beating in sessions_in_status(watcher)
    assert "missed heartbeats" in daemon.log_text()


def daemon_footprint(mesh) -> dict:
    status = mesh.control.status()
    return {
        "threads": status["threads"],
        "connections": status["connections"],
        "clients": len(status["clients"]),
        "perClient": len(status["metrics"]["perClient"]),
    }


def test_twenty_killed_clients_leave_no_threads_connections_or_per_client_state_behind(daemon):
    watcher = daemon.connect(name="watcher")
    watcher.graph.stats()  # the watcher's own per-client state is part of the baseline
    baseline = daemon_footprint(watcher)
    clients = start_clients(daemon, 20, interval=5.0)
    loaded = daemon_footprint(watcher)
    assert loaded == {key: value + 20 for key, value in baseline.items()}
    for proc in clients.values():
        os.killpg(proc.pid, signal.SIGKILL)
    wait_until(lambda: daemon_footprint(watcher) == baseline, 5.0,
               lambda: f"the daemon to return to its baseline {baseline} (now {daemon_footprint(watcher)})")


def test_killed_clients_leave_no_sockets_and_sqlite_file_handles_do_not_grow(daemon):
    """Sockets of killed clients are closed at once. Their SQLite connections are closed
    too, but SQLite's unix VFS keeps a closed connection's descriptor open while other
    connections of the process hold locks on the same file, and reuses it for the next
    connection: so the measure is that rounds of killed clients never grow the count."""
    daemon_proc = psutil.Process(daemon.record()["pid"])
    watcher = daemon.connect(name="watcher")
    watcher.graph.stats()

    def open_files() -> tuple[int, int]:
        files = daemon_proc.open_files()
        sockets = sum(1 for c in daemon_proc.net_connections(kind="unix"))
        return sockets, len(files)

    baseline_sockets, _ = open_files()
    after_round = []
    for round_ in range(3):
        clients = start_clients(daemon, 20, interval=5.0, prefix=f"round{round_}")
        assert open_files()[0] >= baseline_sockets + 20
        for proc in clients.values():
            os.killpg(proc.pid, signal.SIGKILL)
        wait_until(lambda: daemon_footprint(watcher)["clients"] == 1, 5.0, "the killed clients to be gone")
        wait_until(lambda: open_files()[0] == baseline_sockets, 30,
                   lambda: f"the daemon's sockets to return to {baseline_sockets} (now {open_files()[0]})")
        after_round.append(open_files()[1])
    # A leak would add about one descriptor per killed client (20 a round); allow the odd
    # file the daemon opens for itself meanwhile.
    assert after_round[2] - after_round[0] < 5, after_round


def test_client_count_in_the_lock_record_follows_connected_clients(daemon):
    def count() -> int:
        return daemon.record()["clientCount"]

    assert count() == 0
    first = daemon.connect(name="first")
    second = daemon.connect(name="second")
    wait_until(lambda: count() == 2, 30, "clientCount 2")
    assert daemon.cli("daemon", "status").returncode == 0  # CLI calls are not counted as clients
    assert count() == 2
    first.close()
    wait_until(lambda: count() == 1, 30, "clientCount 1")
    second.close()
    wait_until(lambda: count() == 0, 30, "clientCount 0")


def test_a_mesh_that_promised_heartbeats_keeps_them_while_idle(daemon):
    interval = 0.3
    watcher = daemon.connect(name="watcher")
    idle = daemon.connect(name="idle-repl", heartbeat=interval)
    session = idle.session
    # Stay idle for well over three intervals: the Mesh's own heartbeat keeps it listed.
    deadline = time.monotonic() + 6 * interval
    while time.monotonic() < deadline:
        assert session in sessions_in_status(watcher)
        time.sleep(interval / 2)  # sampling cadence of the check, not synchronisation
    assert idle.control.ping() > 0
    idle.close()  # before teardown kills the daemon: a later beat would reconnect and start one


def test_a_client_with_a_call_in_flight_is_not_dropped_for_missed_heartbeats(daemon):
    """Its beats wait behind its own long call on the one connection; it is alive all along.

    The long call is a real one: a graph write that waits for the database, which another
    process (this test) holds locked. A stopped client with the same interval shows that
    the reaper did run past three intervals meanwhile.
    """
    import sqlite3
    import threading

    interval = 0.2
    watcher = daemon.connect(name="watcher")
    watcher.graph.stats()  # the database exists before it is locked
    busy = daemon.connect(name="busy", heartbeat=interval)
    (stopped, stopped_proc), = start_clients(daemon, 1, interval, prefix="stopped").items()
    blocker = sqlite3.connect(daemon.paths.db, timeout=5.0, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    outcome: dict = {}

    def long_write():
        try:
            outcome["result"] = busy.graph.create_entities([{"name": "slow", "entityType": "t", "observations": []}])
        except Exception as exc:  # noqa: BLE001 - the assertion below names it
            outcome["error"] = exc

    writer = threading.Thread(target=long_write)
    try:
        writer.start()
        wait_until(lambda: watcher.control.status()["inflight"] >= 1, 5, "the write to be running in the daemon")
        os.killpg(stopped_proc.pid, signal.SIGSTOP)
        wait_until(lambda: stopped not in sessions_in_status(watcher), 3 * interval + CHECK_INTERVAL + 5.0,
                   "the stopped client to be dropped")
        assert busy.session in sessions_in_status(watcher), "the client waiting for its call was dropped"
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        writer.join(20)
    assert "error" not in outcome, outcome.get("error")
    assert [e["name"] for e in outcome["result"]] == ["slow"]
    assert busy.session in sessions_in_status(watcher)
    assert f"client {busy.session[:8]} gone" not in daemon.log_text()
    # Closed while its daemon lives: a heartbeat thread that outlives the daemon would
    # reconnect, and reconnecting starts a daemon.
    busy.close()
