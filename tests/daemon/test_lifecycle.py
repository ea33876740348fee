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
    wait_until(lambda: stopped_cleanly(memesh_home, pid), 2, "the idle daemon to clean up")
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
