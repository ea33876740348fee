"""When the PostgreSQL server goes away: clear errors, a living daemon, recovery by itself.

Each test runs its own PostgreSQL server (tests/pg_server.py) so that it can stop and
start it; windows are real ``memesh`` processes proxied into a real daemon. Teardown
kills the windows by process group, the daemon by verified pid and the server by its
pid file (``pg_ctl stop``, then its pid).
"""
from __future__ import annotations

import json
import sys

import pytest

from tests.mcp.stdio_driver import StdioServer
from tests.support import wait_until

WINDOW_ARGV = [sys.executable, "-m", "memesh"]
RECOVERY_TIMEOUT = 60.0  # the pool and the listener retry with capped backoff


@pytest.fixture
def window_on(memesh_home):
    windows: list[StdioServer] = []

    def open_(url: str) -> StdioServer:
        window = StdioServer(WINDOW_ARGV, {**memesh_home.env, "MEMESH_STORAGE_URL": url})
        windows.append(window)
        window.initialize()
        return window

    try:
        yield open_
    finally:
        for window in windows:
            window.kill()


def create(window: StdioServer, name: str) -> dict:
    return window.call("create_entities", {"entities": [{"name": name, "entityType": "t", "observations": [name]}]})


def names(window: StdioServer) -> set[str]:
    page = window.call("read_graph", {"limit": 1000})["structuredContent"]
    return {e["name"] for e in page["entities"]}


def status(home) -> dict:
    return json.loads(home.cli("daemon", "status", "--json").stdout)


def test_a_server_stopped_during_traffic_gives_clear_errors_and_loses_nothing_acknowledged(own_server, window_on,
                                                                                             memesh_home):
    own_server.start()
    url = own_server.url()
    window = window_on(url)
    acked = [f"before-{i}" for i in range(5) if not create(window, f"before-{i}").get("isError")]
    assert len(acked) == 5
    daemon_pid = memesh_home.daemons()[0].pid

    own_server.stop()
    failed = create(window, "during-outage")
    assert failed.get("isError")
    message = failed["content"][0]["text"]
    assert own_server.socket_dir.as_posix() in message and "unavailable" in message and "reconnects" in message
    assert [p.pid for p in memesh_home.daemons()] == [daemon_pid]  # the daemon is alive
    wait_until(lambda: status(memesh_home)["storageAvailable"] is False, 30, "status to say the storage is unavailable")
    assert "UNAVAILABLE" in memesh_home.cli("daemon", "status").stdout

    own_server.start()
    wait_until(lambda: not create(window, "after").get("isError"), RECOVERY_TIMEOUT, "writes to work again")
    assert names(window) >= {*acked, "after"}
    wait_until(lambda: status(memesh_home)["storageAvailable"], RECOVERY_TIMEOUT, "status to say the storage is back")
    assert [p.pid for p in memesh_home.daemons()] == [daemon_pid]


def test_a_daemon_started_before_its_server_works_once_the_server_is_up(own_server, window_on, memesh_home):
    url = own_server.url()
    window = window_on(url)  # the server has never run yet
    failed = window.call("search_nodes", {"query": "anything"})
    assert failed.get("isError") and "unavailable" in failed["content"][0]["text"]
    own_server.start()
    wait_until(lambda: not create(window, "first").get("isError"), RECOVERY_TIMEOUT, "the daemon to reach the server")
    assert names(window) == {"first"}
