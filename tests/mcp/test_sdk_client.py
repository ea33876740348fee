"""The official MCP Python SDK as a real client of the server, in both of its connect modes.

``mode="legacy"`` does what Claude Code does (``initialize`` at 2025-11-25, then
``notifications/initialized``); ``mode="auto"`` probes ``server/discover`` and, finding a
2026-07-28 server, stays stateless. The SDK validates every result against the schema of
the negotiated revision and ``structuredContent`` against each tool's ``outputSchema``.
"""
from __future__ import annotations

import json
import warnings

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

SDK_DEADLINE = 60.0  # seconds for one whole client conversation (includes start-up)
ALICE = {"name": "Alice", "entityType": "person", "observations": ["likes tea"]}

CALLS = [
    ("create_entities", {"entities": [ALICE, {"name": "memesh", "entityType": "project", "observations": []}]}),
    ("create_relations", {"relations": [{"from": "Alice", "to": "memesh", "relationType": "works_on"}]}),
    ("add_observations", {"observations": [{"entityName": "memesh", "contents": ["one daemon per user"]}]}),
    ("read_graph", {}),
    ("search_nodes", {"query": "tea"}),
    ("open_nodes", {"names": ["Alice"]}),
    ("delete_observations", {"deletions": [{"entityName": "Alice", "observations": ["likes tea"]}]}),
    ("delete_relations", {"relations": [{"from": "Alice", "to": "memesh", "relationType": "works_on"}]}),
    ("delete_entities", {"entityNames": ["Alice"]}),
]


def params(mcp_command) -> StdioServerParameters:
    argv, env = mcp_command
    return StdioServerParameters(command=argv[0], args=argv[1:], env=env)


def run(conversation) -> None:
    async def bounded():
        with anyio.fail_after(SDK_DEADLINE):
            await conversation()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ping and logging are deprecated in the 2026 SDK API
        anyio.run(bounded)


async def call_every_tool(client: Client) -> dict[str, object]:
    tools = (await client.list_tools()).tools
    assert [t.name for t in tools][:len(CALLS)] == [name for name, _ in CALLS[:3]] + [
        "delete_entities", "delete_observations", "delete_relations", "read_graph", "search_nodes", "open_nodes"]
    results = {}
    for name, arguments in CALLS:
        result = await client.call_tool(name, arguments)
        assert not result.is_error, (name, result)
        assert json.loads(result.content[0].text) == result.structured_content
        results[name] = result.structured_content
    return results


def test_the_sdk_in_legacy_mode_connects_lists_calls_every_tool_and_pings(mcp_command):
    async def conversation():
        async with Client(params(mcp_command), mode="legacy") as client:
            assert client.protocol_version == "2025-11-25"
            assert client.server_info.name == "memesh"
            results = await call_every_tool(client)
            assert results["search_nodes"]["entities"] == [ALICE]
            assert results["delete_entities"]["success"] is True
            await client.send_ping()
            await client.set_logging_level("info")
            contents = (await client.read_resource("memesh://graph")).contents
            assert json.loads(contents[0].text)["entities"][0]["name"] == "memesh"

    run(conversation)


def test_the_sdk_in_auto_mode_stays_stateless_calls_every_tool_and_ping_is_gone(mcp_command):
    async def conversation():
        async with Client(params(mcp_command), mode="auto") as client:
            assert client.protocol_version == "2026-07-28"
            assert client.server_info.name == "memesh"
            results = await call_every_tool(client)
            assert results["open_nodes"]["entities"] == [ALICE]
            with pytest.raises(MCPError) as caught:
                await client.send_ping()
            assert caught.value.error.code == -32601
            contents = (await client.read_resource("memesh://graph")).contents
            assert json.loads(contents[0].text)["counts"]["entities"] == 1

    run(conversation)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_the_sdk_sees_bad_arguments_as_a_tool_error_and_an_unknown_tool_as_a_protocol_error(mcp_command, mode):
    async def conversation():
        async with Client(params(mcp_command), mode=mode) as client:
            await client.list_tools()
            result = await client.call_tool("open_nodes", {"names": "Alice"})
            assert result.is_error and "names: expected an array" in result.content[0].text
            with pytest.raises(MCPError) as caught:
                await client.call_tool("no_such_tool", {})
            assert caught.value.error.code == -32602

    run(conversation)


def test_the_sdk_receives_progress_for_a_call_that_asks_for_it(mcp_command):
    async def conversation():
        seen: list[float] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append(progress)

        async with Client(params(mcp_command), mode="legacy") as client:
            await client.call_tool("read_graph", {}, progress_callback=on_progress)
        assert seen and seen == sorted(set(seen))

    run(conversation)
