"""The daemon's watchdog: a dead accept thread is restarted, and a daemon whose accept
thread keeps dying exits cleanly instead of staying half-alive.

The thread death is real (an exception ends the thread); it is provoked through the
daemon's test-only fault switch (``MEMESH_TEST_FAULT=accept-thread``: the accept thread
raises after each connection it accepts), since nothing outside the process can make
that thread fail on demand.
"""
from __future__ import annotations

from memesh.daemon.channel import Channel
from memesh.daemon.server import FAULT_ENV, RESTARTS_ALLOWED
from tests.support import wait_until


def ping_once(home) -> float:
    channel = Channel.open(str(home.paths.socket), home.paths.key.read_bytes(), timeout=10.0)
    try:
        return channel.call("control", "ping", timeout=10.0)
    finally:
        channel.close()


def test_a_dead_accept_thread_is_logged_and_restarted_then_a_daemon_where_it_keeps_dying_exits_cleanly(memesh_home):
    memesh_home.env[FAULT_ENV] = "accept-thread"
    memesh_home.start_daemon()  # its own connection was the first accepted; the thread died after it
    wait_until(lambda: "thread mesh-accept died" in memesh_home.log_text(), 10, "the thread's death in the log")
    assert "Traceback" in memesh_home.log_text() and "fault injected" in memesh_home.log_text()
    for _ in range(RESTARTS_ALLOWED):
        # Served: the watchdog restarted the accept thread (which dies again after this one).
        assert ping_once(memesh_home) > 0
    assert memesh_home.log_text().count("restarting it") == RESTARTS_ALLOWED
    try:
        ping_once(memesh_home)  # accepted, then the thread dies once more than allowed
    except Exception:
        pass  # the daemon may be gone before it answers
    memesh_home.wait_daemon_gone()
    assert "exiting so a new daemon can take over" in memesh_home.log_text()
    assert memesh_home.leftovers() == []
