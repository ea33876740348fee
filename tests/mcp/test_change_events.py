"""Every writer notifies: writes that do not come through a window's own session still reach
the windows subscribed to what they changed, over real stdio.

The writers are ``memesh.connect()`` in the test process (through the daemon) and the
``memesh graph import`` command (directly on the database, in its own process). The
window runs through the daemon proxy and standalone; both must hear every writer.
"""
from __future__ import annotations

import json
import os
import pathlib
import sys

import pytest

from tests.mcp.stdio_driver import StdioServer

REPO = str(pathlib.Path(__file__).resolve().parents[2])
RECENT = "memesh://memory/recent"
GRAPH = "memesh://graph"


@pytest.fixture(params=["proxy", "standalone"])
def window(request, memesh_home):
    env = dict(memesh_home.env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
    if request.param == "standalone":
        env["MEMESH_DISABLE_DAEMON"] = "1"   # this window only; memesh.connect() still uses the daemon
    server = StdioServer([sys.executable, "-m", "memesh"], env)
    try:
        server.initialize()
        for uri in (GRAPH, RECENT):
            assert server.result("resources/subscribe", {"uri": uri}) == {}
        yield server
    finally:
        server.kill()


def updates(server, uri):
    return [n for n in server.notifications("notifications/resources/updated") if n["params"]["uri"] == uri]


def wait_update(server, uri, count):
    server.wait_notification("notifications/resources/updated", count=len(server.notifications(
        "notifications/resources/updated")) - len(updates(server, uri)) + count)
    found = updates(server, uri)
    assert len(found) >= count, found
    return found


def test_a_write_through_memesh_connect_notifies_a_subscribed_window(window, memesh_home):
    mesh = memesh_home.connect()
    mesh.graph.create_entities([{"name": "Ada", "entityType": "person", "observations": ["wrote notes"]}])
    wait_update(window, GRAPH, 1)


def test_a_graph_import_command_notifies_a_subscribed_window(window, memesh_home, tmp_path):
    source = tmp_path / "g.jsonl"
    source.write_text('{"type":"entity","name":"Imported","entityType":"thing","observations":[]}\n')
    done = memesh_home.cli("graph", "import", str(source))
    assert done.returncode == 0, done.stderr
    wait_update(window, GRAPH, 1)
    read = window.call("open_nodes", {"names": ["Imported"]})["structuredContent"]["entities"]
    assert [e["name"] for e in read] == ["Imported"]


def test_memory_writes_notify_only_the_windows_of_their_project(window, memesh_home):
    document = json.loads(window.result("resources/read", {"uri": RECENT})["contents"][0]["text"])
    mine = document["project"]
    mesh = memesh_home.connect()
    mesh.memory.remember("someone else's note", project="/elsewhere/entirely")
    # A graph write after it: once its notice is here, a notice for the first would be too.
    mesh.graph.create_entities([{"name": "Marker", "entityType": "thing", "observations": []}])
    wait_update(window, GRAPH, 1)
    window.request("ping")
    assert updates(window, RECENT) == []
    mesh.memory.remember("a note of this window's project", project=mine)
    wait_update(window, RECENT, 1)
