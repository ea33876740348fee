"""McpSession in-process, driven through submit/poll over a real SQLite graph."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import pytest

from memesh.errors import DaemonDraining
from memesh.mcp import jsonrpc
from memesh.mcp.events import EventBus
from memesh.mcp.session import McpSession
from memesh.mcp.tools import Tool, ToolRegistry, load_tools
from tests.mcp.stdio_driver import CLAUDE_CODE_INITIALIZE, STATELESS_META, WAIT, SessionClient

NINE = ["create_entities", "create_relations", "add_observations", "delete_entities", "delete_observations",
        "delete_relations", "read_graph", "search_nodes", "open_nodes"]
ALICE = {"name": "Alice", "entityType": "person", "observations": ["likes tea"]}


class Gate:
    """A tool that blocks until released (bounded), reporting progress and keeping its context."""

    def __init__(self, name: str = "gate", read_only: bool = True) -> None:
        self.started, self.release, self.finished = threading.Event(), threading.Event(), threading.Event()
        self.ctx = None
        self.tool = Tool(name=name, title="Gate", description="Waits for the test.", input_schema={"type": "object"},
                         handler=self._run, read_only=read_only)

    def _run(self, ctx, args):
        self.ctx = ctx
        ctx.progress(0.5, 1, "halfway")
        self.started.set()
        assert self.release.wait(WAIT)
        self.finished.set()
        return {"ok": True}


class Tracker:
    def __init__(self) -> None:
        self.begun = self.ended = 0
        self.draining = False
        self.pending_at_end: list[int] = []
        self.session = None

    def begin(self) -> None:
        if self.draining:
            raise DaemonDraining("draining: reconnect and resend")
        self.begun += 1

    def end(self) -> None:
        self.ended += 1
        self.pending_at_end.append(self.session.pending())


def broken(ctx, args):
    raise RuntimeError("bug")


def unserializable(ctx, args):
    return {"value": float("nan")}


@pytest.fixture
def gate():
    gate = Gate()
    yield gate
    gate.release.set()


@pytest.fixture
def make_client(services, gate):
    """Build extra sessions (same services) with the gate and a buggy tool, a tracker, options."""
    made = []

    def make(**options):
        tracker = Tracker()
        registry = options.pop("registry", None) or ToolRegistry([*load_tools(), gate.tool, Tool(
            name="broken", title="Broken", description="Raises.", input_schema={"type": "object"}, handler=broken), Tool(
            name="nan", title="NaN", description="Returns what JSON cannot hold.", input_schema={"type": "object"},
            handler=unserializable)])
        session = McpSession(options.pop("services", services), tracker=tracker, registry=registry, **options)
        tracker.session = session
        made.append(session)
        client = SessionClient(session)
        client.tracker = tracker
        return client

    yield make
    for session in made:
        session.close()


def error_code(reply):
    assert "error" in reply, reply
    return reply["error"]["code"]


# -- handshake era ------------------------------------------------------------------------
def test_claude_codes_first_line_gets_our_capabilities_and_identity(client):
    client.send_line(CLAUDE_CODE_INITIALIZE)
    reply = client.reply(0)
    result = reply["result"]
    assert result["protocolVersion"] == "2025-11-25"
    assert "tools" in result["capabilities"] and result["capabilities"]["tools"]["listChanged"] is True
    assert result["serverInfo"]["name"] and result["serverInfo"]["version"]
    assert "resultType" not in result


@pytest.mark.parametrize("version", ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"])
def test_initialize_echoes_a_handshake_version_we_know(client, version):
    assert client.initialize(version)["protocolVersion"] == version


@pytest.mark.parametrize("version", ["2099-01-01", "2026-07-28", "garbage"])
def test_initialize_at_an_unknown_version_is_answered_with_our_latest(client, version):
    assert client.initialize(version)["protocolVersion"] == "2025-11-25"


def test_initialize_without_a_version_is_invalid_params(client):
    assert error_code(client.request("initialize", {"capabilities": {}})) == -32602


def test_notifications_are_never_answered(client):
    client.initialize()
    client.notify("notifications/initialized")
    client.notify("notifications/unknown", {"x": 1})
    client.notify("notifications/cancelled", {"requestId": 12345})
    client.notify("notifications/cancelled", {"requestId": None})
    client.notify("notifications/progress", {"progressToken": 1, "progress": 1})
    client.send_line('{"jsonrpc":"2.0","method":"notifications/cancelled","params":[1,2]}')
    assert client.drain(0.05) == []


@pytest.mark.parametrize("request_id", [41, "ping-41"])
def test_ping_returns_an_empty_result_with_the_same_id_even_before_initialize(client, request_id):
    assert client.request("ping", id=request_id) == {"jsonrpc": "2.0", "id": request_id, "result": {}}


def test_pipelined_requests_each_get_exactly_one_reply(client):
    client.initialize()
    ids = [101, "101", 102, "two", 103, "", 0, -5]
    for i, request_id in enumerate(ids):
        method = ("ping", "tools/list", "resources/list", "tools/call")[i % 4]
        client.start(method, {"name": "read_graph", "arguments": {}} if method == "tools/call" else None, id=request_id)
    for request_id in ids:
        client.reply(request_id)
    client.session.wait_idle(WAIT)
    client.drain(0)
    assert all(len(client.replies_to(i)) == 1 for i in ids)


def test_a_reused_id_of_a_call_in_flight_is_refused_and_the_call_still_answered(make_client, gate):
    client = make_client()
    client.initialize()
    client.start("tools/call", {"name": "gate", "arguments": {}}, id=5)
    assert gate.started.wait(WAIT)
    client.start("ping", id=5)
    assert error_code(client.reply(5)) == -32600
    gate.release.set()
    assert client.session.wait_idle(WAIT)
    client.drain(0)
    assert [("error" in r, "result" in r) for r in client.replies_to(5)] == [(True, False), (False, True)]


def test_a_pipelined_write_is_seen_by_the_read_after_it(client):
    client.initialize()
    for n in range(5):
        name = f"entity{n}"
        client.start("tools/call", {"name": "create_entities", "arguments": {"entities": [{**ALICE, "name": name}]}})
        read = client.start("tools/call", {"name": "open_nodes", "arguments": {"names": [name]}})
        assert client.reply(read)["result"]["structuredContent"]["entities"][0]["name"] == name


# -- stateless era (2026-07-28) ----------------------------------------------------------------
def stateless(client, method, params=None, meta=None, id=None):
    return client.request(method, {**(params or {}), "_meta": {**STATELESS_META, **(meta or {})}}, id=id)


def test_server_discover_describes_versions_capabilities_and_identity(client):
    result = stateless(client, "server/discover")["result"]
    assert result["resultType"] == "complete"
    assert "2026-07-28" in result["supportedVersions"]
    assert "tools" in result["capabilities"]
    assert result["ttlMs"] >= 0 and result["cacheScope"] in ("public", "private")
    info = result["_meta"]["io.modelcontextprotocol/serverInfo"]
    assert info["name"] == "memesh" and info["version"]


@pytest.mark.parametrize("params", [
    None, {}, {"_meta": {}}, {"_meta": {"progressToken": 1}},
    {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}},
    {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": []}},
    {"_meta": {"io.modelcontextprotocol/protocolVersion": 20260728, "io.modelcontextprotocol/clientCapabilities": {}}},
])
def test_a_request_without_the_required_meta_is_invalid_params(client, params):
    for method in ("tools/list", "server/discover", "tools/call", "resources/read"):
        reply = client.request(method, params)
        assert error_code(reply) == -32602, (method, reply)


def test_an_unknown_protocol_version_is_minus_32022_with_what_we_support(client):
    reply = stateless(client, "tools/list", meta={"io.modelcontextprotocol/protocolVersion": "2099-01-01"})
    assert error_code(reply) == -32022
    assert "2026-07-28" in reply["error"]["data"]["supported"]
    assert reply["error"]["data"]["requested"] == "2099-01-01"


def test_every_stateless_result_has_a_result_type_and_list_results_cache_hints(client):
    cacheable = ["server/discover", "tools/list", "resources/list", "resources/templates/list", "resources/read"]
    for method in cacheable:
        result = stateless(client, method, {"uri": "memesh://graph"} if method == "resources/read" else None)["result"]
        assert result["resultType"] == "complete", method
        assert isinstance(result["ttlMs"], int) and result["ttlMs"] >= 0, method
        assert result["cacheScope"] in ("public", "private"), method
        assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "memesh"
    called = stateless(client, "tools/call", {"name": "create_entities", "arguments": {"entities": [ALICE]}})["result"]
    assert called["resultType"] == "complete" and called["structuredContent"] == {"entities": [ALICE]}
    failed = stateless(client, "tools/call", {"name": "create_entities", "arguments": {}})["result"]
    assert failed["resultType"] == "complete" and failed["isError"] is True


@pytest.mark.parametrize("method, params", [("ping", {}), ("logging/setLevel", {"level": "info"}),
                                            ("resources/subscribe", {"uri": "memesh://graph"}),
                                            ("resources/unsubscribe", {"uri": "memesh://graph"})])
def test_methods_removed_in_the_stateless_era_are_method_not_found(client, method, params):
    assert error_code(stateless(client, method, params)) == -32601


def test_the_stateless_era_never_sends_a_request_and_logs_only_when_asked(client):
    stateless(client, "tools/call", {"name": "create_entities", "arguments": {"entities": [ALICE]}})
    assert client.notifications("notifications/message") == []
    stateless(client, "tools/call", {"name": "read_graph", "arguments": {}}, meta={"io.modelcontextprotocol/logLevel": "debug"})
    assert [m["params"]["level"] for m in client.notifications("notifications/message")] == ["debug"]
    assert error_code(stateless(client, "tools/list", meta={"io.modelcontextprotocol/logLevel": "chatty"})) == -32602
    assert not [m for m in client.received if "method" in m and "id" in m]


def test_an_unknown_resource_is_invalid_params_in_the_stateless_era(client):
    assert error_code(stateless(client, "resources/read", {"uri": "memesh://nothing"})) == -32602


def test_discover_followed_by_initialize_still_gives_a_working_session(client):
    assert stateless(client, "server/discover")["result"]["supportedVersions"]
    client.initialize()
    assert [t["name"] for t in client.result("tools/list")["tools"]] == NINE
    assert client.call("create_entities", {"entities": [ALICE]})["structuredContent"] == {"entities": [ALICE]}
    assert client.result("ping") == {}


def test_a_handshake_session_also_serves_stateless_requests(client):
    client.initialize()
    assert stateless(client, "tools/list")["result"]["resultType"] == "complete"
    assert "resultType" not in client.result("tools/list")


# -- errors -------------------------------------------------------------------------------
def test_an_unknown_method_is_method_not_found_with_the_request_id(client):
    client.initialize()
    reply = client.request("prompts/list", id="x1")
    assert reply["id"] == "x1" and error_code(reply) == -32601


def test_invalid_json_gets_a_parse_error_and_the_next_line_is_served(client):
    client.send_line("{not json")
    client.send_line(b"\xff\xfe")
    assert client.request("ping")["result"] == {}
    errors = [m for m in client.received if "error" in m]
    assert [(e["id"], e["error"]["code"]) for e in errors] == [(None, -32700), (None, -32700)]


@pytest.mark.parametrize("line", ['[{"jsonrpc":"2.0","id":1,"method":"ping"}]', "[]", "42", '"x"', "null"])
def test_a_batch_or_a_non_object_is_an_invalid_request_and_never_a_crash(client, line):
    client.send_line(line)
    assert client.request("ping")["result"] == {}
    assert [(m["id"], m["error"]["code"]) for m in client.received if "error" in m] == [(None, -32600)]


def test_positional_params_are_invalid_params(client):
    assert error_code(client.request("ping", [1, 2])) == -32602


def test_a_handler_bug_is_an_internal_error_and_the_session_keeps_working(make_client):
    client = make_client()
    client.initialize()
    reply = client.request("tools/call", {"name": "broken", "arguments": {}})
    assert error_code(reply) == -32603 and "RuntimeError" in reply["error"]["message"]
    assert error_code(client.request("tools/call", {"name": "nan", "arguments": {}})) == -32603
    assert client.request("ping")["result"] == {}
    assert client.tracker.begun == client.tracker.ended


def test_every_error_code_sent_is_a_protocol_code(client):
    client.send_line("{")
    client.send_line("[]")
    client.request("tools/list")
    client.request("nope")
    client.request("tools/list", {"_meta": {**STATELESS_META, "io.modelcontextprotocol/protocolVersion": "1999-01-01"}})
    client.initialize()
    client.request("tools/call", {"name": "nope"})
    client.request("tools/list", {"cursor": "zzz"})
    client.request("resources/read", {"uri": "memesh://nope"})
    client.request("logging/setLevel", {"level": "loud"})
    codes = {m["error"]["code"] for m in client.received if "error" in m}
    assert codes <= jsonrpc.PROTOCOL_CODES and len(codes) >= 6


# -- tools ----------------------------------------------------------------------------------
def test_tools_list_pages_in_a_stable_order_and_a_missing_cursor_ends_it(make_client):
    client = make_client(registry=ToolRegistry(load_tools()), tools_page_size=2)
    client.initialize()
    names, cursor, pages = [], None, 0
    while True:
        result = client.result("tools/list", {"cursor": cursor} if cursor else {})
        assert len(result["tools"]) <= 2
        names += [t["name"] for t in result["tools"]]
        pages += 1
        cursor = result.get("nextCursor")
        if cursor is None:
            break
    assert names == NINE and pages == 5
    assert [t["name"] for t in client.result("tools/list", {})["tools"]] == NINE[:2]


@pytest.mark.parametrize("cursor", ["garbage", "", 17, "dG9vbHM6OTk5", "cmVzb3VyY2VzOjI"])
def test_a_garbage_tools_cursor_is_invalid_params(make_client, cursor):
    client = make_client(registry=ToolRegistry(load_tools()), tools_page_size=2)
    client.initialize()
    assert error_code(client.request("tools/list", {"cursor": cursor})) == -32602


def test_tools_list_describes_every_tool_fully(client):
    client.initialize()
    tools = client.result("tools/list")["tools"]
    assert [t["name"] for t in tools] == NINE
    for tool in tools:
        assert tool["description"] and tool["inputSchema"]["type"] == "object" and tool["outputSchema"]["type"] == "object"
        assert tool["annotations"]["openWorldHint"] is False


def test_an_unknown_tool_is_always_invalid_params_naming_it(client):
    client.initialize()
    for params in ({"name": "nope"}, {"name": "nope", "_meta": STATELESS_META}):
        reply = client.request("tools/call", params)
        assert error_code(reply) == -32602 and reply["error"]["message"].startswith("Unknown tool: 'nope'")


@pytest.mark.parametrize("params", [{}, {"name": 5}, {"name": "read_graph", "arguments": [1]}])
def test_a_malformed_tools_call_is_invalid_params(client, params):
    client.initialize()
    assert error_code(client.request("tools/call", params)) == -32602


def test_schema_violations_are_a_tool_error_whose_text_names_the_field(client):
    client.initialize()
    result = client.call("create_relations", {"relations": [{"from": "a", "to": "b"}]})
    assert result["isError"] is True and "relations[0].relationType" in result["content"][0]["text"]


def test_structured_content_matches_the_output_schema_and_the_text(client):
    client.initialize()
    schemas = {t["name"]: t["outputSchema"] for t in client.result("tools/list")["tools"]}
    calls = [("create_entities", {"entities": [ALICE]}),
             ("create_relations", {"relations": [{"from": "Alice", "to": "Bob", "relationType": "knows"}]}),
             ("add_observations", {"observations": [{"entityName": "Alice", "contents": ["x"]}]}),
             ("read_graph", {}), ("search_nodes", {"query": "tea"}), ("open_nodes", {"names": ["Alice"]}),
             ("delete_observations", {"deletions": [{"entityName": "Alice", "observations": ["x"]}]}),
             ("delete_relations", {"relations": [{"from": "Alice", "to": "Bob", "relationType": "knows"}]}),
             ("delete_entities", {"entityNames": ["Alice"]})]
    for name, arguments in calls:
        result = client.call(name, arguments)
        assert not result.get("isError"), result
        jsonschema.validate(result["structuredContent"], schemas[name])
        assert json.loads(result["content"][0]["text"]) == result["structuredContent"]


def test_a_slow_call_does_not_block_ping_and_a_cancel_suppresses_its_reply(make_client, gate):
    client = make_client()
    client.initialize()
    call = client.start("tools/call", {"name": "gate", "arguments": {}})
    assert gate.started.wait(WAIT)
    assert client.request("ping")["result"] == {}
    client.notify("notifications/cancelled", {"requestId": call, "reason": "user pressed Esc"})
    assert gate.ctx.cancelled.is_set()
    gate.release.set()
    assert gate.finished.wait(WAIT) and client.session.wait_idle(WAIT)
    client.drain(0)
    assert client.replies_to(call) == []
    assert client.tracker.begun == client.tracker.ended == 3


def test_a_call_cancelled_before_it_starts_never_runs_and_is_counted_out(make_client, gate):
    executor = ThreadPoolExecutor(1)
    try:
        client = make_client(executor=executor)
        client.initialize()
        client.start("tools/call", {"name": "gate", "arguments": {}})
        assert gate.started.wait(WAIT)
        queued = client.start("tools/call", {"name": "create_entities", "arguments": {"entities": [ALICE]}})
        client.notify("notifications/cancelled", {"requestId": queued})
        gate.release.set()
        assert client.session.wait_idle(WAIT)
        client.drain(0)
        assert client.replies_to(queued) == []
        assert client.call("read_graph")["structuredContent"]["entities"] == []
        assert client.tracker.begun == client.tracker.ended
    finally:
        executor.shutdown()


def test_progress_is_sent_only_with_a_token_strictly_increasing_and_never_after_the_reply(make_client, gate):
    client = make_client()
    client.initialize()
    gate.release.set()
    client.call("gate")
    assert client.notifications("notifications/progress") == []
    call = client.start("tools/call", {"name": "gate", "arguments": {}, "_meta": {"progressToken": "tok"}})
    client.reply(call)
    progress = client.notifications("notifications/progress")
    assert {p["params"]["progressToken"] for p in progress} == {"tok"}
    values = [p["params"]["progress"] for p in progress]
    assert values == sorted(set(values)) and len(values) == 3
    positions = [client.received.index(p) for p in progress]
    assert max(positions) < client.received.index(client.replies_to(call)[0])
    gate.ctx.progress(2.0, 2, "too late")
    assert client.drain(0.05) == []


def test_list_changed_is_sent_only_after_initialized(make_client):
    registry = ToolRegistry(load_tools())
    client = make_client(registry=registry)
    extra = Gate("extra")
    registry.register(extra.tool)
    client.result("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}})
    registry.unregister("extra")
    assert client.drain(0.05) == []
    client.notify("notifications/initialized")
    registry.register(extra.tool)
    assert len(client.wait_notification("notifications/tools/list_changed")) == 1
    assert "extra" in [t["name"] for t in client.result("tools/list")["tools"]]


def test_logging_set_level_filters_messages_and_refuses_a_bad_level(client):
    client.initialize()
    client.call("create_entities", {"entities": [ALICE]})
    assert client.notifications("notifications/message") == []
    assert error_code(client.request("logging/setLevel", {"level": "verbose"})) == -32602
    assert client.result("logging/setLevel", {"level": "info"}) == {}
    client.call("create_entities", {"entities": [{**ALICE, "name": "Bob"}]})
    client.call("add_observations", {"observations": [{"entityName": "Nobody", "contents": ["x"]}]})
    levels = [m["params"]["level"] for m in client.notifications("notifications/message")]
    assert levels == ["info", "warning"]
    assert client.result("logging/setLevel", {"level": "error"}) == {}
    client.call("add_observations", {"observations": [{"entityName": "Nobody", "contents": ["x"]}]})
    assert len(client.notifications("notifications/message")) == 2


# -- resources -----------------------------------------------------------------------------
def test_the_graph_resource_is_listed_and_read_as_json(client):
    client.initialize()
    client.call("create_entities", {"entities": [ALICE]})
    listed = client.result("resources/list")["resources"]
    assert [(r["uri"], r["mimeType"]) for r in listed] == [("memesh://graph", "application/json")]
    contents = client.result("resources/read", {"uri": "memesh://graph"})["contents"]
    document = json.loads(contents[0]["text"])
    assert document["counts"]["entities"] == 1 and document["entities"] == [ALICE]
    assert client.result("resources/templates/list") == {"resourceTemplates": []}


def test_an_unknown_resource_is_minus_32002_in_the_handshake_era(client):
    client.initialize()
    for method in ("resources/read", "resources/subscribe"):
        reply = client.request(method, {"uri": "memesh://nothing"})
        assert error_code(reply) == -32002 and reply["error"]["data"] == {"uri": "memesh://nothing"}


def test_subscribers_hear_of_graph_changes_from_any_session_until_they_unsubscribe(make_client):
    watcher, writer = make_client(), make_client()
    watcher.initialize()
    writer.initialize()
    assert watcher.result("resources/subscribe", {"uri": "memesh://graph"}) == {}
    writer.call("create_entities", {"entities": [ALICE]})
    assert watcher.wait_notification("notifications/resources/updated")[0]["params"] == {"uri": "memesh://graph"}
    assert writer.notifications("notifications/resources/updated") == []
    writer.call("read_graph")
    assert watcher.result("resources/unsubscribe", {"uri": "memesh://graph"}) == {}
    writer.call("delete_entities", {"entityNames": ["Alice"]})
    assert len(watcher.notifications("notifications/resources/updated")) == 1


# -- the host's contract ---------------------------------------------------------------------
def test_the_tracker_counts_each_request_out_once_after_its_reply_is_queued(make_client):
    client = make_client()
    client.request("ping")
    client.request("nope")
    client.send_line("{")
    client.notify("notifications/initialized")
    assert client.tracker.begun == client.tracker.ended == 2
    assert all(n >= 1 for n in client.tracker.pending_at_end)


def test_while_draining_submit_raises_before_doing_anything(make_client):
    client = make_client()
    client.tracker.draining = True
    with pytest.raises(DaemonDraining):
        client.send_line('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"create_entities","arguments":{"entities":[]}}}')
    client.notify("notifications/cancelled", {"requestId": 1})
    assert client.session.pending() == 0 and client.session.in_flight() == 0 and client.tracker.ended == 0


def test_close_cancels_work_unsubscribes_and_stops_polling(make_client, gate):
    bus = EventBus()
    client = make_client(services=type("S", (), {"graph": None, "events": bus})())
    before = bus.subscriber_count()
    call = client.start("tools/call", {"name": "gate", "arguments": {}, "_meta": STATELESS_META})
    assert gate.started.wait(WAIT)
    client.session.close()
    assert gate.ctx.cancelled.is_set() and bus.subscriber_count() == before - 1
    started = time.monotonic()
    client.session.poll(WAIT)
    assert time.monotonic() - started < WAIT / 2
    client.send_line('{"jsonrpc":"2.0","id":9,"method":"ping"}')
    gate.release.set()
    assert client.session.wait_idle(WAIT)
    client.drain(0)
    assert client.replies_to(call) == [] and client.replies_to(9) == []


# -- edges clients notice ---------------------------------------------------------------------
class RaisesUnreplyable:
    """A tool whose failure cannot be put into a reply as given (its error data is not JSON)."""

    def __init__(self) -> None:
        self.tool = Tool(name="unreplyable", title="Unreplyable", description="Fails oddly.",
                         input_schema={"type": "object"}, handler=self._run)

    def _run(self, ctx, args):
        raise jsonrpc.RpcError(-32603, "odd", {"not json": object()})


def test_a_failure_while_building_an_error_reply_still_answers_and_counts_the_request_out(make_client):
    odd = RaisesUnreplyable()
    client = make_client(registry=ToolRegistry([*load_tools(), odd.tool]))
    client.initialize()
    reply = client.request("tools/call", {"name": "unreplyable", "arguments": {}})
    assert error_code(reply) == -32603
    assert client.session.wait_idle(WAIT)
    assert client.tracker.begun == client.tracker.ended == 2


@pytest.mark.parametrize("method", ["resources/list", "resources/templates/list", "tools/list"])
@pytest.mark.parametrize("cursor", ["garbage", "", 7, "cmVzb3VyY2VzOjk5", "x" * 100])
def test_every_list_refuses_a_cursor_it_did_not_issue_with_invalid_params(client, method, cursor):
    client.initialize()
    reply = client.request(method, {"cursor": cursor})
    assert error_code(reply) == -32602, reply


@pytest.mark.parametrize("method,params", [
    ("tools/list", None), ("tools/call", {"name": "read_graph", "arguments": {}}), ("resources/list", None),
    ("resources/templates/list", None), ("resources/read", {"uri": "memesh://graph"}),
    ("logging/setLevel", {"level": "debug"}), ("resources/subscribe", {"uri": "memesh://graph"}),
    ("resources/unsubscribe", {"uri": "memesh://graph"}),
])
def test_before_initialize_every_request_but_ping_is_invalid_params_and_changes_nothing(client, method, params):
    reply = client.request(method, params)
    assert error_code(reply) == -32602, reply
    assert "initialize" in reply["error"]["message"]
    assert client.session.log_level is None and client.session.subscriptions == set()
    assert client.request("ping")["result"] == {}


def test_a_second_initialize_is_refused_and_keeps_the_negotiated_version(client):
    assert client.initialize("2025-03-26")["protocolVersion"] == "2025-03-26"
    reply = client.request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                          "clientInfo": {"name": "again", "version": "1"}})
    assert error_code(reply) == -32600
    assert "already initialized" in reply["error"]["message"]
    assert client.session.version == "2025-03-26"
    assert client.request("ping")["result"] == {}


@pytest.mark.parametrize("version", ["2025-11-25", "2024-11-05", "2099-01-01"])
def test_a_version_refused_in_meta_is_not_listed_as_supported_there(client, version):
    reply = stateless(client, "tools/list", meta={"io.modelcontextprotocol/protocolVersion": version})
    assert error_code(reply) == -32022
    assert version not in reply["error"]["data"]["supported"]
    assert reply["error"]["data"]["supported"] == ["2026-07-28"]
    for offered in reply["error"]["data"]["supported"]:   # everything offered is accepted
        accepted = stateless(client, "tools/list", meta={"io.modelcontextprotocol/protocolVersion": offered})
        assert "result" in accepted, accepted


def test_a_window_replayed_into_a_new_session_never_sees_a_request_id_twice(make_client):
    ids = []
    for _ in range(2):   # the second session is the window after a daemon restart
        client = make_client()
        client.send_line(CLAUDE_CODE_INITIALIZE)
        client.reply(0)
        client.notify("notifications/initialized")
        client.notify("notifications/roots/list_changed")
        asked = client.wait_notification("roots/list", count=2)
        ids += [request["id"] for request in asked]
    assert len(ids) == 4 and len(set(ids)) == 4, ids


class SlowWrite:
    """A write tool that blocks until released; counts how many calls are inside at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)
        self.tool = Tool(name="slow_write", title="Slow write", description="Blocks.",
                         input_schema={"type": "object"}, handler=self._run)

    def _run(self, ctx, args):
        self.entered.release()
        assert self.release.wait(WAIT)
        return {"ok": True}


