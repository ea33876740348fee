"""The tool registry, the nine graph tools and the schema validator, without a session."""
from __future__ import annotations

import json
import re
import types

import jsonschema
import pytest

from memesh.errors import ValidationError
from memesh.mcp import schema
from memesh.mcp.tools import (
    Tool,
    ToolContext,
    ToolRegistry,
    call_tool,
    default_registry,
    load_tools,
    read_only_tool_names,
)
from tests.store.backends import open_backend

REFERENCE = {  # the reference server's tools: argument names and required arguments
    "create_entities": ({"entities"}, {"entities"}),
    "create_relations": ({"relations"}, {"relations"}),
    "add_observations": ({"observations"}, {"observations"}),
    "delete_entities": ({"entityNames"}, {"entityNames"}),
    "delete_observations": ({"deletions"}, {"deletions"}),
    "delete_relations": ({"relations"}, {"relations"}),
    "read_graph": ({"limit", "cursor"}, set()),
    "search_nodes": ({"query", "limit", "cursor", "origin"}, {"query"}),
    "open_nodes": ({"names", "limit", "cursor"}, {"names"}),
}
READS = {"read_graph", "search_nodes", "open_nodes", "recall", "list_memories", "a2a_agents", "a2a_inbox", "a2a_get_task"}
DELETES = {"delete_entities", "delete_observations", "delete_relations", "forget", "a2a_cancel"}
NOT_IDEMPOTENT = {"a2a_send", "a2a_reply"}   # a second call sends a second task / finds the task answered


@pytest.fixture
def graph(backend, tmp_path):
    """A fresh graph on each storage backend (SQLite and PostgreSQL)."""
    storage = open_backend(backend, tmp_path)
    yield storage.graph
    storage.close()


@pytest.fixture
def ctx(graph):
    return ToolContext(services=types.SimpleNamespace(graph=graph))


def run(ctx, name, arguments):
    tool = default_registry().get(name)
    result = call_tool(tool, ctx, arguments)
    if not result.get("isError"):
        assert_well_formed(tool, result)
    return result


def assert_well_formed(tool, result):
    structured = result["structuredContent"]
    schema.validate(structured, tool.output_schema)
    jsonschema.Draft202012Validator(tool.output_schema).validate(structured)
    assert result["content"] == [{"type": "text", "text": result["content"][0]["text"]}]
    assert json.loads(result["content"][0]["text"]) == structured


def seed(ctx):
    run(ctx, "create_entities", {"entities": [
        {"name": "Alice", "entityType": "person", "observations": ["likes tea", "works remotely"]},
        {"name": "memesh", "entityType": "project", "observations": ["a shared daemon"]},
    ]})
    run(ctx, "create_relations", {"relations": [{"from": "Alice", "to": "memesh", "relationType": "works_on"}]})


def test_the_default_registry_offers_the_nine_reference_tools_in_a_stable_order():
    names = [t.name for t in default_registry().tools()]
    assert names[:len(REFERENCE)] == list(REFERENCE)  # the memory tools follow
    assert names == [t.name for t in load_tools()]


@pytest.mark.parametrize("name", list(REFERENCE))
def test_each_tool_takes_the_reference_argument_names(name):
    definition = default_registry().get(name).definition()
    properties, required = REFERENCE[name]
    assert set(definition["inputSchema"]["properties"]) == properties
    assert set(definition["inputSchema"].get("required", [])) == required


@pytest.mark.parametrize("tool", default_registry().tools(), ids=lambda t: t.name)
def test_each_definition_is_listable_and_its_schemas_are_valid_json_schema(tool):
    definition = tool.definition()
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", definition["name"])
    assert definition["description"].strip() and definition["title"].strip()
    assert definition["inputSchema"]["type"] == "object"
    assert definition["outputSchema"]["type"] == "object"
    jsonschema.Draft202012Validator.check_schema(definition["inputSchema"])
    jsonschema.Draft202012Validator.check_schema(definition["outputSchema"])
    json.dumps(definition)


@pytest.mark.parametrize("tool", default_registry().tools(), ids=lambda t: t.name)
def test_annotations_tell_the_truth(tool):
    hints = tool.definition()["annotations"]
    assert hints["openWorldHint"] is False
    assert hints["readOnlyHint"] is (tool.name in READS)
    assert hints["destructiveHint"] is (tool.name in DELETES)
    assert hints["idempotentHint"] is (tool.name not in NOT_IDEMPOTENT)


