"""The MCP server as a real process on stdio, driven line by line (both protocol eras)."""
from __future__ import annotations

import io
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading
import time
import types

import pytest

from memesh.config import load_settings
from memesh.mcp import standalone
from memesh.mcp.proxy import EOF, OVERSIZE, StdinReader
from memesh.mcp.jsonrpc import MAX_LINE_BYTES
from tests.mcp.stdio_driver import CLAUDE_CODE_INITIALIZE, STATELESS_META, WAIT, StdioServer

EXIT_DEADLINE = 2.0  # seconds from stdin EOF to exit, as the checklist demands
ALICE = {"name": "Alice", "entityType": "person", "observations": ["likes tea"]}


def test_claude_codes_first_line_then_tools_list_gives_the_nine_tools(mcp_server):
    mcp_server.send_line(CLAUDE_CODE_INITIALIZE)
    result = mcp_server.reply(0)["result"]
    assert result["protocolVersion"] == "2025-11-25" and result["serverInfo"]["name"] == "memesh"
    mcp_server.notify("notifications/initialized")
    tools = mcp_server.result("tools/list")["tools"]
    assert [t["name"] for t in tools][:9] == ["create_entities", "create_relations", "add_observations", "delete_entities",
                                          "delete_observations", "delete_relations", "read_graph", "search_nodes", "open_nodes"]
    assert mcp_server.drain(0.05) == []   # the notification got no answer


def test_every_stdout_line_is_one_json_object_even_with_newlines_in_strings(mcp_server):
    mcp_server.initialize()
    entity = {"name": "multi\nline", "entityType": "note", "observations": ["first\nsecond\r\nthird\u2028"]}
    assert mcp_server.call("create_entities", {"entities": [entity]})["structuredContent"] == {"entities": [entity]}
    assert mcp_server.call("open_nodes", {"names": ["multi\nline"]})["structuredContent"]["entities"] == [entity]
    assert all(line.count(b"\n") == 1 and line.endswith(b"\n") for line in mcp_server.raw)
    assert all(isinstance(json.loads(line), dict) for line in mcp_server.raw)


def test_non_ascii_survives_a_write_and_a_read_and_a_restart(mcp_command):
    argv, env = mcp_command
    entity = {"name": "Zoë 東京 🚀", "entityType": "città", "observations": ["naïve café — ✓"]}
    first = StdioServer(argv, env)
    try:
        first.initialize()
        first.call("create_entities", {"entities": [entity]})
        assert first.call("search_nodes", {"query": "café"})["structuredContent"]["entities"] == [entity]
        assert "Zoë 東京 🚀".encode("utf-8") in b"".join(first.raw)
    finally:
        first.close_stdin()
        first.proc.wait(WAIT)
        first.kill()
    second = StdioServer(argv, env)
    try:
        second.initialize()
        assert second.call("open_nodes", {"names": ["Zoë 東京 🚀"]})["structuredContent"]["entities"] == [entity]
    finally:
        second.kill()


def test_invalid_json_then_a_valid_request_is_served(mcp_server):
    mcp_server.send_line("{this is not json")
    mcp_server.send_line(b"\xc3\x28")
    assert mcp_server.request("ping", id="after")["result"] == {}
    errors = [(m["id"], m["error"]["code"]) for m in mcp_server.received if "error" in m]
    assert errors == [(None, -32700), (None, -32700)]


def test_batches_and_non_objects_are_refused_and_the_server_carries_on(mcp_server):
    for line in ('[{"jsonrpc":"2.0","id":1,"method":"ping"}]', "7", "null"):
        mcp_server.send_line(line)
    assert mcp_server.request("ping", id="still-here")["result"] == {}
    assert [m["error"]["code"] for m in mcp_server.received if "error" in m] == [-32600] * 3


