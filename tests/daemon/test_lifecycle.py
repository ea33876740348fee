"""Lifecycle: idle exit, graceful and forced stop, restart and upgrade.

The daemon is not a child of the test (it is spawned through a double fork), so its exit
status cannot be collected. A clean exit is shown instead by the log's final "stopped"
line, the lifetime lock released, and the record, socket and key removed.
"""
from __future__ import annotations

import threading
import time

import psutil
import pytest

from memesh.errors import OutcomeUnknown
from memesh.daemon.channel import ChannelBroken
from tests.support import wait_until

IDLE_MS = 1000


def stopped_cleanly(home, pid: int) -> bool:
    return (not home.lifetime_held() and home.leftovers() == []
            and any(f"[{pid}] memesh.daemon: daemon" in line and " stopped (" in line for line in home.log_text().splitlines()))


# --------------------------------------------------------------------------- idle


def test_the_daemon_exits_about_one_idle_timeout_after_its_last_client_leaves(memesh_home):
    env = {"MEMESH_DAEMON_IDLE_TIMEOUT": str(IDLE_MS)}
    memesh_home.env.update(env)
    pid = memesh_home.start_daemon()
    mesh = memesh_home.connect(name="holder")
    # Held for more than twice the timeout, with no calls: it must not count while connected.
    held_since = time.monotonic()
    wait_until(lambda: time.monotonic() - held_since > 2.5 * IDLE_MS / 1000, 5, "the client to be held a while",
               interval=0.05)
    assert mesh.control.ping()
    assert mesh.control.status()["idleSecondsLeft"] is None
    left_at = time.monotonic()
    mesh.close()
    wait_until(lambda: not memesh_home.lifetime_held(), 5, "the idle daemon to exit")
    idle_exit = time.monotonic() - left_at
    assert 0.8 <= idle_exit <= 3.0, f"the idle daemon exited {idle_exit:.2f}s after its last client left"
    wait_until(lambda: stopped_cleanly(memesh_home, pid), 30, "the idle daemon to clean up")
    assert "idle timeout" in memesh_home.log_text()


def test_an_idle_timeout_never_fires_while_a_client_is_connected(memesh_home):
    memesh_home.env.update({"MEMESH_DAEMON_IDLE_TIMEOUT": "300"})
    pid = memesh_home.start_daemon()
    mesh = memesh_home.connect(name="holder")
    held_since = time.monotonic()
    wait_until(lambda: time.monotonic() - held_since > 1.5, 5, "time to pass", interval=0.05)
    assert memesh_home.lifetime_held() and memesh_home.record()["pid"] == pid
    assert mesh.control.ping()
    assert mesh.daemon_pid == pid


# --------------------------------------------------------------------------- stop

SLOW_BATCH = 20000  # entities: one create_entities call of this size takes ~1 s here


def test_status_polled_without_pause_does_not_keep_an_idle_daemon_alive(memesh_home):
    from memesh.cli.daemon_cmds import probe

    memesh_home.env.update({"MEMESH_DAEMON_IDLE_TIMEOUT": str(IDLE_MS)})
    pid = memesh_home.start_daemon()
    settings = memesh_home.settings()
    polls = []

    def polled_until_gone() -> bool:
        code, info = probe(settings)  # what `memesh daemon status` does: hello, status, goodbye
        polls.append(code)
        return code != 0

    # Polled far more often than the idle timeout, the daemon must still leave on time.
    wait_until(polled_until_gone, 10 * IDLE_MS / 1000, "the daemon to idle out while status is polled", interval=0.05)
    assert polls.count(0) >= 5, f"status was polled only {polls.count(0)} times while the daemon ran"
    wait_until(lambda: stopped_cleanly(memesh_home, pid), 5, "the idle daemon to clean up")
    assert "idle timeout" in memesh_home.log_text()


