"""The memory tools and the recent-memory resource, in-process through McpSession.

Each "window" is a session with its own context (cwd, maybe roots) over one set of
services, as in the daemon; the project directories are real temporary directories
with a ``.git`` inside.
"""
from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import types

import jsonschema
import pytest

from memesh.mcp.events import EventBus
from memesh.mcp.memory_tools import RECENT_URI
from memesh.mcp.session import McpSession
from memesh.mcp.tools import default_registry
from memesh.store.db import Database
from memesh.store.graph import KnowledgeGraph
from tests.mcp.stdio_driver import STATELESS_META, SessionClient
from tests.store.backends import open_backend

MEMORY_TOOLS = ["remember", "recall", "forget", "list_memories"]


@pytest.fixture
def projects(tmp_path) -> types.SimpleNamespace:
    alpha, beta = tmp_path / "alpha", tmp_path / "beta"
    for repo in (alpha, beta):
        (repo / ".git").mkdir(parents=True)
        (repo / "src").mkdir()
    return types.SimpleNamespace(alpha=str(alpha), beta=str(beta), root=tmp_path)


@pytest.fixture
def services(backend, tmp_path):
    """The services of a window, on each storage backend (SQLite and PostgreSQL)."""
    events = EventBus()   # the stores announce their writes on it, as in the daemon
    storage = open_backend(backend, tmp_path, on_change=events.on_change)
    try:
        yield types.SimpleNamespace(graph=storage.graph, memory=storage.memory, events=events)
    finally:
        storage.close()


@pytest.fixture
def window(services):
    """Open a window (an initialised session) whose context is the keyword arguments."""
    sessions: list[McpSession] = []

    def open_(initialize: bool = True, **context) -> SessionClient:
        session = McpSession(services, context={"pid": 1, **context})
        sessions.append(session)
        client = SessionClient(session)
        if initialize:
            client.initialize()
        return client

    try:
        yield open_
    finally:
        for session in sessions:
            session.close()


def structured(client: SessionClient, name: str, arguments: dict) -> dict:
    result = client.call(name, arguments)
    assert not result.get("isError"), result
    tool = default_registry().get(name)
    jsonschema.Draft202012Validator(tool.output_schema).validate(result["structuredContent"])
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]
    return result["structuredContent"]


def recalled(client: SessionClient, query: str, **arguments) -> list[str]:
    return [m["content"] for m in structured(client, "recall", {"query": query, **arguments})["memories"]]


def test_the_memory_tools_are_listed_with_truthful_annotations(window):
    tools = {t["name"]: t for t in window().result("tools/list")["tools"]}
    assert all(name in tools for name in MEMORY_TOOLS)
    hints = {name: tools[name]["annotations"] for name in MEMORY_TOOLS}
    assert all(h["openWorldHint"] is False for h in hints.values())
    assert [name for name, h in hints.items() if h["readOnlyHint"]] == ["recall", "list_memories"]
    assert [name for name, h in hints.items() if h["destructiveHint"]] == ["forget"]
    assert all("outputSchema" in tools[name] for name in MEMORY_TOOLS)


def test_a_memory_belongs_to_the_work_tree_of_the_window_that_made_it(window, projects):
    alpha = window(cwd=projects.alpha + "/src")
    memory = structured(alpha, "remember", {"content": "The parser is hand-written", "tags": ["Parser"],
                                            "kind": "decision", "importance": 0.7})
    assert memory["project"] == projects.alpha and memory["created"] is True
    assert memory["tags"] == ["parser"] and memory["kind"] == "decision" and memory["importance"] == 0.7
    again = structured(alpha, "remember", {"content": "The parser is hand-written"})
    assert again["created"] is False and again["id"] == memory["id"]


def test_recall_in_another_project_finds_it_only_when_asked_for_all_projects(window, projects):
    alpha, beta = window(cwd=projects.alpha), window(cwd=projects.beta)
    structured(alpha, "remember", {"content": "Release builds need the signing key"})
    assert recalled(alpha, "signing key") == ["Release builds need the signing key"]
    assert recalled(beta, "signing key") == []
    everywhere = structured(beta, "recall", {"query": "signing key", "all_projects": True})
    assert everywhere["project"] == projects.beta and everywhere["allProjects"] is True
    assert [(m["content"], m["project"]) for m in everywhere["memories"]] == [
        ("Release builds need the signing key", projects.alpha)]