def test_read_only_tool_names_are_exactly_the_reads():
    assert read_only_tool_names() == sorted(READS)


def test_create_entities_returns_only_the_new_ones(ctx):
    seed(ctx)
    result = run(ctx, "create_entities", {"entities": [
        {"name": "Alice", "entityType": "robot", "observations": []},
        {"name": "Bob", "entityType": "person", "observations": []},
    ]})
    assert result["structuredContent"] == {"entities": [{"name": "Bob", "entityType": "person", "observations": []}]}


def test_add_observations_reports_what_was_added_per_entity(ctx):
    seed(ctx)
    result = run(ctx, "add_observations", {"observations": [{"entityName": "Alice", "contents": ["likes tea", "plays go"]}]})
    assert result["structuredContent"] == {"results": [{"entityName": "Alice", "addedObservations": ["plays go"]}]}


def test_add_observations_to_a_missing_entity_is_a_tool_error_naming_it(ctx):
    result = run(ctx, "add_observations", {"observations": [{"entityName": "Nobody", "contents": ["x"]}]})
    assert result["isError"] is True
    assert "observations[0].entityName" in result["content"][0]["text"] and "Nobody" in result["content"][0]["text"]


def test_deletions_keep_the_reference_shape_and_count(ctx):
    seed(ctx)
    result = run(ctx, "delete_observations", {"deletions": [{"entityName": "Alice", "observations": ["likes tea"]}]})
    assert result["structuredContent"] == {"success": True, "message": "Observations deleted successfully", "deleted": 1}
    assert run(ctx, "delete_relations", {"relations": [{"from": "Alice", "to": "memesh", "relationType": "works_on"}]})["structuredContent"]["deleted"] == 1
    assert run(ctx, "delete_entities", {"entityNames": ["Alice", "Ghost"]})["structuredContent"]["deleted"] == 1
    assert run(ctx, "read_graph", {})["structuredContent"]["entities"] == [
        {"name": "memesh", "entityType": "project", "observations": ["a shared daemon"]}]


def test_the_reads_return_entities_with_their_relations(ctx):
    seed(ctx)
    relation = {"from": "Alice", "to": "memesh", "relationType": "works_on"}
    whole = run(ctx, "read_graph", {})["structuredContent"]
    assert [e["name"] for e in whole["entities"]] == ["Alice", "memesh"] and whole["relations"] == [relation]
    found = run(ctx, "search_nodes", {"query": "tea"})["structuredContent"]
    assert [e["name"] for e in found["entities"]] == ["Alice"] and found["relations"] == [relation]
    opened = run(ctx, "open_nodes", {"names": ["memesh", "Ghost"]})["structuredContent"]
    assert [e["name"] for e in opened["entities"]] == ["memesh"] and opened["relations"] == [relation]


def test_a_page_that_is_not_the_last_carries_next_cursor_and_the_cursor_continues(ctx):
    run(ctx, "create_entities", {"entities": [{"name": f"e{i}", "entityType": "t", "observations": []} for i in range(5)]})
    first = run(ctx, "read_graph", {"limit": 2})["structuredContent"]
    assert len(first["entities"]) == 2 and "nextCursor" in first
    names = [e["name"] for e in first["entities"]]
    cursor = first["nextCursor"]
    while cursor:
        page = run(ctx, "read_graph", {"limit": 2, "cursor": cursor})["structuredContent"]
        names += [e["name"] for e in page["entities"]]
        cursor = page.get("nextCursor")
    assert names == [f"e{i}" for i in range(5)]


def test_a_garbage_cursor_is_a_tool_error_naming_the_cursor(ctx):
    result = run(ctx, "read_graph", {"cursor": "not-a-cursor"})
    assert result["isError"] is True and "cursor" in result["content"][0]["text"]


def test_the_default_read_of_a_big_graph_stays_under_the_output_ceiling(ctx):
    text = "observation " * 300
    for batch in range(4):
        run(ctx, "create_entities", {"entities": [
            {"name": f"n{batch}-{i}", "entityType": "bulk", "observations": [f"{j} {text}" for j in range(10)]}
            for i in range(50)]})
    for name, arguments in (("read_graph", {}), ("search_nodes", {"query": "observation"}),
                            ("open_nodes", {"names": [f"n0-{i}" for i in range(50)]})):
        result = run(ctx, name, arguments)
        assert len(result["content"][0]["text"]) < 80_000, name
        assert len(json.dumps(result["structuredContent"])) < 80_000, name
        assert "nextCursor" in result["structuredContent"], name


