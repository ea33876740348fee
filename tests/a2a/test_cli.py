"""``memesh a2a …``, ``memesh hook prompt`` and ``mesh.a2a`` against a real daemon and window."""
from __future__ import annotations

import json
import subprocess
import sys
import threading

from tests.a2a.conftest import inbox, structured
from tests.support import wait_until

WAIT = 15.0


def hook(hub, cwd, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memesh", "hook", "prompt"], input=json.dumps({
        "session_id": "s", "transcript_path": "/tmp/t", "cwd": str(cwd), "prompt_id": "p",
        "permission_mode": "default", "hook_event_name": "UserPromptSubmit", "prompt": "hi"}),
        env={**hub.home.env, **(env or {})}, capture_output=True, text=True, timeout=30)


def test_cli_send_and_tasks_and_agents_reach_the_hub(hub):
    window = hub.window("alpha")
    done = hub.home.cli("a2a", "send", "alpha", "run the tests", "--json")
    assert done.returncode == 0, done.stderr
    task = json.loads(done.stdout)
    assert task["to"] == "alpha" and task["from"] == "cli" and task["state"] in ("submitted", "working")
    assert [t["taskId"] for t in inbox(window)["tasks"]] == [task["taskId"]]
    listed = json.loads(hub.home.cli("a2a", "tasks", "--json").stdout)
    assert [t["taskId"] for t in listed] == [task["taskId"]]
    agents = json.loads(hub.home.cli("a2a", "agents", "--json").stdout)
    assert [(a["name"], a["online"]) for a in agents] == [("alpha", True)]
    assert "alpha" in hub.home.cli("a2a", "agents").stdout


def test_cli_send_with_wait_prints_the_answer(hub):
    window = hub.window("alpha")

    def answer() -> None:
        page = wait_until(lambda: (p := inbox(window)) and p["tasks"] and p, WAIT, "the task")
        structured(window.call("a2a_reply", {"task_id": page["tasks"][0]["taskId"], "text": "all green"}))

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    done = hub.home.cli("a2a", "send", "alpha", "run the tests", "--wait", "10")
    thread.join(WAIT)
    assert done.returncode == 0, done.stderr
    assert "completed" in done.stdout and "all green" in done.stdout


def test_the_prompt_hook_prints_the_pending_tasks_of_the_directorys_agent_and_nothing_otherwise(hub):
    window = hub.window("alpha")
    empty = hook(hub, hub.project("alpha"))
    assert empty.returncode == 0 and empty.stdout == ""
    structured(hub.window("beta").call("a2a_send", {"to": "alpha", "text": "please update the changelog"}))
    inside = hub.project("alpha") / "src"
    inside.mkdir()
    shown = hook(hub, inside)
    assert shown.returncode == 0
    assert "please update the changelog" in shown.stdout and "a2a_reply" in shown.stdout and "beta" in shown.stdout
    assert hook(hub, hub.project("beta")).stdout == ""
    assert hook(hub, "/nonexistent/dir").stdout == ""
    assert "please update" in hook(hub, "/tmp", env={"MEMESH_AGENT_NAME": "alpha"}).stdout
    assert window.proc.poll() is None


def test_the_prompt_hook_exits_0_with_nothing_on_garbage_input_or_without_a_database(memesh_home):
    for data in ("", "not json", "[1,2]", '{"cwd": 5}'):
        done = subprocess.run([sys.executable, "-m", "memesh", "hook", "prompt"], input=data, env=memesh_home.env,
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0 and done.stdout == "", (data, done.stderr)


def test_mesh_a2a_sends_lists_and_replies_through_the_same_connection(hub):
    window = hub.window("alpha")
    mesh = hub.home.connect()
    task = mesh.a2a.send("alpha", "from python")
    assert task["from"] == "python"
    assert [t["taskId"] for t in mesh.a2a.inbox("alpha")["tasks"]] == [task["taskId"]]
    replied = mesh.a2a.reply(task["taskId"], "answered from python")
    assert replied["state"] == "completed" and replied["reply"] == "answered from python"
    assert mesh.a2a.tasks(state="completed")[0]["taskId"] == task["taskId"]
    assert [a["name"] for a in mesh.a2a.agents()] == ["alpha"]
    assert inbox(window)["total"] == 0