def test_a_cli_status_does_not_count_as_a_client_but_a_window_holding_on_does(memesh_home):
    from memesh.cli.daemon_cmds import probe

    memesh_home.env.update({"MEMESH_DAEMON_IDLE_TIMEOUT": str(IDLE_MS)})
    memesh_home.start_daemon()
    mesh = memesh_home.connect(name="holder")
    code, info = probe(memesh_home.settings())
    assert code == 0 and info["idleSecondsLeft"] is None and info["clientCount"] == 1
    mesh.close()
    code, info = wait_until(lambda: (lambda r: r[0] == 0 and r[1]["idleSecondsLeft"] is not None and r)(probe(memesh_home.settings())),
                            5, "the idle clock to start once the window left")
    assert info["clientCount"] == 0


def batch(size: int, prefix: str = "e") -> list[dict]:
    return [{"name": f"{prefix}{i}", "entityType": "thing", "observations": [f"observation {i}"]} for i in range(size)]


class SlowCall(threading.Thread):
    """A large create_entities in a thread: a real slow call that the daemon tracks in flight.

    (A test-only sleep method would be simpler but would widen the daemon's surface; a big
    write batch is slow for real and exercises the same in-flight tracking.)"""

    def __init__(self, mesh, size: int):
        super().__init__(daemon=True)
        self.mesh, self.size = mesh, size
        self.result = self.error = None
        self.seconds = 0.0

    def run(self) -> None:
        started = time.monotonic()
        try:
            self.result = self.mesh.graph.create_entities(batch(self.size))
        except Exception as exc:
            self.error = exc
        self.seconds = time.monotonic() - started


def test_stop_lets_an_in_flight_call_finish_then_the_daemon_exits_cleanly(memesh_home):
    pid = memesh_home.start_daemon()
    worker = memesh_home.connect(name="worker")
    watcher = memesh_home.connect(name="watcher")
    # Twice the slow batch: its reply (some MB) takes a while to deliver, and the stop must
    # not cut it off once the call itself has returned.
    call = SlowCall(worker, 2 * SLOW_BATCH)
    call.start()
    wait_until(lambda: watcher.control.status()["inflight"] >= 1, 10, "the slow call to be in flight")
    stop = memesh_home.cli("daemon", "stop")
    call.join(timeout=30)
    assert call.error is None, f"the in-flight call failed: {call.error!r}"
    assert len(call.result) == 2 * SLOW_BATCH
    assert call.seconds >= 0.3, f"the 'slow' call took only {call.seconds:.2f}s; make the batch bigger"
    assert stop.returncode == 0, stop.stderr
    assert f"stopped memesh daemon pid {pid}" in stop.stdout
    assert stopped_cleanly(memesh_home, pid)
    last = [line for line in memesh_home.log_text().splitlines() if f"[{pid}] memesh.daemon: daemon" in line][-1]
    assert "'forced': False" in last and "'inflight': 0" in last


def test_stop_force_is_immediate_even_with_a_call_in_flight_and_leaves_nothing_behind(memesh_home):
    pid = memesh_home.start_daemon()
    worker = memesh_home.connect(name="worker")
    watcher = memesh_home.connect(name="watcher")
    call = SlowCall(worker, 3 * SLOW_BATCH)  # ~3 s of work
    call.start()
    wait_until(lambda: watcher.control.status()["inflight"] >= 1, 10, "the slow call to be in flight")
    started = time.monotonic()
    stop = memesh_home.cli("daemon", "stop", "--force")
    took = time.monotonic() - started
    assert stop.returncode == 0, stop.stderr
    assert not memesh_home.lifetime_held()
    assert call.is_alive() or call.error is not None, f"stop --force waited {took:.2f}s for the call to finish"
    call.join(timeout=30)
    assert isinstance(call.error, OutcomeUnknown), f"the interrupted write should be reported as of unknown outcome, got {call.error!r}"
    assert memesh_home.leftovers() == []
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def run_in_foreground(home):
    """``memesh daemon run``: the same daemon, but our child, so its exit status is ours to see."""
    proc = home.popen_cli("daemon", "run")
    wait_until(lambda: (home.record() or {}).get("pid") == proc.pid or proc.poll() is not None, 10,
               "the foreground daemon to publish its record")
    assert proc.poll() is None, proc.stderr.read()
    return proc