def test_a_write_of_megabytes_answers_with_counts_and_names_not_an_echo_of_its_input(ctx):
    from memesh.mcp.graph_tools import MAX_ECHO_CHARS

    entities = [{"name": f"big{i:03}", "entityType": "bulk", "observations": [f"{i}.{j} " + "x" * 19_000 for j in range(20)]}
                for i in range(21)]   # 8 MB of input
    result = run(ctx, "create_entities", {"entities": entities})
    structured = result["structuredContent"]
    assert len(result["content"][0]["text"]) <= MAX_ECHO_CHARS + 500
    assert structured["created"] == 21 and "note" in structured
    assert [e["name"] for e in structured["entities"]] == [f"big{i:03}" for i in range(21)]
    observations = run(ctx, "add_observations", {"observations": [
        {"entityName": f"big{i:03}", "contents": ["y" * 19_000 for _ in range(3)][:1] + [f"more {i}"]} for i in range(21)]})
    assert observations["structuredContent"]["added"] == 42
    assert len(observations["content"][0]["text"]) <= MAX_ECHO_CHARS + 500
    relations = run(ctx, "create_relations", {"relations": [
        {"from": f"big{i:03}", "to": "z" * 900 + str(j), "relationType": "r" * 900} for i in range(21) for j in range(20)]})
    assert relations["structuredContent"]["created"] == 420
    assert len(relations["content"][0]["text"]) <= MAX_ECHO_CHARS + 500


def test_a_write_of_normal_size_echoes_what_it_created_like_the_reference(ctx):
    alice = {"name": "Alice", "entityType": "person", "observations": ["likes tea"] * 1 + ["x" * 5000]}
    assert run(ctx, "create_entities", {"entities": [alice]})["structuredContent"] == {"entities": [alice]}
    link = {"from": "Alice", "to": "Bob", "relationType": "knows"}
    assert run(ctx, "create_relations", {"relations": [link]})["structuredContent"] == {"relations": [link]}


@pytest.mark.parametrize("arguments, field", [
    ({}, "entities: required field is missing"),
    ({"entities": "x"}, "entities: expected an array, got a string"),
    ({"entities": [{"name": "a", "entityType": "t", "observations": []}] * 2 + [{"name": 5, "entityType": "t", "observations": []}]},
     "entities[2].name: expected a string, got an integer"),
    ({"entities": [{"name": "a", "observations": []}]}, "entities[0].entityType: required field is missing"),
    ({"entities": [{"name": "", "entityType": "t", "observations": []}]}, "entities[0].name: must not be empty"),
    ({"entities": [{"name": "a", "entityType": "t", "observations": [1]}]}, "entities[0].observations[0]: expected a string"),
])
def test_arguments_that_break_the_schema_are_a_tool_error_naming_the_field(ctx, arguments, field):
    result = run(ctx, "create_entities", arguments)
    assert result["isError"] is True and field in result["content"][0]["text"]
    assert "structuredContent" not in result


@pytest.mark.parametrize("arguments, field", [({"limit": 0}, "limit"), ({"limit": "5"}, "limit"), ({"limit": 2000}, "limit"),
                                              ({"cursor": 5}, "cursor")])
def test_bad_paging_arguments_name_the_field(ctx, arguments, field):
    result = run(ctx, "read_graph", arguments)
    assert result["isError"] is True and result["content"][0]["text"].startswith(f"Invalid arguments for read_graph: {field}")


def test_non_ascii_text_survives_a_write_and_a_read(ctx):
    entity = {"name": "Zoë 東京 🚀", "entityType": "città", "observations": ["naïve café — ✓"]}
    run(ctx, "create_entities", {"entities": [entity]})
    assert run(ctx, "open_nodes", {"names": ["Zoë 東京 🚀"]})["structuredContent"]["entities"] == [entity]


def echo_tool(name="echo", **extra):
    return Tool(name=name, title="Echo", description="Returns its arguments.", input_schema={"type": "object"},
                handler=lambda ctx, args: {"args": args}, read_only=True, **extra)


