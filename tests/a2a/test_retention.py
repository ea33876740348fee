"""Finished tasks are deleted once a2a.keep_finished has passed; unfinished ones stay.

A real daemon with a short ``a2a.keep_finished``, real windows and an outside agent over
HTTP: a completed and a canceled task disappear from ``ListTasks`` and ``GetTask``
answers -32001 for them, while a task still waiting for its window is listed and
readable throughout."""
from __future__ import annotations

import httpx

from tests.a2a.conftest import inbox, structured
from tests.support import wait_until

WAIT = 20.0


def _rpc(hub, method: str, params: dict) -> dict:
    headers = {"Authorization": f"Bearer {hub.token}", "A2A-Version": "1.0"}
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    response = httpx.post(hub.url("beta"), json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _listed(hub) -> set[str]:
    return {t["id"] for t in _rpc(hub, "ListTasks", {"pageSize": 100})["result"]["tasks"]}


def test_finished_tasks_disappear_after_keep_finished_while_an_unfinished_task_stays(hub):
    hub.home.env["MEMESH_A2A_KEEP_FINISHED"] = "1000"
    a, b = hub.window("alpha"), hub.window("beta")
    done = structured(a.call("a2a_send", {"to": "beta", "text": "answer me"}))["taskId"]
    wait_until(lambda: any(t["taskId"] == done for t in inbox(b)["tasks"]), WAIT, "the task in beta's inbox")
    assert structured(b.call("a2a_reply", {"task_id": done, "text": "answered"}))["state"] == "completed"
    stopped = structured(a.call("a2a_send", {"to": "beta", "text": "never mind"}))["taskId"]
    assert _rpc(hub, "CancelTask", {"id": stopped})["result"]["status"]["state"] == "TASK_STATE_CANCELED"
    waiting = structured(a.call("a2a_send", {"to": "beta", "text": "still to do"}))["taskId"]

    wait_until(lambda: not ({done, stopped} & _listed(hub)), WAIT, "the finished tasks to leave ListTasks")
    for task_id in (done, stopped):
        assert _rpc(hub, "GetTask", {"id": task_id})["error"]["code"] == -32001
    assert waiting in _listed(hub)
    assert _rpc(hub, "GetTask", {"id": waiting})["result"]["status"]["state"] in ("TASK_STATE_SUBMITTED",
                                                                              "TASK_STATE_WORKING")
    assert [t["taskId"] for t in inbox(b)["tasks"]] == [waiting]
