"""Properties of the MCP session under arbitrary input: it never raises, every line it writes
is one JSON-RPC object, and every request with a usable id gets exactly one reply with that id."""
from __future__ import annotations

import json
import pathlib
import shutil
import tempfile
import types
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memesh.mcp import jsonrpc
from memesh.mcp.events import EventBus
from memesh.mcp.session import McpSession
from memesh.store.db import Database
from memesh.store.graph import KnowledgeGraph

WAIT = 10.0
META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
methods = st.sampled_from(["initialize", "ping", "tools/list", "tools/call", "resources/list", "resources/read",
                           "resources/subscribe", "logging/setLevel", "server/discover", "nope", ""]) | st.text(max_size=12)
tool_params = st.fixed_dictionaries({
    "name": st.sampled_from(["create_entities", "read_graph", "search_nodes", "open_nodes", "delete_entities", "x"]),
    "arguments": st.dictionaries(st.sampled_from(["entities", "query", "names", "limit", "cursor", "entityNames"]),
                                 json_values, max_size=3),
})
params = st.none() | json_values | tool_params | st.builds(lambda p, m: {**p, "_meta": m}, tool_params,
                                                            st.sampled_from([META, {}, {"progressToken": 1}]))
ids = st.integers(min_value=-(2**53), max_value=2**53) | st.text(max_size=6)
requests = st.builds(lambda i, m, p: {"jsonrpc": "2.0", "id": i, "method": m, **({} if p is None else {"params": p})},
                     ids, methods, params)
notifications = st.builds(lambda m, p: {"jsonrpc": "2.0", "method": m, **({} if p is None else {"params": p})},
                          st.sampled_from(["notifications/initialized", "notifications/progress", "x"]) | st.text(max_size=8),
                          params)


@pytest.fixture(scope="module")
def services():
    home = pathlib.Path(tempfile.mkdtemp(prefix="mm", dir="/tmp"))
    database = Database(home / "memesh.db")
    events = EventBus()
    yield types.SimpleNamespace(graph=KnowledgeGraph(database, on_change=events.on_change), events=events)
    database.close()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def executor():
    with ThreadPoolExecutor(4) as pool:
        yield pool


def feed(services, executor, lines):
    """Submit ``lines`` to a fresh session, wait for it to go idle, return what it wrote."""
    session = McpSession(services, executor=executor)
    try:
        for line in lines:
            session.submit(line)
        assert session.wait_idle(WAIT)
        out = session.poll(0)
    finally:
        session.close()
    messages = []
    for line in out:
        assert "\n" not in line and "\r" not in line
        line.encode("utf-8")
        message = json.loads(line)
        assert isinstance(message, dict) and message["jsonrpc"] == "2.0"
        # The only request a server sends is roots/list, to a client that declared roots.
        assert not ("method" in message and "id" in message) or message["method"] == "roots/list", message
        messages.append(message)
    return messages


def key(value):
    return (type(value).__name__, value)


FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.lists(st.text(max_size=40) | st.binary(max_size=40), max_size=6))
def test_arbitrary_text_lines_never_raise_and_only_get_error_replies(services, executor, lines):
    for message in feed(services, executor, lines):
        assert "error" in message or "result" in message
        if "error" in message:
            assert message["error"]["code"] in jsonrpc.PROTOCOL_CODES


@FUZZ
@given(st.lists(json_values, max_size=6))
def test_arbitrary_json_values_never_raise(services, executor, values):
    feed(services, executor, [json.dumps(v) for v in values])


@FUZZ
@given(st.lists(requests | notifications, min_size=1, max_size=8))
def test_every_request_gets_exactly_one_reply_with_its_id(services, executor, messages):
    sent = Counter(key(m["id"]) for m in messages if "id" in m)
    replies = feed(services, executor, [json.dumps(m) for m in messages])
    answered = Counter(key(r["id"]) for r in replies if "method" not in r and r["id"] is not None)
    assert answered == sent
    for reply in replies:
        if "error" in reply:
            assert reply["error"]["code"] in jsonrpc.PROTOCOL_CODES


@FUZZ
@given(json_values)
def test_dumps_always_writes_one_line_of_valid_utf8_that_reads_back_equal(value):
    text = jsonrpc.dumps(jsonrpc.result(1, {"v": value}))
    assert "\n" not in text and "\r" not in text
    assert json.loads(text.encode("utf-8").decode("utf-8"))["result"]["v"] == value
