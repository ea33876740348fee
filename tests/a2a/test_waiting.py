"""A task whose sender does not wait keeps no worker in the daemon, and still behaves as the
A2A contract says: it reaches the window, is answered, cancelled or followed by
SubscribeToTask. Only a connected sender (a blocking SendMessage) has a worker, and only
until its task settles. ``waitingWorkers`` (the hub's status) counts the workers."""
from __future__ import annotations

import asyncio
import threading

from a2a.types.a2a_pb2 import SubscribeToTaskRequest, TaskState

from tests.a2a.conftest import inbox, structured
from tests.a2a.sdk import client_for, send
from tests.support import wait_until

WAIT = 20.0


def test_tasks_sent_without_waiting_keep_no_worker_and_are_answered_cancelled_and_followed_from_the_storage(hub):
    a, b = hub.window("alpha"), hub.window("beta")
    mesh = hub.home.connect()

    async def send_immediately(count: int) -> list:
        client = await client_for(hub.url("beta"), hub.token)
        try:
            return [await send(client, f"outside job {i}", immediately=True) for i in range(count)]
        finally:
            await client.close()

    outside = asyncio.run(send_immediately(3))
    from_window = [structured(a.call("a2a_send", {"to": "beta", "text": f"window job {i}"})) for i in range(3)]
    ids = [t.id for t in outside] + [t["taskId"] for t in from_window]
    assert [t.status.state for t in outside] == [TaskState.TASK_STATE_SUBMITTED] * 3
    assert sorted(t["taskId"] for t in inbox(b)["tasks"]) == sorted(ids)
    wait_until(lambda: all(t["state"] == "working" for t in inbox(b)["tasks"]), WAIT, "beta's tasks to be working")
    assert mesh.a2a.status()["waitingWorkers"] == 0

    followed: list = []
    attached = threading.Event()

    async def follow(task_id: str) -> None:
        client = await client_for(hub.url("beta"), hub.token, streaming=True)
        try:
            async for event in client.subscribe(SubscribeToTaskRequest(id=task_id)):
                followed.append(event)
                attached.set()   # the stream starts with the stored task
        finally:
            await client.close()

    follower = threading.Thread(target=lambda: asyncio.run(follow(ids[0])), daemon=True)
    follower.start()
    assert attached.wait(WAIT), "SubscribeToTask sent nothing"
    assert followed[0].task.status.state == TaskState.TASK_STATE_WORKING
    assert structured(b.call("a2a_reply", {"task_id": ids[0], "text": "done outside"}))["state"] == "completed"
    follower.join(WAIT)
    assert not follower.is_alive()
    last = followed[-1]
    final = last.task if last.HasField("task") else last.status_update
    assert final.status.state == TaskState.TASK_STATE_COMPLETED

    answered = structured(b.call("a2a_reply", {"task_id": ids[3], "text": "done for alpha"}))
    assert answered["state"] == "completed" and answered["reply"] == "done for alpha"
    assert structured(a.call("a2a_get_task", {"task_id": ids[3]}))["reply"] == "done for alpha"
    assert mesh.a2a.cancel(ids[1])["state"] == "canceled"
    assert sorted(t["taskId"] for t in inbox(b)["tasks"]) == sorted([ids[2], ids[4], ids[5]])


def test_a_blocking_sender_has_a_worker_until_its_task_is_answered(hub):
    hub.window("alpha")
    b = hub.window("beta")
    mesh = hub.home.connect()
    result: list = []

    async def blocking() -> None:
        client = await client_for(hub.url("beta"), hub.token)
        try:
            result.append(await send(client, "wait for me"))
        finally:
            await client.close()

    sender = threading.Thread(target=lambda: asyncio.run(blocking()), daemon=True)
    sender.start()
    wait_until(lambda: mesh.a2a.status()["waitingWorkers"] == 1, WAIT, "the blocking sender's worker")
    task = wait_until(lambda: (p := inbox(b)) and p["tasks"] and p["tasks"][0], WAIT, "the task in beta's inbox")
    structured(b.call("a2a_reply", {"task_id": task["taskId"], "text": "here you are"}))
    sender.join(WAIT)
    assert result and result[0].status.state == TaskState.TASK_STATE_COMPLETED
    wait_until(lambda: mesh.a2a.status()["waitingWorkers"] == 0, WAIT, "the worker to end with its task")
