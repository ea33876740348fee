"""Two "machines" on one PostgreSQL: two daemons with their own MEMESH_HOME share one graph.

Every window is a real ``memesh`` process proxied into its home's real daemon; both
daemons use the same PostgreSQL database (``storage.url``). Teardown kills the windows by
process group and the daemons by verified pid (``make_home``).
"""
from __future__ import annotations

import json
import sys
import threading

import pytest

from tests.mcp.stdio_driver import StdioServer
from tests.support import wait_until

WINDOW_ARGV = [sys.executable, "-m", "memesh"]
GRAPH_URI = "memesh://graph"
RECENT_URI = "memesh://memory/recent"


@pytest.fixture
def machines(make_home, pg_url):
    """Two homes (two "machines") whose daemons share the test's PostgreSQL database."""
    homes = [make_home(), make_home()]
    windows: list[StdioServer] = []

    def open_window(machine: int) -> StdioServer:
        env = {**homes[machine].env, "MEMESH_STORAGE_URL": pg_url}
        window = StdioServer(WINDOW_ARGV, env)
        windows.append(window)
        window.initialize()
        return window

    try:
        yield homes, open_window
    finally:
        for window in windows:
            window.kill()


def entity(name: str, text: str = "shared across machines") -> dict:
    return {"name": name, "entityType": "fact", "observations": [text]}


def test_a_window_of_one_daemon_finds_what_a_window_of_the_other_wrote(machines):
    homes, open_window = machines
    writer, reader = open_window(0), open_window(1)
    writer.call("create_entities", {"entities": [entity("Team Fact", "the release train leaves on Thursdays")]})
    found = reader.call("search_nodes", {"query": "release thursdays"})["structuredContent"]
    assert [e["name"] for e in found["entities"]] == ["Team Fact"]
    assert len(homes[0].daemons()) == 1 and len(homes[1].daemons()) == 1
    assert homes[0].daemons()[0].pid != homes[1].daemons()[0].pid


def test_a_subscribed_window_of_the_other_daemon_is_told_of_a_write_within_a_second(machines):
    homes, open_window = machines
    writer, watcher = open_window(0), open_window(1)
    assert watcher.result("resources/subscribe", {"uri": GRAPH_URI}) == {}
    writer.call("create_entities", {"entities": [entity("Warm Up")]})  # the listener is connected
    watcher.wait_notification("notifications/resources/updated", timeout=10)
    before = len(watcher.notifications("notifications/resources/updated"))
    writer.call("create_entities", {"entities": [entity("Fresh News")]})
    # The acceptance bound itself: told within a second of the write's acknowledgement.
    watcher.wait_notification("notifications/resources/updated", count=before + 1, timeout=1.0)
    page = watcher.result("resources/read", {"uri": GRAPH_URI})
    assert "Fresh News" in json.dumps(page)


def _create_many(window: StdioServer, prefix: str, count: int, errors: list) -> None:
    ids = [window.start("tools/call", {"name": "create_entities", "arguments": {"entities": [
        {"name": f"{prefix}-{i}", "entityType": "load", "observations": [f"item {i}"]}]}}) for i in range(count)]
    for request_id in ids:
        reply = window.reply(request_id, timeout=120)
        if "error" in reply or reply["result"].get("isError"):
            errors.append(reply)


def test_eight_windows_over_two_daemons_creating_500_entities_each_make_exactly_4000(machines):
    homes, open_window = machines
    windows = [open_window(i % 2) for i in range(8)]
    errors: list = []
    threads = [threading.Thread(target=_create_many, args=(w, f"w{i}", 500, errors)) for i, w in enumerate(windows)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=170)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    for window in (windows[0], windows[1]):  # both machines see the same 4,000
        names, cursor = [], None
        while True:
            args = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            page = window.call("read_graph", args)["structuredContent"]
            names += [e["name"] for e in page["entities"]]
            cursor = page.get("nextCursor")
            if not cursor:
                break
        assert sorted(names) == sorted(f"w{i}-{j}" for i in range(8) for j in range(500))


def test_daemon_status_names_the_postgresql_storage_without_the_password(machines, pg_url):
    homes, open_window = machines
    open_window(0)
    status = wait_until(lambda: (s := json.loads(homes[0].cli("daemon", "status", "--json").stdout))["storageAvailable"]
                        and s, 10, "the daemon to report its storage available")
    assert status["storage"] == "postgresql " + pg_url
    text = homes[0].cli("daemon", "status").stdout
    assert f"storage     postgresql {pg_url}" in text and "UNAVAILABLE" not in text


def test_a_memory_written_on_one_machine_reaches_the_other_machines_window_of_that_project(machines):
    homes, open_window = machines
    writer, watcher = open_window(0), open_window(1)  # both started in this checkout: one project
    assert watcher.result("resources/subscribe", {"uri": RECENT_URI}) == {}
    writer.call("remember", {"content": "warm-up note"})  # the other daemon's listener is connected
    watcher.wait_notification("notifications/resources/updated", timeout=10)
    before = len(watcher.notifications("notifications/resources/updated"))
    made = writer.call("remember", {"content": "the staging database moved to db2"})["structuredContent"]
    watcher.wait_notification("notifications/resources/updated", count=before + 1, timeout=1.0)
    recent = json.loads(watcher.result("resources/read", {"uri": RECENT_URI})["contents"][0]["text"])
    assert recent["project"] == made["project"]
    assert "the staging database moved to db2" in [m["content"] for m in recent["memories"]]
