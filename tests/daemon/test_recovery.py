"""Recovery: a crashed, hung or impersonated daemon never blocks anyone, and a live one is
never displaced by mistake; plus the pure ``judge`` over worked examples."""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from memesh.daemon import lock as lockmod
from memesh.daemon.lock import (BUSY, DEAF, HELLO_OK, HELLO_REFUSED, HELLO_REJECTED, HELLO_SLOW, HELLO_TIMEOUT, HUNG, LIVE, STALE,
                                STARTING,
                                UNKNOWN, Facts, judge)
from memesh.daemon.channel import Channel
from memesh.daemon.spawn import HUNG_AFTER
from tests.support import is_dead, wait_until


def answers(home) -> dict | None:
    """The daemon's hello if one answers at this home right now, else None."""
    try:
        key = home.paths.key.read_bytes()
        channel = Channel.open(str(home.paths.socket), key, timeout=0.5, name="test-probe")
    except Exception:
        return None
    try:
        return channel.call("control", "hello", ({"session": "probe", "kind": "cli"},), timeout=0.5)
    except Exception:
        return None
    finally:
        channel.close()


class ServingMonitor:
    """Samples, in a thread, how many daemons of a home serve at once (never more than one)."""

    def __init__(self, home):
        self.home = home
        self.most = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.most = max(self.most, len(self.home.serving_daemons()))
            self.samples += 1
            self._stop.wait(0.01)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


# --------------------------------------------------------------------------- crash


def test_a_daemon_killed_with_sigkill_is_judged_dead_and_replaced_by_the_next_start(memesh_home):
    old = memesh_home.start_daemon()
    killed_at = time.monotonic()
    memesh_home.kill_daemon(signal.SIGKILL)
    done = memesh_home.cli("daemon", "start")
    assert done.returncode == 0, done.stderr
    hello = answers(memesh_home)
    elapsed = time.monotonic() - killed_at
    assert hello is not None and hello["pid"] != old
    assert "terminating it" not in memesh_home.log_text(), f"a killed daemon was judged hung, not dead ({elapsed:.2f}s)"
    record = memesh_home.record()
    assert record["pid"] == hello["pid"] and record["instanceId"] == hello["instanceId"]
    assert memesh_home.holder()["pid"] == hello["pid"]
    assert [p.pid for p in memesh_home.daemons()] == [hello["pid"]]


def test_after_a_crash_and_a_restart_nothing_of_the_old_daemon_remains(memesh_home):
    old = memesh_home.start_daemon()
    old_key = memesh_home.paths.key.read_bytes()
    old_socket_inode = os.stat(memesh_home.paths.socket).st_ino
    memesh_home.kill_daemon(signal.SIGKILL)
    wait_until(lambda: not memesh_home.lifetime_held(), 5, "the kernel to drop the killed daemon's lock")
    assert memesh_home.cli("daemon", "status").returncode == 4  # the record it left is stale
    new = memesh_home.start_daemon()
    assert new != old
    assert memesh_home.paths.key.read_bytes() != old_key
    assert os.stat(memesh_home.paths.socket).st_ino != old_socket_inode
    assert memesh_home.record()["pid"] == new
    leftovers = [n for n in os.listdir(memesh_home.path) if n.endswith((".tmp", ".new"))]
    assert leftovers == []
    memesh_home.cli("daemon", "stop")
    memesh_home.wait_daemon_gone()
    assert memesh_home.leftovers() == []


# --------------------------------------------------------------------------- impostors


def test_a_record_naming_a_live_unrelated_process_is_stale_and_that_process_survives(memesh_home):
    memesh_home.start_daemon()
    memesh_home.kill_daemon(signal.SIGKILL)
    wait_until(lambda: not memesh_home.lifetime_held(), 5, "the lifetime lock to drop")
    bystander = memesh_home.popen([sys.executable, "-c", "import time; time.sleep(60)"])
    # The pid in the record (and in the lifetime file) now names an unrelated live process.
    record = json.loads(memesh_home.paths.record.read_text())
    record["pid"] = bystander.pid
    memesh_home.paths.record.write_text(json.dumps(record))
    memesh_home.paths.lifetime_lock.write_text(json.dumps({"pid": bystander.pid, "createTime": record["processCreateTime"]}))

    assert memesh_home.cli("daemon", "status").returncode == 4
    new = memesh_home.start_daemon()
    assert new != bystander.pid
    assert bystander.poll() is None, "an unrelated process named by a stale record was killed"
    assert memesh_home.record()["pid"] == new


