"""Modes: with daemon mode disabled nothing starts a daemon and memesh runs standalone."""
from __future__ import annotations

import json

import pytest

CONNECT = """
import json, memesh
mesh = memesh.connect()
mesh.graph.create_entities([{"name": "standalone-entity", "entityType": "t", "observations": []}])
print(json.dumps({"mode": mesh.mode, "status": mesh.control.status(),
                  "found": [e["name"] for e in mesh.graph.open_nodes(["standalone-entity"])["entities"]]}))
"""


def assert_no_daemon(home) -> None:
    assert not home.lifetime_held()
    assert home.holder() == {}
    assert not home.paths.socket.exists() and not home.paths.record.exists() and not home.paths.key.exists()
    assert home.daemons() == []


@pytest.mark.parametrize("value", ["1", "true", "TRUE"])
def test_connect_with_the_daemon_disabled_starts_no_daemon_and_works_standalone(memesh_home, value):
    proc = memesh_home.popen_python(CONNECT, env={"MEMESH_DISABLE_DAEMON": value})
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert result["mode"] == "standalone" and result["status"]["mode"] == "standalone"
    assert "MEMESH_DISABLE_DAEMON" in result["status"]["reason"]
    assert result["found"] == ["standalone-entity"]
    assert_no_daemon(memesh_home)


def test_daemon_enabled_false_in_the_config_file_also_means_standalone(memesh_home):
    (memesh_home.path / "config.yaml").write_text("daemon:\n  enabled: false\n")
    proc = memesh_home.popen_python(CONNECT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert json.loads(out)["mode"] == "standalone"
    status = memesh_home.cli("daemon", "status")
    assert status.returncode == 3 and "standalone" in status.stdout
    assert_no_daemon(memesh_home)


def test_status_and_start_with_the_daemon_disabled_say_standalone_and_exit_3(memesh_home):
    env = {"MEMESH_DISABLE_DAEMON": "1"}
    status = memesh_home.cli("daemon", "status", env=env)
    assert status.returncode == 3
    assert "standalone" in status.stdout
    as_json = memesh_home.cli("daemon", "status", "--json", env=env)
    assert as_json.returncode == 3 and json.loads(as_json.stdout)["mode"] == "standalone"
    start = memesh_home.cli("daemon", "start", env=env)
    assert start.returncode == 3 and "disabled" in start.stderr
    assert_no_daemon(memesh_home)


def test_disable_daemon_set_to_zero_keeps_daemon_mode(memesh_home):
    proc = memesh_home.popen_python("import memesh; print(memesh.connect().mode)", env={"MEMESH_DISABLE_DAEMON": "0"})
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.strip() == "daemon"
    assert memesh_home.lifetime_held() and len(memesh_home.daemons()) == 1


def test_a_daemon_started_by_connect_runs_with_the_settings_it_was_given(memesh_home):
    """Settings built from a mapping (or flags), not from this process's environment,
    still reach the daemon that ``connect`` spawns."""
    settings = memesh_home.settings(MEMESH_DAEMON_IDLE_TIMEOUT="123456", MEMESH_DAEMON_MAX_CONNECTIONS="77")
    settings = settings.with_overrides(daemon__heartbeat_interval=4321)
    assert "MEMESH_DAEMON_IDLE_TIMEOUT" not in __import__("os").environ
    mesh = memesh_home.connect(settings=settings)
    assert mesh.control.status()["idleTimeoutMs"] == 123456
    proc = memesh_home.verified_holder()
    env = proc.environ()
    assert env["MEMESH_DAEMON_MAX_CONNECTIONS"] == "77" and env["MEMESH_DAEMON_HEARTBEAT_INTERVAL"] == "4321"