def test_one_windows_queue_of_writes_never_holds_the_workers_another_window_needs(make_client):
    executor = ThreadPoolExecutor(2, thread_name_prefix="shared")   # the daemon shares one pool
    slow = SlowWrite()
    try:
        busy = make_client(executor=executor, registry=ToolRegistry([*load_tools(), slow.tool]))
        other = make_client(executor=executor)
        busy.initialize()
        other.initialize()
        flood = [busy.start("tools/call", {"name": "slow_write", "arguments": {}}) for _ in range(20)]
        assert slow.entered.acquire(timeout=WAIT)
        # The busy window's first write holds one worker; the 19 queued behind it hold none.
        assert other.request("ping")["result"] == {}
        assert other.call("create_entities", {"entities": [ALICE]})["structuredContent"]["entities"] == [ALICE]
        assert other.call("open_nodes", {"names": ["Alice"]})["structuredContent"]["entities"] == [ALICE]
        assert not slow.entered.acquire(timeout=0.05)   # writes of one window still run one at a time
        slow.release.set()
        for request_id in flood:
            assert busy.reply(request_id)["result"]["structuredContent"] == {"ok": True}
        assert busy.session.wait_idle(WAIT) and busy.tracker.begun == busy.tracker.ended
    finally:
        slow.release.set()
        executor.shutdown()


def test_closing_a_session_counts_out_the_calls_still_waiting_their_turn(make_client):
    slow = SlowWrite()
    client = make_client(registry=ToolRegistry([*load_tools(), slow.tool]))
    try:
        client.initialize()
        for _ in range(5):
            client.start("tools/call", {"name": "slow_write", "arguments": {}})
        assert slow.entered.acquire(timeout=WAIT)
        client.session.close()
        slow.release.set()
        assert client.session.wait_idle(WAIT)
        assert client.tracker.begun == client.tracker.ended == 6
        assert not slow.entered.acquire(timeout=0.05)   # the held writes never ran
    finally:
        slow.release.set()
