"""Arbitrary bodies and JSON-RPC requests posted to a real daemon's A2A endpoint always get
a JSON-RPC answer (an error unless the request was valid), and the daemon never dies."""
from __future__ import annotations

import json
import os
import pathlib
import sys
import tempfile

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.mcp.stdio_driver import StdioServer
from tests.support import MemeshHome, wait_until

REPO = str(pathlib.Path(__file__).resolve().parents[1])
METHODS = ["SendMessage", "SendStreamingMessage", "GetTask", "ListTasks", "CancelTask", "SubscribeToTask",
           "CreateTaskPushNotificationConfig", "GetExtendedAgentCard", "message/send", "tasks/get", "x", ""]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
messages = st.fixed_dictionaries({"messageId": st.text(max_size=8), "role": st.sampled_from(["ROLE_USER", "ROLE_AGENT", "x", 3]),
                                  "parts": st.lists(st.fixed_dictionaries({"text": st.text(max_size=10)}), max_size=2)},
                                 optional={"taskId": st.text(max_size=8), "contextId": st.text(max_size=8)})
params = st.one_of(json_values, st.fixed_dictionaries({"message": messages}, optional={
    "configuration": st.fixed_dictionaries({"returnImmediately": st.just(True)}),
    "id": st.text(max_size=8), "pageSize": st.integers(-5, 500), "pageToken": st.text(max_size=10),
    "historyLength": st.integers(-3, 5), "tenant": st.sampled_from(["alpha", "nobody", ""])}))
requests = st.fixed_dictionaries({"jsonrpc": st.sampled_from(["2.0", "1.0", 2]), "method": st.sampled_from(METHODS)},
                                 optional={"id": st.one_of(st.integers(), st.text(max_size=5), st.none(), st.booleans()),
                                           "params": params})
bodies = st.one_of(requests.map(json.dumps), json_values.map(json.dumps), st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1")))


@pytest.fixture(scope="module")
def endpoint():
    home = MemeshHome(pathlib.Path(tempfile.mkdtemp(prefix="mm", dir="/tmp")))
    home.env["MEMESH_A2A_PORT"] = "0"
    home.env["MEMESH_A2A_BLOCKING_TIMEOUT"] = "100"   # a valid blocking SendMessage answers at once
    home.env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
    project = home.path / "alpha"
    (project / ".git").mkdir(parents=True)
    window = StdioServer(["/bin/sh", "-c", f'cd "{project}" && exec "{sys.executable}" -m memesh'], home.env)
    try:
        window.initialize()
        record = wait_until(lambda: (r := home.record()) and r.get("a2aPort") and r, 20, "the front door")
        token = (home.path / "a2a.token").read_text().strip()
        yield f"http://127.0.0.1:{record['a2aPort']}/", token, record["pid"], home
    finally:
        window.kill()
        home.cleanup()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=bodies, path=st.sampled_from(["", "agents/alpha/", "agents/nobody/"]))
def test_any_body_gets_a_json_rpc_answer_and_the_daemon_survives(endpoint, body, path):
    base, token, pid, home = endpoint
    headers = {"Authorization": f"Bearer {token}", "A2A-Version": "1.0", "Content-Type": "application/json"}
    with httpx.stream("POST", base + path, content=body.encode("utf-8", "surrogatepass"), headers=headers,
                      timeout=30) as response:
        assert response.status_code == 200
        if response.headers["content-type"].startswith("text/event-stream"):
            return   # a valid stream (its task waits for the window): its events are JSON-RPC responses
        answer = json.loads(response.read())
    assert answer.get("jsonrpc") == "2.0" and ("error" in answer) != ("result" in answer), answer
    if "error" in answer:
        assert isinstance(answer["error"]["code"], int) and "Traceback" not in json.dumps(answer)
    assert [p.pid for p in home.daemons()] == [pid]
