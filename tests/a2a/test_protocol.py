"""checklists/A2A.md, statement by statement (numbers in the test names), over raw HTTP
against a real daemon with a real window behind it."""
from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.a2a.conftest import structured

MESSAGE = {"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": "hello"}]}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.fixture
def rpc(hub):
    hub.window("alpha")
    token, base = hub.token, hub.url()

    def call(method, params=None, *, path="agents/alpha/", version="1.0", raw=None, request_id=7):
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if version is not None:
            headers["A2A-Version"] = version
        body = raw if raw is not None else json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                                                                      "params": params if params is not None else {}})
        response = httpx.post(base + path, content=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    return call


def send(rpc, **configuration):
    return rpc("SendMessage", {"message": MESSAGE, "configuration": {"returnImmediately": True, **configuration}})


def test_1_the_agent_card_has_the_required_fields_and_an_etag_and_if_none_match_gives_304(hub):
    hub.window("alpha")
    for url in (hub.url(), hub.url("alpha")):
        response = httpx.get(url + ".well-known/agent-card.json")
        card = response.json()
        assert {"name", "description", "version", "supportedInterfaces", "capabilities", "defaultInputModes",
                "defaultOutputModes", "skills"} <= card.keys()
        assert card["supportedInterfaces"][0]["protocolBinding"] == "JSONRPC"
        assert card["supportedInterfaces"][0]["protocolVersion"] == "1.0"
        assert {"id", "name", "description", "tags"} <= card["skills"][0].keys()
        etag = response.headers["etag"]
        assert httpx.get(url + ".well-known/agent-card.json", headers={"If-None-Match": etag}).status_code == 304
    assert [s["id"] for s in httpx.get(hub.url() + ".well-known/agent-card.json").json()["skills"]] == ["alpha"]


def test_2_a_missing_a2a_version_means_0_3_and_an_unsupported_one_is_minus_32009(rpc):
    assert rpc("ListTasks", version=None)["error"]["code"] == -32009
    assert rpc("ListTasks", version="9.9")["error"]["code"] == -32009
    assert "result" in rpc("ListTasks", version="1.0")


def test_3_4_5_send_message_answers_one_task_with_the_request_id_camel_case_and_task_state_names(rpc):
    reply = send(rpc)
    assert reply["id"] == 7 and set(reply["result"]) == {"task"}
    task = reply["result"]["task"]
    assert task["id"] and task["contextId"] and task["id"] != "m-1"
    assert task["status"]["state"] in ("TASK_STATE_SUBMITTED", "TASK_STATE_WORKING")
    assert task["history"][0]["role"] == "ROLE_USER" and task["history"][0]["parts"] == [{"text": "hello"}]


def test_6_get_task_with_history_length_0_omits_history_and_an_unknown_id_is_minus_32001(rpc):
    task = send(rpc)["result"]["task"]
    got = rpc("GetTask", {"id": task["id"], "historyLength": 0})["result"]
    assert got["id"] == task["id"] and not got.get("history")
    assert rpc("GetTask", {"id": "no-such-task"})["error"]["code"] == -32001


def test_7_list_tasks_has_tasks_next_page_token_page_size_and_total_size(rpc):
    send(rpc)
    result = rpc("ListTasks", {"pageSize": 10})["result"]
    assert len(result["tasks"]) == 1 and result["nextPageToken"] == "" and result["pageSize"] == 10
    assert result["totalSize"] == 1
    assert rpc("ListTasks", {"status": "TASK_STATE_COMPLETED"})["result"]["totalSize"] == 0
    assert rpc("ListTasks", {"pageToken": "garbage!"})["error"]["code"] == -32602


def test_8_cancel_task_cancels_then_minus_32002_on_a_terminal_task_and_minus_32001_when_unknown(rpc):
    task = send(rpc)["result"]["task"]
    assert rpc("CancelTask", {"id": task["id"]})["result"]["status"]["state"] == "TASK_STATE_CANCELED"
    assert rpc("CancelTask", {"id": task["id"]})["error"]["code"] == -32002
    assert rpc("CancelTask", {"id": "no-such-task"})["error"]["code"] == -32001


def test_9_messages_to_terminal_unknown_or_mismatched_tasks_are_refused(rpc):
    task = send(rpc)["result"]["task"]
    rpc("CancelTask", {"id": task["id"]})
    follow = {**MESSAGE, "messageId": "m-2", "taskId": task["id"]}
    assert rpc("SendMessage", {"message": follow})["error"]["code"] == -32004
    assert rpc("SendMessage", {"message": {**follow, "taskId": "no-such-task"}})["error"]["code"] == -32001
    other = send(rpc)["result"]["task"]
    mismatched = {**MESSAGE, "messageId": "m-3", "taskId": other["id"], "contextId": "not-its-context"}
    assert rpc("SendMessage", {"message": mismatched})["error"]["code"] == -32602


def test_10_push_notification_methods_are_minus_32003_since_not_declared(rpc):
    task = send(rpc)["result"]["task"]
    reply = rpc("CreateTaskPushNotificationConfig", {"taskId": task["id"], "url": "http://127.0.0.1:1/hook"})
    assert reply["error"]["code"] == -32003


def test_11_bad_json_missing_method_and_missing_message_or_parts_get_their_codes(rpc):
    bad = rpc(None, raw=b"{not json")
    assert bad["error"]["code"] == -32700 and bad["id"] is None
    assert rpc(None, raw=b'{"jsonrpc":"2.0","id":1,"params":{}}')["error"]["code"] == -32600
    assert rpc("SendMessage", {})["error"]["code"] == -32602
    assert rpc("SendMessage", {"message": {**MESSAGE, "parts": []}})["error"]["code"] == -32602


def test_12_error_data_is_a_list_of_typed_objects_and_never_a_stack_trace(rpc):
    error = rpc("GetTask", {"id": "no-such-task"})["error"]
    assert isinstance(error["data"], list) and error["data"]
    assert all("@type" in item for item in error["data"])
    assert error["data"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo" and error["data"][0]["reason"]
    assert "Traceback" not in str(error)


def test_13_timestamps_are_iso_8601_utc(rpc):
    task = send(rpc)["result"]["task"]
    assert ISO_UTC.match(task["status"]["timestamp"]), task["status"]


def test_17_the_shared_endpoint_reaches_an_agent_named_by_tenant_and_refuses_a_message_naming_none(rpc, hub):
    reply = rpc("SendMessage", {"tenant": "alpha", "message": MESSAGE, "configuration": {"returnImmediately": True}}, path="")
    assert reply["result"]["task"]["metadata"]["agent"] == "alpha"
    assert rpc("SendMessage", {"message": MESSAGE}, path="")["error"]["code"] == -32602
    assert rpc("SendMessage", {"message": MESSAGE}, path="agents/nobody/")["error"]["code"] == -32602
    assert httpx.get(hub.url("nobody") + ".well-known/agent-card.json").status_code == 404


def test_per_agent_list_tasks_lists_only_that_agents_tasks(rpc, hub):
    beta = hub.window("beta")
    send(rpc)
    structured(beta.call("a2a_send", {"to": "beta", "text": "to myself"}))
    assert rpc("ListTasks", {}, path="agents/alpha/")["result"]["totalSize"] == 1
    assert rpc("ListTasks", {}, path="")["result"]["totalSize"] == 2