def test_a_line_over_10_mib_gets_an_error_reply_and_the_server_carries_on(mcp_server):
    mcp_server.initialize()
    head = b'{"jsonrpc":"2.0","id":77,"method":"ping","params":{"pad":"'
    mcp_server.send_line(head + b"x" * (MAX_LINE_BYTES + 1 - len(head)))
    assert mcp_server.request("ping", id="after-big")["result"] == {}
    errors = [m for m in mcp_server.received if "error" in m]
    assert len(errors) == 1 and errors[0]["id"] is None and errors[0]["error"]["code"] == -32600
    assert mcp_server.replies_to(77) == []


def test_stdin_eof_makes_the_server_exit_zero_within_two_seconds(mcp_server):
    mcp_server.initialize()
    mcp_server.call("create_entities", {"entities": [ALICE]})
    mcp_server.start("tools/call", {"name": "read_graph", "arguments": {}}, id="last")
    mcp_server.close_stdin()
    closed = time.monotonic()
    rest = mcp_server.rest_of_stdout()
    assert mcp_server.proc.wait(WAIT) == 0
    assert time.monotonic() - closed < EXIT_DEADLINE
    with pytest.raises(ProcessLookupError):
        os.killpg(mcp_server.proc.pid, 0)   # nothing of its process group is left behind
    assert all(line.endswith(b"\n") for line in rest)
    replies = [json.loads(line) for line in rest] + mcp_server.received
    assert [m for m in replies if m.get("id") == "last"]


def test_the_server_works_with_stderr_sent_to_dev_null(mcp_command):
    argv, env = mcp_command
    server = StdioServer(argv, {**env, "MEMESH_DAEMON_LOG_LEVEL": "debug"}, stderr=subprocess.DEVNULL)
    try:
        server.initialize()
        assert server.call("create_entities", {"entities": [ALICE]})["structuredContent"] == {"entities": [ALICE]}
        server.close_stdin()
        assert server.proc.wait(WAIT) == 0
    finally:
        server.kill()


def test_pipelined_requests_with_string_and_integer_ids_each_get_one_reply(mcp_server):
    mcp_server.initialize()
    ids = [10, "10", 11, "eleven", 12, "", -1]
    for request_id in ids:
        mcp_server.start("tools/call", {"name": "search_nodes", "arguments": {"query": "x"}}, id=request_id)
    mcp_server.start("ping", id="end")
    for request_id in ids + ["end"]:
        mcp_server.reply(request_id)
    mcp_server.drain(0.05)
    assert all(len(mcp_server.replies_to(i)) == 1 for i in ids)


def test_an_unknown_method_is_method_not_found(mcp_server):
    mcp_server.initialize()
    reply = mcp_server.request("sampling/createMessage", id=5)
    assert reply["id"] == 5 and reply["error"]["code"] == -32601


def test_a_tools_call_with_bad_arguments_is_a_tool_error_naming_the_field(mcp_server):
    mcp_server.initialize()
    result = mcp_server.call("create_entities", {"entities": [{"name": "a", "entityType": 3, "observations": []}]})
    assert result["isError"] is True and "entities[0].entityType" in result["content"][0]["text"]
    assert mcp_server.request("tools/call", {"name": "no_such_tool", "arguments": {}})["error"]["code"] == -32602


def test_progress_over_stdio_only_with_a_token(mcp_server):
    mcp_server.initialize()
    mcp_server.call("read_graph")
    assert mcp_server.notifications("notifications/progress") == []
    mcp_server.call("read_graph", meta={"progressToken": 99})
    values = [n["params"]["progress"] for n in mcp_server.notifications("notifications/progress")]
    assert values and values == sorted(set(values))
    mcp_server.notify("notifications/cancelled", {"requestId": "never-sent"})
    assert mcp_server.request("ping")["result"] == {}


