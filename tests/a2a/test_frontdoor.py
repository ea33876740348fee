"""The front door follows the daemon's life: its port (config, next free, status, lock
record), tasks that survive restart, draining, and a clean close that frees the port."""
from __future__ import annotations

import asyncio
import json
import socket
import threading

import httpx
import pytest
from a2a.types.a2a_pb2 import TaskState

from memesh.a2a.security import Guard
from memesh.daemon.shutdown import RUNNING, ShutdownCoordinator
from tests.a2a.conftest import inbox, structured
from tests.a2a.sdk import client_for, send
from tests.support import wait_until

WAIT = 20.0
LIST = {"jsonrpc": "2.0", "id": 1, "method": "ListTasks", "params": {}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def new_daemon(hub, old_pid: int) -> dict:
    return wait_until(lambda: (r := hub.home.record()) and r["pid"] != old_pid and r.get("a2aPort") and r, WAIT,
                      "the new daemon's front door")


def test_the_configured_port_is_used_and_shown_by_status_and_in_the_lock_record(hub):
    port = free_port()
    hub.home.env["MEMESH_A2A_PORT"] = str(port)
    hub.window("alpha")
    assert hub.record()["a2aPort"] == port
    info = json.loads(hub.home.cli("daemon", "status", "--json").stdout)
    assert info["a2aPort"] == port
    assert f"http://127.0.0.1:{port}/" in hub.home.cli("daemon", "status").stdout


def test_a_taken_port_makes_the_front_door_take_the_next_free_one(hub):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        hub.home.env["MEMESH_A2A_PORT"] = str(port)
        hub.window("alpha")
        assert hub.record()["a2aPort"] > port


@pytest.mark.parametrize("command", ["restart", "upgrade"])
def test_a_pending_task_is_still_in_the_inbox_after_restart_or_upgrade_and_its_answer_reaches_the_sender(hub, command):
    hub.home.env["MEMESH_A2A_PORT"] = str(free_port())
    a, b = hub.window("alpha"), hub.window("beta")
    sent = structured(a.call("a2a_send", {"to": "beta", "text": "survive this"}))
    port, old_pid = hub.port, hub.record()["pid"]
    assert hub.home.cli("daemon", command).returncode == 0
    record = new_daemon(hub, old_pid)
    assert record["a2aPort"] == port   # the next daemon takes the same port
    page = wait_until(lambda: (p := inbox(b)) and p["tasks"] and p, WAIT, "the task in beta's inbox after the restart")
    assert [t["taskId"] for t in page["tasks"]] == [sent["taskId"]]
    structured(b.call("a2a_reply", {"task_id": sent["taskId"], "text": "survived"}))
    task = structured(a.call("a2a_get_task", {"task_id": sent["taskId"]}))
    assert task["state"] == "completed" and task["reply"] == "survived"


def test_a_blocking_send_message_in_progress_at_restart_gets_an_answer_not_a_hang(hub):
    hub.window("alpha")
    outcome: dict = {}

    async def blocking():
        client = await client_for(hub.url("alpha"), hub.token)
        try:
            outcome["task"] = await send(client, "long job")
        except Exception as exc:   # a clear error is acceptable too
            outcome["error"] = exc
        finally:
            await client.close()

    thread = threading.Thread(target=lambda: asyncio.run(blocking()), daemon=True)
    thread.start()
    wait_until(lambda: hub.home.cli("a2a", "tasks", "--json").stdout.count("taskId") == 1, WAIT, "the task to exist")
    old_pid = hub.record()["pid"]
    assert hub.home.cli("daemon", "restart").returncode == 0
    thread.join(WAIT)
    assert not thread.is_alive(), "the blocking SendMessage hung across the restart"
    if "task" in outcome:
        assert outcome["task"].status.state in (TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING)
    new_daemon(hub, old_pid)


def test_while_the_daemon_drains_the_guard_answers_503_with_retry_after_and_counts_nothing_in():
    coordinator = ShutdownCoordinator(0)
    coordinator.transition(RUNNING)
    served = []

    async def app(scope, receive, send):
        served.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    guard = Guard(app, port=7733, token="t", coordinator=coordinator)

    async def post():
        transport = httpx.ASGITransport(app=guard)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:7733") as client:
            return await client.post("/", json=LIST, headers={"Authorization": "Bearer t"})

    assert asyncio.run(post()).status_code == 200
    assert coordinator.snapshot()["requestsCompleted"] == 1
    coordinator.request_stop("test")
    refused = asyncio.run(post())
    assert refused.status_code == 503 and refused.headers["retry-after"]
    assert served == ["/"] and coordinator.inflight == 0


def test_stop_closes_the_port_so_nothing_listens_after_the_daemon_is_gone(hub):
    window = hub.window("alpha")
    port = hub.port
    window.kill()   # an open window would start a new daemon once this one is gone
    assert hub.home.cli("daemon", "stop").returncode == 0
    hub.home.wait_daemon_gone()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_a_task_whose_time_to_live_ends_after_a_restart_still_fails_with_the_reason(hub):
    hub.home.env["MEMESH_A2A_TASK_TTL"] = "2000"
    a = hub.window("alpha")
    hub.window("beta")
    sent = structured(a.call("a2a_send", {"to": "beta", "text": "nobody will answer"}))
    old_pid = hub.record()["pid"]
    assert hub.home.cli("daemon", "restart").returncode == 0
    new_daemon(hub, old_pid)
    task = wait_until(lambda: (t := structured(a.call("a2a_get_task", {"task_id": sent["taskId"]})))["state"] == "failed" and t,
                      WAIT, "the expired task to fail on the new daemon")
    assert "time to live" in task["reply"]
