"""`memesh shell` and `memesh.connect()` from other processes see a window's writes live."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.mcp.stdio_driver import StdioServer

ENTITY = {"name": "Live Fact", "entityType": "note", "observations": ["written by a window"]}


def test_shell_and_a_separate_python_process_see_a_windows_write(memesh_home):
    window = StdioServer([sys.executable, "-m", "memesh"], memesh_home.env)
    try:
        window.initialize()
        window.call("create_entities", {"entities": [ENTITY]})
        script = "hits = graph.search_nodes('written window')\nprint('HITS', [e['name'] for e in hits['entities']])\nprint('PID', control.status()['pid'])\n"
        shell = subprocess.run([sys.executable, "-m", "memesh", "shell", "--plain"], input=script, env=memesh_home.env,
                               capture_output=True, text=True, timeout=30)
        assert shell.returncode == 0, shell.stderr
        assert "HITS ['Live Fact']" in shell.stdout
        assert f"PID {memesh_home.record()['pid']}" in shell.stdout
        assert "connected to the memesh daemon" in shell.stderr

        other = memesh_home.popen_python(
            "import memesh\nm = memesh.connect()\nprint([e['name'] for e in m.graph.open_nodes(['Live Fact'])['entities']])\nm.close()\n")
        out, err = other.communicate(timeout=30)
        assert other.returncode == 0, err
        assert out.strip() == "['Live Fact']"
    finally:
        window.kill()


def test_shell_in_standalone_mode_works_on_the_database_and_says_so(memesh_home):
    env = {**memesh_home.env, "MEMESH_DISABLE_DAEMON": "1"}
    script = "graph.create_entities([{'name': 'Solo', 'entityType': 't', 'observations': []}])\nprint('N', len(graph.read_graph()['entities']))\n"
    shell = subprocess.run([sys.executable, "-m", "memesh", "shell", "--plain"], input=script, env=env, capture_output=True, text=True, timeout=30)
    assert shell.returncode == 0, shell.stderr
    assert "N 1" in shell.stdout
    assert "standalone" in shell.stderr
    assert memesh_home.record() is None and memesh_home.daemons() == []


def test_shared_objects_carry_the_real_docstrings_and_signatures(memesh_home):
    import inspect

    mesh = memesh_home.connect()
    assert "knowledge graph" in mesh.graph.__doc__.lower()
    assert list(inspect.signature(mesh.graph.search_nodes).parameters)[:1] == ["query"]
    assert mesh.memory.recall.__doc__ and "search_nodes" in dir(mesh.graph)
    assert "shared graph in memesh daemon pid" in repr(mesh.graph)


def test_config_show_names_the_source_of_every_setting(memesh_home):
    (memesh_home.path / "config.yaml").write_text("daemon:\n  max_connections: 77\n  log_level: debug\n")
    done = memesh_home.cli("config", "show", env={"MEMESH_DAEMON_DRAIN_TIMEOUT": "1234"})
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.startswith("daemon.")}
    assert rows["daemon.max_connections"][1:] == ["77", f"file:{memesh_home.path / 'config.yaml'}"]
    assert rows["daemon.log_level"][2] == "env:MEMESH_DAEMON_LOG_LEVEL"  # the environment beats the file
    assert rows["daemon.drain_timeout"][1:] == ["1234", "env:MEMESH_DAEMON_DRAIN_TIMEOUT"]
    assert rows["daemon.heartbeat_interval"][2] == "default"


def test_config_show_names_the_storage_and_never_prints_its_password(memesh_home):
    url = "postgresql://alice:Zq9-hunter2@db.example.com:6432/team?sslmode=require"
    done = memesh_home.cli("config", "show", env={"MEMESH_STORAGE_URL": url})
    assert done.returncode == 0, done.stderr
    assert "Zq9-hunter2" not in done.stdout
    assert "storage      postgresql postgresql://alice:***@db.example.com:6432/team?sslmode=require" in done.stdout
    done = memesh_home.cli("config", "show", "--json", env={"MEMESH_STORAGE_URL": url})
    assert "Zq9-hunter2" not in done.stdout
    assert json.loads(done.stdout)["storage"].startswith("postgresql postgresql://alice:***@")