@pytest.mark.parametrize("force", [False, True], ids=["graceful", "forced"])
def test_a_daemon_stopped_with_a_call_in_flight_exits_with_status_0(memesh_home, force):
    daemon = run_in_foreground(memesh_home)
    worker = memesh_home.connect(name="worker")
    watcher = memesh_home.connect(name="watcher")
    # Forced: a call long enough to be still running when the stop arrives on a busy machine
    # (with ~1 s of work it could end first and there was nothing left to abandon).
    call = SlowCall(worker, 3 * SLOW_BATCH if force else SLOW_BATCH)
    call.start()
    wait_until(lambda: watcher.control.status()["inflight"] >= 1, 10, "the slow call to be in flight")
    stop = memesh_home.cli("daemon", "stop", *(["--force"] if force else []))
    assert stop.returncode == 0, stop.stderr
    assert daemon.wait(timeout=10) == 0, f"the daemon exited with status {daemon.returncode}"
    call.join(timeout=30)
    if force:
        assert isinstance(call.error, OutcomeUnknown)
        assert "abandoning them" in memesh_home.log_text()
    else:
        assert call.error is None and len(call.result) == SLOW_BATCH
    assert stopped_cleanly(memesh_home, daemon.pid)


def test_stop_force_succeeds_every_time_however_fast_the_daemon_leaves(memesh_home):
    """The daemon may go before its answer to ``stop`` is sent; the CLI must not call that a failure."""
    for _ in range(4):
        pid = memesh_home.start_daemon()
        stop = memesh_home.cli("daemon", "stop", "--force")
        assert (stop.returncode, stop.stderr) == (0, ""), f"stop --force of pid {pid} failed"
        assert not memesh_home.lifetime_held() and memesh_home.leftovers() == []


def test_stop_when_no_daemon_runs_says_so_and_succeeds(memesh_home):
    stop = memesh_home.cli("daemon", "stop")
    assert stop.returncode == 0
    assert "no memesh daemon was running" in stop.stdout


# --------------------------------------------------------------------------- restart / upgrade


@pytest.mark.parametrize("command", ["restart", "upgrade"])
def test_restart_and_upgrade_bring_a_new_daemon_that_a_connected_client_uses_without_error(memesh_home, command):
    old = memesh_home.start_daemon()
    mesh = memesh_home.connect(name="window")
    assert mesh.graph.create_entities(batch(1, "before")) != []
    done = memesh_home.cli("daemon", command)
    assert done.returncode == 0, done.stderr
    new = memesh_home.record()["pid"]
    assert new != old
    assert str(old) in done.stdout and str(new) in done.stdout
    # The next calls of the already-connected client go to the new daemon, a write first.
    assert mesh.graph.create_entities(batch(1, "after")) == batch(1, "after")
    assert mesh.control.ping()
    assert mesh.daemon_pid == new
    assert {e["name"] for e in mesh.graph.open_nodes(["before0", "after0"])["entities"]} == {"before0", "after0"}
    # The old process released everything before the new one started; it may still be
    # finishing its interpreter shutdown for a moment.
    wait_until(lambda: [p.pid for p in memesh_home.daemons()] == [new], 5, "the old daemon process to be gone")
    assert any(f"[{old}] memesh.daemon: daemon" in line and " stopped (" in line for line in memesh_home.log_text().splitlines())


def test_restart_succeeds_when_a_connected_window_starts_the_successor_before_the_cli_does(memesh_home):
    """A window that loses its daemon reconnects at once and may start the next daemon
    itself; restart must see the old daemon gone, not wait for the lock the successor holds.
    (Racy by nature: before the fix about half of these restarts failed after 15 s.)"""
    import sys

    from tests.mcp.stdio_driver import StdioServer

    window = StdioServer([sys.executable, "-m", "memesh"], dict(memesh_home.env))
    try:
        window.initialize()
        for _ in range(5):
            old = memesh_home.record()["pid"]
            done = memesh_home.cli("daemon", "restart")
            assert done.returncode == 0, done.stderr
            assert window.request("ping")["result"] == {}
            assert memesh_home.record()["pid"] != old
            assert [p.pid for p in memesh_home.daemons()] == [memesh_home.record()["pid"]]
    finally:
        window.kill()