def test_a_project_argument_overrides_the_windows_project(window, projects):
    beta = window(cwd=projects.beta)
    made = structured(beta, "remember", {"content": "alpha uses tabs", "project": "../alpha/src"})
    assert made["project"] == projects.alpha
    assert recalled(beta, "tabs") == []
    assert recalled(beta, "tabs", project=projects.alpha) == ["alpha uses tabs"]
    assert structured(beta, "remember", {"content": "no project at all", "project": ""})["project"] == ""


def test_the_first_file_root_the_client_declared_picks_the_project(window, projects):
    rooted = window(cwd=str(projects.root), roots=[{"uri": f"file://{projects.beta}/src", "name": "beta"}])
    assert structured(rooted, "remember", {"content": "rooted"})["project"] == projects.beta


def test_a_window_without_a_working_directory_uses_the_no_project_scope(window):
    assert structured(window(), "remember", {"content": "from nowhere"})["project"] == ""


def test_forget_and_list_memories_page_and_delete_by_id(window, projects):
    alpha = window(cwd=projects.alpha)
    ids = [structured(alpha, "remember", {"content": f"note number {n}", "tags": ["n"]})["id"] for n in range(5)]
    seen, cursor = [], None
    while True:
        page = structured(alpha, "list_memories", {"limit": 2, **({"cursor": cursor} if cursor else {})})
        seen += [m["id"] for m in page["memories"]]
        cursor = page.get("nextCursor")
        if not cursor:
            break
    assert seen == ids[::-1]
    assert structured(alpha, "forget", {"ids": [ids[0], ids[1], 10**9]}) == {"deleted": 2}
    assert structured(alpha, "list_memories", {"tags": ["n"]})["memories"][-1]["id"] == ids[2]
    assert structured(window(cwd=projects.beta), "list_memories", {})["memories"] == []


@pytest.mark.parametrize("name, arguments, field", [
    ("remember", {"content": "x", "importance": 2}, "importance"),
    ("remember", {"content": ""}, "content"),
    ("remember", {"tags": ["a"]}, "content"),
    ("recall", {"query": "x", "limit": 0}, "limit"),
    ("recall", {"query": "x", "all_projects": "yes"}, "all_projects"),
    ("forget", {"ids": ["1"]}, "ids[0]"),
    ("list_memories", {"cursor": "garbage"}, "cursor"),
])
def test_bad_arguments_come_back_as_tool_errors_naming_the_field(window, name, arguments, field):
    result = window(cwd="/tmp").call(name, arguments)
    assert result["isError"] is True
    assert f"{field}:" in result["content"][0]["text"]


def test_a_relative_project_needs_a_window_working_directory(window):
    result = window().call("remember", {"content": "x", "project": "relative/dir"})
    assert result["isError"] is True and "project: 'relative/dir' is relative" in result["content"][0]["text"]


def test_hostile_queries_are_words_not_search_syntax(window, projects):
    alpha = window(cwd=projects.alpha)
    structured(alpha, "remember", {"content": "NEAR the OR gate"})
    for query in ['"', "NEAR(", "a OR", "*", "col:x", "(((", "-x"]:
        structured(alpha, "recall", {"query": query})


def test_the_recent_memory_resource_shows_the_readers_project(window, projects):
    alpha, beta = window(cwd=projects.alpha), window(cwd=projects.beta)
    assert RECENT_URI in [r["uri"] for r in alpha.result("resources/list")["resources"]]
    structured(alpha, "remember", {"content": "first"})
    structured(alpha, "remember", {"content": "second"})
    contents = alpha.result("resources/read", {"uri": RECENT_URI})["contents"]
    assert contents[0]["mimeType"] == "application/json" and contents[0]["uri"] == RECENT_URI
    document = json.loads(contents[0]["text"])
    assert document["project"] == projects.alpha
    assert [m["content"] for m in document["memories"]] == ["second", "first"]
    assert json.loads(beta.result("resources/read", {"uri": RECENT_URI})["contents"][0]["text"]) == {
        "project": projects.beta, "memories": []}