def test_a_record_naming_the_starting_process_itself_is_stale(memesh_home):
    record = lockmod.LockRecord(
        pid=os.getpid(), instanceId="not-a-daemon", socketPath=str(memesh_home.paths.socket),
        startTime=0, version="0.0.1", clientCount=3, protocolVersion=1, minClientVersion="0.0.1",
        processCreateTime=psutil.Process().create_time())
    lockmod.publish_record(memesh_home.paths.record, record)
    new = memesh_home.start_daemon()
    assert new != os.getpid()
    assert memesh_home.record()["instanceId"] != "not-a-daemon"


def test_a_garbage_lock_file_is_replaced_with_a_warning_in_the_log(memesh_home):
    memesh_home.paths.record.write_bytes(b"\x00\xffnot json at all{{{")
    assert memesh_home.cli("daemon", "status").returncode == 4
    pid = memesh_home.start_daemon()
    assert memesh_home.record()["pid"] == pid
    warnings = [line for line in memesh_home.log_text().splitlines() if "WARNING" in line and str(memesh_home.paths.record) in line]
    assert warnings, "replacing a garbage lock record was not logged as a warning"


def test_a_lifetime_lock_held_by_an_unverifiable_process_is_never_killed(memesh_home):
    """Someone holds the lifetime lock, does not answer, and is not the recorded daemon:
    start refuses with a clear error instead of killing or running a second daemon."""
    holder_code = (
        "import fcntl, json, os, sys, time\n"
        f"fd = os.open({str(memesh_home.paths.lifetime_lock)!r}, os.O_RDWR | os.O_CREAT, 0o600)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "os.write(fd, json.dumps({'pid': os.getpid(), 'createTime': 1.0}).encode())\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    impostor = memesh_home.popen_python(holder_code)
    assert impostor.stdout.readline().strip() == "locked"
    done = memesh_home.cli("daemon", "start", env={"MEMESH_DAEMON_HEALTH_TIMEOUT": "300"})
    assert done.returncode == 4, (done.returncode, done.stderr)
    assert "stop it by hand" in done.stderr
    assert impostor.poll() is None, "an unverified lock holder was killed"
    assert memesh_home.daemons() == []


# --------------------------------------------------------------------------- hung


def test_a_sigstopped_daemon_is_killed_and_replaced_after_the_health_deadline_and_two_never_serve(memesh_home):
    health_ms = 300
    env = {"MEMESH_DAEMON_HEALTH_TIMEOUT": str(health_ms)}
    old = memesh_home.start_daemon(env=env)
    old_proc = psutil.Process(old)
    with ServingMonitor(memesh_home) as monitor:
        memesh_home.kill_daemon(signal.SIGSTOP)
        wait_until(lambda: old_proc.status() == psutil.STATUS_STOPPED, 5, "the daemon to stop")
        assert memesh_home.cli("daemon", "status", env=env).returncode == 4  # unreachable, not replaced by status
        assert old_proc.is_running()
        started = time.monotonic()
        done = memesh_home.cli("daemon", "start", env=env)
        elapsed = time.monotonic() - started
        assert done.returncode == 0, done.stderr
    assert elapsed >= HUNG_AFTER * health_ms / 1000, "the hung daemon was replaced after one slow hello"
    assert is_dead(old_proc)
    new = memesh_home.record()["pid"]
    assert new != old and memesh_home.holder()["pid"] == new
    assert [p.pid for p in memesh_home.daemons()] == [new]
    assert monitor.samples > 5 and monitor.most == 1, f"{monitor.most} daemons served at once"
    assert answers(memesh_home)["pid"] == new


# --------------------------------------------------------------------------- judge, pure


V = dict(lifetime_held=True, holder_alive=True, holder_verified=True)  # a verified, running holder


@pytest.mark.parametrize(
    ("facts", "verdict"),
    [
        (Facts(lifetime_held=False), STALE),
        (Facts(lifetime_held=False, holder_alive=True, holder_verified=True, hello=HELLO_OK), STALE),
        (Facts(lifetime_held=True, hello=HELLO_OK), LIVE),
        (Facts(**V, hello=HELLO_OK, overdue=True), LIVE),
        (Facts(lifetime_held=True, hello=HELLO_REFUSED), STARTING),
        (Facts(**V, hello=HELLO_REFUSED), STARTING),
        # One slow hello is never "hung"; silence past the threshold, twice over, is.
        (Facts(**V, hello=HELLO_TIMEOUT, timeouts=1), STARTING),
        (Facts(**V, hello=HELLO_TIMEOUT, timeouts=2), STARTING),
        (Facts(**V, hello=HELLO_TIMEOUT, timeouts=1, overdue=True), STARTING),
        (Facts(**V, hello=HELLO_TIMEOUT, timeouts=2, overdue=True), HUNG),
        # Any reply proves life, now or earlier in the wait.
        (Facts(**V, hello=HELLO_SLOW, overdue=True), BUSY),
        (Facts(**V, hello=HELLO_TIMEOUT, timeouts=2, overdue=True, answered=True), BUSY),
        # Not listening (socket or key gone) is reported, never killed.
        (Facts(**V, hello=HELLO_REFUSED, overdue=True), DEAF),
        (Facts(lifetime_held=True, holder_alive=True, holder_verified=False, hello=HELLO_TIMEOUT), STARTING),
        (Facts(lifetime_held=True, holder_alive=True, holder_verified=False, hello=HELLO_TIMEOUT, timeouts=3, overdue=True), UNKNOWN),
        (Facts(lifetime_held=True, holder_alive=False, hello=HELLO_REFUSED, overdue=True), UNKNOWN),
        (Facts(**V, hello=HELLO_REJECTED), STARTING),
        (Facts(**V, hello=HELLO_REJECTED, overdue=True), BUSY),
    ],
)
def test_judge_examples(facts, verdict):
    assert judge(facts) == verdict


def test_judge_only_kills_a_verified_holder_that_failed_to_answer():
    for held, alive, verified, hello, overdue, answered, timeouts in itertools.product(
        (False, True), (False, True), (False, True), (HELLO_OK, HELLO_TIMEOUT, HELLO_SLOW, HELLO_REFUSED, HELLO_REJECTED),
        (False, True), (False, True), (0, 1, 2, 3)
    ):
        verdict = judge(Facts(held, alive, verified, hello, overdue, answered, timeouts))
        if verdict == HUNG:
            assert held and alive and verified and hello == HELLO_TIMEOUT and overdue and not answered and timeouts >= 2


# --------------------------------------------------------------------------- files deleted under a live daemon


def daemon_files(home) -> list:
    files = {home.path / name for name in os.listdir(home.path) if name.startswith("daemon.")} | {home.paths.socket}
    return sorted(files)


def still_running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_deleting_a_live_daemons_files_leaves_one_healthy_successor_whose_files_the_old_daemon_never_touches(memesh_home):
    old = memesh_home.start_daemon()
    for path in daemon_files(memesh_home):
        os.unlink(path)
    new = memesh_home.start_daemon()  # nothing left to find the old daemon by: a new one is elected
    assert new != old
    wait_until(lambda: not still_running(old), 15, "the orphaned daemon to notice and exit by itself")
    assert still_running(new), "the successor was killed"
    done = memesh_home.cli("daemon", "status", "--json")
    assert done.returncode == 0, f"status after the old daemon left: {done.returncode} {done.stdout} {done.stderr}"
    assert json.loads(done.stdout)["pid"] == new
    assert answers(memesh_home)["pid"] == new
    assert memesh_home.record()["pid"] == new and memesh_home.holder()["pid"] == new
    assert "was removed or replaced" in memesh_home.log_text()
    # The next window finds the successor healthy and uses it (nothing is killed or respawned).
    assert memesh_home.start_daemon() == new and still_running(new)


def test_deleting_only_the_lifetime_lock_then_restart_gives_exactly_one_healthy_daemon(memesh_home):
    from tests.daemon.test_lifecycle import SLOW_BATCH, SlowCall

    old = memesh_home.start_daemon()
    worker = memesh_home.connect(name="worker")
    call = SlowCall(worker, 3 * SLOW_BATCH)  # keeps the old daemon draining for a while
    call.start()
    watcher = memesh_home.connect(name="watcher")
    wait_until(lambda: watcher.control.status()["inflight"] >= 1, 10, "the slow call to be in flight")
    os.unlink(memesh_home.paths.lifetime_lock)
    done = memesh_home.cli("daemon", "restart")
    assert done.returncode == 0, done.stderr
    wait_until(lambda: not still_running(old), 30, "the old daemon to exit")
    call.join(timeout=30)
    new = memesh_home.record()["pid"]
    assert new != old and still_running(new)
    assert [p.pid for p in memesh_home.daemons()] == [new]
    status = memesh_home.cli("daemon", "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["pid"] == new, (status.returncode, status.stdout)
    assert memesh_home.paths.key.exists() and answers(memesh_home)["pid"] == new


def test_a_daemon_whose_key_was_deleted_is_waited_for_and_reused_never_killed(memesh_home):
    pid = memesh_home.start_daemon()
    os.unlink(memesh_home.paths.key)
    # A window arriving now cannot authenticate: the daemon must not be judged hung for
    # that; it puts its key back and the window uses it.
    assert memesh_home.start_daemon() == pid
    assert still_running(pid) and answers(memesh_home)["pid"] == pid
    assert "rewrote it" in memesh_home.log_text()


def test_a_hung_daemon_that_is_not_stopped_gets_sigterm_before_any_sigkill(memesh_home):
    from memesh.daemon.spawn import kill_hung

    holder_code = (
        "import fcntl, json, os, signal, sys, time, psutil\n"
        f"fd = os.open({str(memesh_home.paths.lifetime_lock)!r}, os.O_RDWR | os.O_CREAT, 0o600)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "os.write(fd, json.dumps({'pid': os.getpid(), 'createTime': psutil.Process().create_time()}).encode())\n"
        "def term(*_):\n"
        "    print('got SIGTERM', flush=True)\n"
        "    os._exit(0)\n"
        "signal.signal(signal.SIGTERM, term)\n"
        "print('locked', flush=True)\n"
        "while True: time.sleep(1)\n"
    )
    holder = memesh_home.popen_python(holder_code)
    assert holder.stdout.readline().strip() == "locked"
    kill_hung(memesh_home.paths, memesh_home.holder())
    assert holder.wait(timeout=10) == 0, "the holder was killed without a SIGTERM first"
    assert holder.stdout.read().strip() == "got SIGTERM"
    assert not memesh_home.lifetime_held()


# --------------------------------------------------------------------------- a home that cannot be written


@contextlib.contextmanager
def read_only_directory(path):
    """Make ``path`` refuse new entries, renames and deletions even to root (``chattr +i``)."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not available to make a directory read-only for root")
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"chattr +i is not permitted here: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_daemon_that_cannot_rewrite_its_record_keeps_serving_and_catches_up_later(memesh_home):
    pid = memesh_home.start_daemon()
    with read_only_directory(memesh_home.path):
        window = memesh_home.connect(name="window")  # the client count changes: the record must be rewritten
        wait_until(lambda: any(text in memesh_home.log_text() for text in ("could not rewrite the lock record", "internal error")),
                   10, "the record rewrite to fail")
        assert "internal error" not in memesh_home.log_text(), "the daemon died of a failed record rewrite"
        assert "could not rewrite the lock record" in memesh_home.log_text()
        assert window.control.ping() and still_running(pid)
        assert memesh_home.record()["clientCount"] == 0  # not rewritten yet
        assert memesh_home.cli("daemon", "status").returncode == 0
    wait_until(lambda: memesh_home.record()["clientCount"] == 1, 30, "the record to be rewritten once the home is writable")
    assert memesh_home.record()["pid"] == pid and answers(memesh_home)["pid"] == pid
    assert "internal error" not in memesh_home.log_text()


def test_a_home_where_no_daemon_can_start_is_not_retried_in_a_tight_loop(memesh_home):
    from memesh.daemon.spawn import ensure_daemon, spawn_backoff_left
    from memesh.errors import DaemonStartError

    memesh_home.start_daemon()
    assert memesh_home.cli("daemon", "stop").returncode == 0
    memesh_home.wait_daemon_gone()
    settings = memesh_home.settings()
    info = {"session": "backoff-test", "kind": "cli"}
    with read_only_directory(memesh_home.path):
        failures = []
        for _ in range(5):
            with pytest.raises(DaemonStartError) as raised:
                ensure_daemon(settings, memesh_home.paths, info, name="backoff-test")
            failures.append(str(raised.value))
        started = memesh_home.log_text().count("daemon failed to start")
        assert started == 1, f"{started} daemons were started for 5 attempts in a row"
        assert all("not trying again" in text for text in failures[1:]), failures[1]
        assert spawn_backoff_left(memesh_home.paths) > 0
    wait_until(lambda: memesh_home.daemons() == [], 10, "the daemon that failed to start to exit")
