"""The Python entry points as a user meets them: stock ``BaseManager`` code with
``MeshManager``, and ``memesh.connect()`` standing on the same class."""
from __future__ import annotations

import sys
from multiprocessing.managers import BaseProxy

from memesh.daemon.manager import MeshManager

STOCK_CLIENT = """
import sys
from multiprocessing.managers import BaseProxy
from memesh.daemon.manager import MeshManager

address, key = sys.argv[1], open(sys.argv[2], "rb").read()
m = MeshManager(address=address, authkey=key)
m.connect()
g = m.graph()
g.create_entities([{"name": "Stock", "entityType": "note", "observations": ["written through BaseManager"]}])
print("FOUND", [e["name"] for e in g.search_nodes("BaseManager")["entities"]])
print("PING", m.control().ping() > 0)
print("MEMORY", sorted(m.memory().stats()) == sorted(m.memory().stats()))
print("PROXY", isinstance(g, BaseProxy))
try:
    m.graph().open_nodes("not a list")
except Exception as exc:
    print("ERROR", type(exc).__name__)
print("AFTER", m.graph().stats()["entities"])
"""


def test_stock_basemanager_code_reaches_the_daemons_objects_with_meshmanager(memesh_home):
    pid = memesh_home.start_daemon()
    address = memesh_home.record()["socketPath"]
    proc = memesh_home.popen([sys.executable, "-c", STOCK_CLIENT, address, str(memesh_home.paths.key)], text=True)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    assert lines["FOUND"] == "['Stock']"
    assert lines["PING"] == "True" and lines["MEMORY"] == "True" and lines["PROXY"] == "True"
    assert lines["ERROR"] == "ValidationError"  # the daemon's own exception, re-raised by the proxy
    assert lines["AFTER"] == "1"  # the connection still works after a remote error
    # A handle of memesh.connect() sees the write; its objects are MeshManager proxies of that daemon.
    mesh = memesh_home.connect(name="api-check")
    assert isinstance(mesh.manager, MeshManager) and isinstance(mesh.graph, BaseProxy)
    assert mesh.manager.daemon_pid == pid
    assert [e["name"] for e in mesh.graph.open_nodes(["Stock"])["entities"]] == ["Stock"]


def test_a_meshmanager_that_is_not_connected_says_so():
    manager = MeshManager(address="/nonexistent/daemon.sock", authkey=b"k")
    try:
        manager.graph()
    except Exception as exc:
        assert "call connect()" in str(exc)
    else:
        raise AssertionError("graph() before connect() returned a proxy")
