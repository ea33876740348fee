"""The real Claude Code CLI accepts memesh: `claude mcp add memesh -- memesh`, then
`claude mcp list` reports it connected — with no daemon yet, with one running, and
standalone.

Claude Code comes from npm (`@anthropic-ai/claude-code`; .ci/run installs it and sets
MEMESH_TEST_CLAUDE). Without it the tests skip, except where MEMESH_TEST_CLAUDE_REQUIRED
is set (CI), where a missing CLI is a failure. Claude Code runs with a temporary HOME and
every non-essential network use switched off; it needs no account for these commands.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

QUIET = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
}


def find_claude() -> str | None:
    explicit = os.environ.get("MEMESH_TEST_CLAUDE")
    if explicit and os.access(explicit, os.X_OK):
        return explicit
    return shutil.which("claude")


@pytest.fixture
def claude(memesh_home):
    binary = find_claude()
    if binary is None:
        if os.environ.get("MEMESH_TEST_CLAUDE_REQUIRED"):
            pytest.fail("MEMESH_TEST_CLAUDE_REQUIRED is set but no Claude Code CLI was found (MEMESH_TEST_CLAUDE or PATH)")
        pytest.skip("Claude Code CLI not installed (npm install @anthropic-ai/claude-code; set MEMESH_TEST_CLAUDE)")
    home = tempfile.mkdtemp(prefix="cc", dir="/tmp")
    # `memesh` must be found the way Claude Code finds it: on PATH.
    bindir = str(pathlib.Path(sys.executable).parent)
    env = {**memesh_home.env, **QUIET, "HOME": home, "PATH": os.pathsep.join([bindir, memesh_home.env.get("PATH", "")])}
    assert shutil.which("memesh", path=env["PATH"]), "the memesh console script is not installed next to this Python"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([binary, *args], env=env, cwd=home, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)

    try:
        yield run
    finally:
        shutil.rmtree(home, ignore_errors=True)


def add_and_list(claude, memesh_home, *extra_env: str) -> str:
    env_args = []
    for item in (f"MEMESH_HOME={memesh_home.path}", *extra_env):
        env_args += ["-e", item]
    added = claude("mcp", "add", "memesh", *env_args, "--", "memesh")
    assert added.returncode == 0, added.stderr + added.stdout
    listed = claude("mcp", "list")
    assert listed.returncode == 0, listed.stderr + listed.stdout
    line = next((l for l in listed.stdout.splitlines() if l.startswith("memesh:")), "")
    assert "Connected" in line, listed.stdout + listed.stderr
    return line


def test_claude_code_connects_and_starts_the_daemon_when_none_is_running(claude, memesh_home):
    assert memesh_home.record() is None
    add_and_list(claude, memesh_home)
    record = memesh_home.record()
    assert record is not None and [p.pid for p in memesh_home.daemons()] == [record["pid"]]


def test_claude_code_connects_through_an_already_running_daemon(claude, memesh_home):
    pid = memesh_home.start_daemon()
    add_and_list(claude, memesh_home)
    assert memesh_home.record()["pid"] == pid
    assert [p.pid for p in memesh_home.daemons()] == [pid]


def test_claude_code_connects_in_standalone_mode_without_starting_a_daemon(claude, memesh_home):
    add_and_list(claude, memesh_home, "MEMESH_DISABLE_DAEMON=1")
    assert memesh_home.record() is None and memesh_home.daemons() == []
