"""The YAML settings file: read once, then taken from the home's cache while it is unchanged.

Importing yaml costs every window of a user with a config file ~30 ms, so the parsed
file is kept as JSON in ``$MEMESH_HOME/config.cache.json`` beside the file's identity.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from memesh.config import CONFIG_CACHE, load_settings
from tests.mcp.conftest import REPO

READ = "import sys; from memesh.config import load_settings; s = load_settings(); print(s['daemon.max_connections'], s.sources['daemon.max_connections'])"


def settings_in_a_fresh_process(env: dict, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *flags, "-c", READ], env={**env, "PYTHONPATH": REPO},
                          capture_output=True, text=True, timeout=60)


def test_once_a_config_file_was_read_a_process_without_yaml_gets_its_settings(memesh_home):
    config = memesh_home.path / "config.yaml"
    config.write_text("daemon:\n  max_connections: 1234\n")
    first = settings_in_a_fresh_process(memesh_home.env)
    assert first.returncode == 0, first.stderr
    # -S: no site-packages, so yaml cannot be imported; the cache has to serve the file.
    second = settings_in_a_fresh_process(memesh_home.env, "-S")
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["1234", f"file:{config}"]
    assert oct(os.stat(memesh_home.path / CONFIG_CACHE).st_mode & 0o777) == "0o600"


def test_a_changed_config_file_is_read_again_even_with_the_same_size(memesh_home):
    config = memesh_home.path / "config.yaml"
    config.write_text("daemon:\n  max_connections: 1111\n")
    assert load_settings(memesh_home.env)["daemon.max_connections"] == 1111
    assert (memesh_home.path / CONFIG_CACHE).exists()
    config.write_text("daemon:\n  max_connections: 2222\n")
    assert load_settings(memesh_home.env)["daemon.max_connections"] == 2222


def test_a_broken_cache_is_ignored_and_the_file_is_read(memesh_home):
    config = memesh_home.path / "config.yaml"
    config.write_text("daemon:\n  max_connections: 3333\n")
    load_settings(memesh_home.env)
    (memesh_home.path / CONFIG_CACHE).write_text('{"file": "not json')
    assert load_settings(memesh_home.env)["daemon.max_connections"] == 3333


def test_a_file_whose_values_json_cannot_hold_is_still_read_and_checked_every_time(memesh_home):
    config = memesh_home.path / "config.yaml"
    config.write_text("storage:\n  password_file: 2024-01-01\n")  # YAML reads a date
    for _ in range(2):
        done = settings_in_a_fresh_process(memesh_home.env)
        assert done.returncode != 0 and "storage.password_file: expected an absolute path" in done.stderr, done.stderr
    assert not (memesh_home.path / CONFIG_CACHE).exists()


def test_a_cache_that_others_could_have_written_is_not_trusted(memesh_home):
    config = memesh_home.path / "config.yaml"
    config.write_text("daemon:\n  max_connections: 4444\n")
    load_settings(memesh_home.env)
    cache = memesh_home.path / CONFIG_CACHE
    forged = json.loads(cache.read_text())
    forged["tree"]["daemon"]["max_connections"] = 9999
    cache.write_text(json.dumps(forged))
    assert load_settings(memesh_home.env)["daemon.max_connections"] == 9999  # the forgery is well-formed...
    cache.write_text(json.dumps(forged))
    os.chmod(cache, 0o666)
    assert load_settings(memesh_home.env)["daemon.max_connections"] == 4444  # ...but not trusted once others could write it