def test_the_stateless_era_over_stdio(mcp_server):
    discover = mcp_server.request("server/discover", {"_meta": STATELESS_META})["result"]
    assert discover["resultType"] == "complete" and "2026-07-28" in discover["supportedVersions"]
    assert discover["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "memesh"
    listed = mcp_server.request("tools/list", {"_meta": STATELESS_META})["result"]
    assert len(listed["tools"]) >= 9 and listed["ttlMs"] >= 0 and listed["cacheScope"] == "public"
    called = mcp_server.request("tools/call", {"name": "create_entities", "arguments": {"entities": [ALICE]},
                                               "_meta": STATELESS_META})["result"]
    assert called["resultType"] == "complete" and called["structuredContent"] == {"entities": [ALICE]}
    assert mcp_server.request("tools/list")["error"]["code"] == -32602
    wrong = mcp_server.request("tools/list", {"_meta": {**STATELESS_META, "io.modelcontextprotocol/protocolVersion": "2030-01-01"}})
    assert wrong["error"]["code"] == -32022 and wrong["error"]["data"]["requested"] == "2030-01-01"
    assert mcp_server.request("ping", {"_meta": STATELESS_META})["error"]["code"] == -32601
    assert not [m for m in mcp_server.received if "method" in m and "id" in m]


@pytest.mark.parametrize("version", ["2025-06-18", "2024-11-05", "2099-01-01"])
def test_initialize_negotiation_over_stdio(mcp_server, version):
    expected = "2025-11-25" if version == "2099-01-01" else version
    assert mcp_server.initialize(version)["protocolVersion"] == expected


# -- the line transport (shared by proxy and standalone), in-process ---------------------------
def split(data: bytes, through_pipe: bool) -> list[bytes | None]:
    """What the stdin reader queues for ``data``: lines, None for each oversize line."""

    def drain(stream) -> list[bytes | None]:
        reader = StdinReader(stream)
        reader.start()
        reader.join(WAIT)
        assert not reader.is_alive()
        items = []
        while True:
            item = reader.lines.get_nowait()
            if item is EOF:
                return items
            items.append(None if item is OVERSIZE else item)

    if not through_pipe:
        return drain(io.BytesIO(data))
    read_end, write_end = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(write_end, data), os.close(write_end)))
    writer.start()
    try:
        with os.fdopen(read_end, "rb") as stream:
            return drain(stream)
    finally:
        writer.join(WAIT)


@pytest.mark.parametrize("through_pipe", [False, True], ids=["stream", "pipe"])
def test_stdin_is_split_into_lines_and_oversize_lines_are_skipped_whole(through_pipe):
    exact = b"a" * (MAX_LINE_BYTES - 1)
    data = b"one\n" + b"b" * (MAX_LINE_BYTES + 1) + b"\n" + exact + b"\ntwo\n" + b"c" * (MAX_LINE_BYTES + 5) + b"\nlast"
    assert split(data, through_pipe) == [b"one\n", None, exact + b"\n", b"two\n", None, b"last"]


@pytest.mark.parametrize("through_pipe", [False, True], ids=["stream", "pipe"])
def test_an_oversize_last_line_without_newline_is_skipped(through_pipe):
    assert split(b"x\n" + b"d" * (MAX_LINE_BYTES + 1), through_pipe) == [b"x\n", None]


def test_run_serves_in_memory_streams_and_returns_zero(tmp_path):
    home = tempfile.mkdtemp(prefix="mm", dir="/tmp")
    try:
        settings = load_settings({"MEMESH_HOME": home})
        stdin = io.BytesIO(b"\n".join([CLAUDE_CODE_INITIALIZE.encode(), b'{"jsonrpc":"2.0","method":"notifications/initialized"}',
                                      b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}', b"{oops"]) + b"\n")
        stdout = io.BytesIO()
        assert standalone.run(settings, stdin=stdin, stdout=stdout) == 0
        messages = [json.loads(line) for line in stdout.getvalue().splitlines()]
        replies = [m for m in messages if "method" not in m]
        assert sorted([r["id"] for r in replies], key=str) == sorted([0, 1, None], key=str)
        # Claude Code declares the roots capability, so the server asks for the roots.
        assert [m["method"] for m in messages if "method" in m] == ["roots/list"]
        assert len(next(r for r in replies if r["id"] == 1)["result"]["tools"]) >= 9
    finally:
        shutil.rmtree(home, ignore_errors=True)