def test_registering_or_removing_a_tool_tells_subscribers():
    registry = ToolRegistry([echo_tool()])
    seen = []
    unsubscribe = registry.subscribe(lambda topic, project: seen.append((topic, project)))
    registry.register(echo_tool("echo2"))
    assert registry.unregister("echo") is True and registry.unregister("echo") is False
    unsubscribe()
    registry.register(echo_tool("echo3"))
    assert seen == [("tools", None), ("tools", None)]
    assert [t.name for t in registry.tools()] == ["echo2", "echo3"]


def test_a_name_can_be_registered_once():
    registry = ToolRegistry([echo_tool()])
    with pytest.raises(ValueError, match="already registered"):
        registry.register(echo_tool())


def test_tools_that_need_a_missing_service_are_not_offered():
    registry = ToolRegistry([echo_tool(), echo_tool("needs_a2a", requires=("a2a",))])
    without = types.SimpleNamespace(graph=object())
    assert [t.name for t in registry.tools(without)] == ["echo"]
    assert registry.get("needs_a2a", without) is None
    assert [t.name for t in registry.tools(types.SimpleNamespace(a2a=object()))] == ["echo", "needs_a2a"]


@pytest.mark.parametrize("bad", [
    dict(name="has space"), dict(name="x" * 65), dict(description=" "),
    dict(input_schema={"type": "array"}), dict(input_schema={"type": "object", "oneOf": []}),
])
def test_a_malformed_tool_definition_is_refused_at_definition_time(bad):
    fields = dict(name="ok", title="Ok", description="Does nothing.", input_schema={"type": "object"},
                  handler=lambda ctx, args: {})
    with pytest.raises(ValueError):
        Tool(**{**fields, **bad})


SCHEMA = {"type": "object", "required": ["items"], "additionalProperties": False, "properties": {
    "items": {"type": "array", "maxItems": 2, "items": {"type": "object", "required": ["n"], "properties": {
        "n": {"type": "integer", "minimum": 1, "maximum": 9},
        "kind": {"enum": ["a", "b"]},
        "tag": {"type": "string", "maxLength": 3, "pattern": "^[a-z]+$"},
    }}},
    "flag": {"type": ["boolean", "null"]},
}}


@pytest.mark.parametrize("value, message", [
    ([], "value: expected an object, got an array"),
    ({}, "items: required field is missing"),
    ({"items": [], "extra": 1}, "extra: unknown field"),
    ({"items": [{"n": 1}] * 3}, "items: must hold at most 2 items"),
    ({"items": [{"n": 1}, {"n": 0}]}, "items[1].n: must be at least 1"),
    ({"items": [{"n": 10}]}, "items[0].n: must be at most 9"),
    ({"items": [{"n": True}]}, "items[0].n: expected an integer, got a boolean"),
    ({"items": [{"n": 2.0}]}, "items[0].n: expected an integer, got a number"),
    ({"items": [{"n": 1, "kind": "c"}]}, "items[0].kind: must be one of 'a', 'b'"),
    ({"items": [{"n": 1, "tag": "abcd"}]}, "items[0].tag: must be at most 3 characters"),
    ({"items": [{"n": 1, "tag": "AB"}]}, "items[0].tag: does not match"),
    ({"items": [{"n": 1, "tag": "a\ud800"}]}, "items[0].tag: contains a lone surrogate"),
    ({"items": [], "flag": "yes"}, "flag: expected a boolean or a null, got a string"),
])
def test_the_validator_names_the_path_of_the_first_problem(value, message):
    with pytest.raises(ValidationError) as caught:
        schema.validate(value, SCHEMA)
    assert str(caught.value).startswith(message)


def test_the_validator_accepts_what_the_schema_allows():
    schema.validate({"items": [{"n": 3, "kind": "a", "tag": "ok"}], "flag": None}, SCHEMA)
    jsonschema.validate({"items": [{"n": 3, "kind": "a", "tag": "ok"}], "flag": None}, SCHEMA)


def test_check_schema_refuses_keywords_the_validator_would_ignore():
    schema.check_schema(SCHEMA)
    with pytest.raises(ValueError, match="unsupported keyword"):
        schema.check_schema({"type": "object", "properties": {"a": {"type": "string", "format": "email"}}})
    with pytest.raises(ValueError, match="unknown type"):
        schema.check_schema({"type": "dict"})
