"""The A2A hub on PostgreSQL storage (``storage.url``): tasks and agents live in the team
database, scoped to the home's hub, and nowhere in the home's SQLite file.

Real daemons with their own ``MEMESH_HOME`` on the test's PostgreSQL database, real
windows (``memesh`` over stdio through the proxy), the official a2a-sdk client. Teardown
kills the windows by process group and the daemons by verified pid (``make_home``).
"""
from __future__ import annotations

import asyncio
import getpass
import json
import os
import socket
import sqlite3

import pytest
from a2a.types.a2a_pb2 import TaskState

from tests.a2a.conftest import Hub, inbox, structured
from tests.a2a.sdk import client_for, send
from tests.a2a.test_cli import hook
from tests.a2a.test_frontdoor import new_daemon
from tests.a2a.test_outside_agent import answer_when_it_arrives
from tests.store.backends import run_sql
from tests.support import wait_until

WAIT = 15.0


@pytest.fixture
def pg_hubs(make_home, pg_url):
    """``pg_hubs(n)``: ``n`` hubs (homes, each its own daemon) on the test's PostgreSQL database."""
    hubs: list[Hub] = []

    def make(count: int = 1) -> list[Hub]:
        for _ in range(count):
            hubs.append(Hub(make_home()))
            hubs[-1].home.env["MEMESH_STORAGE_URL"] = pg_url
        return hubs[-count:]

    try:
        yield make
    finally:
        for hub in hubs:
            hub.kill()


def hub_identity(home) -> str:
    """The hub identity docs/team.md documents: user@host:/real/path/of/the/home."""
    return f"{getpass.getuser()}@{socket.gethostname()}:{os.path.realpath(home)}"


def sqlite_tasks(hub: Hub) -> list[tuple]:
    """The A2A rows in the home's SQLite file (none when the file was never made)."""
    path = hub.home.path / "memesh.db"
    if not path.exists():
        return []
    conn = sqlite3.connect(path)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return conn.execute("SELECT id FROM a2a_tasks").fetchall() if "a2a_tasks" in tables else []
    finally:
        conn.close()


def test_an_outside_agents_blocking_message_is_answered_by_a_window_and_the_task_is_kept_in_postgresql(pg_hubs, pg_url):
    (hub,) = pg_hubs(1)
    window = hub.window("alpha")
    thread = answer_when_it_arrives(window, "the build is green")

    async def scenario():
        client = await client_for(hub.url("alpha"), hub.token)
        task = await send(client, "how is the build?")
        await client.close()
        return task

    task = asyncio.run(scenario())
    thread.join(WAIT)
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert [p.text for a in task.artifacts for p in a.parts] == ["the build is green"]
    hub_id = hub_identity(hub.home.path)
    assert run_sql(pg_url, "SELECT hub, agent, state, summary FROM a2a_tasks WHERE id = ?", task.id) == [
        (hub_id, "alpha", "TASK_STATE_COMPLETED", "how is the build?")]
    assert run_sql(pg_url, "SELECT hub, name FROM a2a_agents") == [(hub_id, "alpha")]
    assert sqlite_tasks(hub) == []


def test_a_pending_task_waits_in_postgresql_across_a_daemon_restart_and_the_prompt_hook_shows_it(pg_hubs, pg_url):
    (hub,) = pg_hubs(1)
    a, b = hub.window("alpha"), hub.window("beta")
    sent = structured(a.call("a2a_send", {"to": "beta", "text": "rotate the staging keys"}))
    shown = hook(hub, hub.project("beta"))
    assert shown.returncode == 0 and "rotate the staging keys" in shown.stdout, shown.stderr
    old_pid = hub.record()["pid"]
    assert hub.home.cli("daemon", "restart").returncode == 0
    new_daemon(hub, old_pid)
    page = wait_until(lambda: (p := inbox(b)) and p["tasks"] and p, WAIT, "the task in beta's inbox after the restart")
    assert [t["taskId"] for t in page["tasks"]] == [sent["taskId"]]
    structured(b.call("a2a_reply", {"task_id": sent["taskId"], "text": "rotated"}))
    task = structured(a.call("a2a_get_task", {"task_id": sent["taskId"]}))
    assert task["state"] == "completed" and task["reply"] == "rotated"
    assert run_sql(pg_url, "SELECT state FROM a2a_tasks WHERE id = ?", sent["taskId"]) == [("TASK_STATE_COMPLETED",)]
    assert hook(hub, hub.project("beta")).stdout == ""
    assert sqlite_tasks(hub) == []


def test_two_homes_on_one_postgresql_database_keep_their_own_agents_and_tasks(pg_hubs, pg_url):
    one, two = pg_hubs(2)
    a1, a2 = one.window("alpha"), two.window("alpha")
    one.window("gamma")
    sent = structured(one.window("beta").call("a2a_send", {"to": "alpha", "text": "only for home one"}))
    assert [t["taskId"] for t in inbox(a1)["tasks"]] == [sent["taskId"]]
    assert inbox(a2)["tasks"] == []
    assert json.loads(two.home.cli("a2a", "tasks", "--json").stdout) == []
    assert [a["name"] for a in json.loads(two.home.cli("a2a", "agents", "--json").stdout)] == ["alpha"]
    refused = two.home.cli("a2a", "send", "gamma", "you are not on this hub")
    assert refused.returncode != 0 and "gamma" in refused.stderr
    assert hook(two, two.project("alpha")).stdout == ""
    assert "only for home one" in hook(one, one.project("alpha")).stdout
    hubs = run_sql(pg_url, "SELECT DISTINCT hub FROM a2a_agents ORDER BY hub")
    assert hubs == sorted([(hub_identity(one.home.path),), (hub_identity(two.home.path),)])
    assert a1.proc.poll() is None and a2.proc.poll() is None


def test_with_the_server_stopped_a2a_calls_answer_that_the_storage_is_unavailable_and_work_again_after(
        own_server, memesh_home):
    own_server.start()
    hub = Hub(memesh_home)
    hub.home.env["MEMESH_STORAGE_URL"] = own_server.url()
    try:
        window = hub.window("alpha")
        daemon_pid = hub.record()["pid"]
        token, url = hub.token, hub.url("alpha")
        own_server.stop()

        async def outside(text: str, immediately: bool = True):
            client = await client_for(url, token)
            try:
                return await send(client, text, immediately=immediately)
            finally:
                await client.close()

        with pytest.raises(Exception, match="unavailable") as refused:
            asyncio.run(outside("while the database is down"))
        assert own_server.socket_dir.as_posix() in str(refused.value)
        failed = window.call("a2a_inbox")
        assert failed.get("isError") and "unavailable" in failed["content"][0]["text"]
        quiet = hook(hub, hub.project("alpha"))
        assert quiet.returncode == 0 and quiet.stdout == "" and "memesh hook prompt" in quiet.stderr
        assert [p.pid for p in memesh_home.daemons()] == [daemon_pid]   # the daemon keeps running

        own_server.start()
        wait_until(lambda: not window.call("a2a_inbox").get("isError"), 60, "the inbox to work again")
        task = asyncio.run(outside("after the outage"))
        assert [t["taskId"] for t in inbox(window)["tasks"]] == [task.id]
        assert [p.pid for p in memesh_home.daemons()] == [daemon_pid]
    finally:
        hub.kill()
