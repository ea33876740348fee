"""Windows as agents: naming, window-to-window work with tools only, offline agents,
time to live, and the Claude Code channel contract."""
from __future__ import annotations

import sys
import threading

from tests.a2a.conftest import inbox, structured, tool_error
from tests.mcp.stdio_driver import StdioServer
from tests.support import wait_until

WAIT = 15.0


def test_window_to_window_a_sends_with_wait_b_replies_and_a_gets_the_reply_from_its_call(hub):
    a, b = hub.window("frontend"), hub.window("backend")

    def b_works() -> None:
        page = wait_until(lambda: (p := inbox(b)) and p["tasks"] and p, WAIT, "the task in b's inbox")
        task = page["tasks"][0]
        assert task["from"] == "frontend" and task["text"] == "add an /health endpoint"
        structured(b.call("a2a_reply", {"task_id": task["taskId"], "text": "added GET /health"}))

    worker = threading.Thread(target=b_works, daemon=True)
    worker.start()
    result = structured(a.call("a2a_send", {"to": "backend", "text": "add an /health endpoint", "wait_seconds": 10}))
    worker.join(WAIT)
    assert result["state"] == "completed"
    assert result["reply"] == "added GET /health"
    assert result["from"] == "frontend" and result["to"] == "backend"


def test_two_projects_with_the_same_directory_name_get_distinct_agent_names(hub):
    first = hub.window("app")
    other = hub.home.path / "elsewhere"
    (other / "app" / ".git").mkdir(parents=True)
    second = StdioServer(["/bin/sh", "-c", f'cd "{other / "app"}" && exec "{sys.executable}" -m memesh'], hub.home.env)
    hub.windows.append(second)
    second.initialize()
    assert hub.agent_of(first) == "app"
    assert hub.agent_of(second) == "app-2"
    names = {a["name"]: a for a in structured(first.call("a2a_agents"))["agents"]}
    assert names["app"]["online"] and names["app-2"]["online"]


def test_a_window_can_take_another_name_with_a2a_register_and_tasks_to_that_name_reach_it(hub):
    a, b = hub.window("alpha"), hub.window("beta")
    agent = structured(b.call("a2a_register", {"name": "reviewer", "description": "reviews diffs"}))
    assert agent["name"] == "reviewer" and agent["description"] == "reviews diffs"
    sent = structured(a.call("a2a_send", {"to": "reviewer", "text": "look at this"}))
    assert [t["taskId"] for t in inbox(b)["tasks"]] == [sent["taskId"]]
    assert "not a usable agent name" in tool_error(b.call("a2a_register", {"name": "Bad Name!"}))


def test_the_agent_name_a_window_asks_for_in_its_context_is_used(hub):
    mesh = hub.home.connect()
    hub.window("alpha")   # starts the daemon
    opened = mesh.call("mcp", "open", ({"cwd": str(hub.project("alpha")), "agentName": "Night-Shift"},))
    try:
        names = [a["name"] for a in mesh.a2a.agents()]
        assert "night-shift" in names
    finally:
        mesh.call("mcp", "close", (opened["sid"],))


def test_a_window_started_with_memesh_agent_name_registers_under_that_name(hub):
    named = hub.window("alpha", env={"MEMESH_AGENT_NAME": "Night-Shift"})
    plain = hub.window("beta")
    names = [a["name"] for a in structured(plain.call("a2a_agents"))["agents"]]
    assert "night-shift" in names and "alpha" not in names


def test_a_task_for_an_offline_agent_waits_in_its_inbox_until_a_window_of_it_returns(hub):
    a = hub.window("alpha")
    b = hub.window("beta")
    b.kill()
    wait_until(lambda: not next(x for x in structured(a.call("a2a_agents"))["agents"] if x["name"] == "beta")["online"],
               WAIT, "beta to go offline")
    sent = structured(a.call("a2a_send", {"to": "beta", "text": "when you are back"}))
    assert sent["state"] == "submitted"
    back = hub.window("beta")
    assert [t["taskId"] for t in inbox(back)["tasks"]] == [sent["taskId"]]
    task = wait_until(lambda: (t := structured(a.call("a2a_get_task", {"task_id": sent["taskId"]})))["state"] == "working" and t,
                      WAIT, "the task to be working once beta is online")
    assert task["to"] == "beta"


def test_a_task_nobody_answers_within_its_time_to_live_fails_with_that_reason(hub):
    hub.home.env["MEMESH_A2A_TASK_TTL"] = "1000"
    a = hub.window("alpha")
    hub.window("beta")
    sent = structured(a.call("a2a_send", {"to": "beta", "text": "too slow", "wait_seconds": 10}))
    assert sent["state"] == "failed"
    assert "time to live" in sent["reply"]


def test_sending_to_an_unknown_agent_is_a_tool_error_naming_it(hub):
    a = hub.window("alpha")
    assert "nobody" in tool_error(a.call("a2a_send", {"to": "nobody", "text": "hello"}))


def test_with_channels_on_initialize_declares_the_channel_and_a_task_arrives_as_a_channel_event(hub):
    hub.home.env["MEMESH_A2A_CHANNEL"] = "1"
    a = hub.window("alpha")
    b = hub.window("beta", initialize=False)
    result = b.initialize()
    assert result["capabilities"]["experimental"] == {"claude/channel": {}}
    assert "a2a_reply" in result["instructions"] and "task_id" in result["instructions"]
    sent = structured(a.call("a2a_send", {"to": "beta", "text": "check the build"}))
    event = b.wait_notification("notifications/claude/channel")[0]["params"]
    assert event["content"] == "check the build"
    assert event["meta"] == {"task_id": sent["taskId"], "sender": "alpha", "context_id": sent["contextId"]}
    assert all(isinstance(v, str) for v in event["meta"].values())


def test_without_channels_initialize_declares_no_channel_and_sends_no_channel_events(hub):
    a = hub.window("alpha")
    b = hub.window("beta", initialize=False)
    assert "experimental" not in b.initialize()["capabilities"]
    structured(a.call("a2a_send", {"to": "beta", "text": "quietly"}))
    wait_until(lambda: inbox(b)["total"] == 1, WAIT, "the task in beta's inbox")
    assert b.notifications("notifications/claude/channel") == []


def test_a_reply_to_a_task_of_another_agent_is_refused(hub):
    a, b = hub.window("alpha"), hub.window("beta")
    sent = structured(a.call("a2a_send", {"to": "beta", "text": "mine"}))
    assert "not to this window" in tool_error(a.call("a2a_reply", {"task_id": sent["taskId"], "text": "x"}))


def test_inbox_pages_oldest_first(hub):
    a, b = hub.window("alpha"), hub.window("beta")
    ids = [structured(a.call("a2a_send", {"to": "beta", "text": f"t{i}"}))["taskId"] for i in range(3)]
    first = structured(b.call("a2a_inbox", {"limit": 2}))
    assert [t["taskId"] for t in first["tasks"]] == ids[:2] and first["total"] == 3 and first["nextOffset"] == 2
    rest = structured(b.call("a2a_inbox", {"limit": 2, "offset": 2}))
    assert [t["taskId"] for t in rest["tasks"]] == ids[2:] and "nextOffset" not in rest