def test_the_recent_memory_resource_is_readable_statelessly(window, projects):
    client = window(initialize=False, cwd=projects.alpha)
    reply = client.result("resources/read", {"uri": RECENT_URI, "_meta": STATELESS_META})
    assert json.loads(reply["contents"][0]["text"])["project"] == projects.alpha


def test_subscribers_of_recent_memory_hear_of_every_memory_write(window, projects):
    watcher, writer, other = window(cwd=projects.alpha), window(cwd=projects.alpha), window(cwd=projects.alpha)
    assert watcher.result("resources/subscribe", {"uri": RECENT_URI}) == {}
    made = structured(writer, "remember", {"content": "watch this"})
    assert watcher.wait_notification("notifications/resources/updated")[0]["params"] == {"uri": RECENT_URI}
    structured(writer, "recall", {"query": "watch"})  # reads publish nothing
    structured(writer, "forget", {"ids": [made["id"]]})
    assert len(watcher.wait_notification("notifications/resources/updated", count=2)) == 2
    assert watcher.result("resources/unsubscribe", {"uri": RECENT_URI}) == {}
    structured(writer, "remember", {"content": "unheard"})
    assert writer.notifications("notifications/resources/updated") == []
    assert other.notifications("notifications/resources/updated") == []
    watcher.request("ping")  # anything queued before this reply has arrived by now
    assert len(watcher.notifications("notifications/resources/updated")) == 2


def test_one_repository_checked_out_at_two_paths_shares_its_memories(window, tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    clones = [tmp_path / "machine-a" / "repo", tmp_path / "machine-b" / "work" / "repo-copy"]
    for clone, url in zip(clones, ["git@github.com:acme/widgets.git", "https://github.com/acme/widgets"]):
        clone.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", str(clone)], check=True, timeout=30)
        subprocess.run(["git", "remote", "add", "origin", url], cwd=clone, check=True, timeout=30)
    laptop, devbox = window(cwd=str(clones[0])), window(cwd=str(clones[1] / "."))
    structured(laptop, "remember", {"content": "widgets release with make ship"})
    found = structured(devbox, "recall", {"query": "release widgets"})
    assert [m["content"] for m in found["memories"]] == ["widgets release with make ship"]
    assert found["project"] == "github.com/acme/widgets"


def test_without_a_memory_service_neither_tools_nor_resource_are_offered(tmp_path):
    database = Database(pathlib.Path(tmp_path) / "g.db")
    session = McpSession(types.SimpleNamespace(graph=KnowledgeGraph(database), events=EventBus()))
    try:
        client = SessionClient(session)
        client.initialize()
        names = [t["name"] for t in client.result("tools/list")["tools"]]
        assert not set(MEMORY_TOOLS) & set(names)
        assert RECENT_URI not in [r["uri"] for r in client.result("resources/list")["resources"]]
    finally:
        session.close()
        database.close()


def test_subscribers_of_recent_memory_hear_only_of_their_own_project(window, projects):
    watcher, elsewhere = window(cwd=projects.alpha), window(cwd=projects.beta)
    assert watcher.result("resources/subscribe", {"uri": RECENT_URI}) == {}
    assert elsewhere.result("resources/subscribe", {"uri": RECENT_URI}) == {}
    structured(elsewhere, "remember", {"content": "beta only"})
    assert elsewhere.wait_notification("notifications/resources/updated")[0]["params"] == {"uri": RECENT_URI}
    watcher.request("ping")  # anything queued before this reply has arrived by now
    assert watcher.notifications("notifications/resources/updated") == []
    structured(elsewhere, "remember", {"content": "for alpha", "project": projects.alpha})
    assert watcher.wait_notification("notifications/resources/updated")[0]["params"] == {"uri": RECENT_URI}
