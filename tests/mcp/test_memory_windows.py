"""Memory across real windows: the official MCP SDK client drives two ``python -m memesh``
windows, each started in its own project directory, through one real daemon.

The projects are temporary directories made git work trees (``git init``, or a ``.git``
directory when git is missing); the home is the ``memesh_home`` fixture, whose teardown
stops the daemon the first window started. The SDK stops the windows it spawned.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import warnings

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp import types as mcp_types

from memesh.mcp.memory_tools import RECENT_URI

REPO = str(pathlib.Path(__file__).resolve().parents[2])
SDK_DEADLINE = 60.0   # seconds for a whole conversation, start-up of daemon and windows included
NOTICE_WITHIN = 10.0  # seconds: a bound for the wait, not a latency figure (bench/ measures those)


def make_project(path: pathlib.Path) -> str:
    """A git work tree at ``path``; returns its physical path (what a window's cwd will be)."""
    path.mkdir(parents=True)
    if shutil.which("git"):
        subprocess.run(["git", "init", "-q", str(path)], check=True, timeout=30)
    else:
        (path / ".git").mkdir()
    (path / "src").mkdir()
    return os.path.realpath(path)


def window(memesh_home, cwd: str) -> StdioServerParameters:
    """How the SDK starts a window: the real ``memesh`` command, in ``cwd``, daemon mode on."""
    env = dict(memesh_home.env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
    return StdioServerParameters(command=sys.executable, args=["-m", "memesh"], env=env, cwd=cwd)


def run(conversation) -> None:
    async def bounded():
        with anyio.fail_after(SDK_DEADLINE):
            await conversation()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # resources/subscribe is deprecated in the 2026 SDK API
        anyio.run(bounded)


async def recall(client: Client, query: str, **arguments) -> dict:
    result = await client.call_tool("recall", {"query": query, **arguments})
    assert not result.is_error, result
    return result.structured_content


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_a_memory_made_in_project_a_is_recalled_in_a_and_reaches_b_only_with_all_projects(memesh_home, tmp_path, mode):
    alpha, beta = make_project(tmp_path / "alpha"), make_project(tmp_path / "beta")

    async def conversation():
        async with Client(window(memesh_home, alpha + "/src"), mode=mode) as a, \
                Client(window(memesh_home, beta), mode=mode) as b:
            made = await a.call_tool("remember", {"content": "The nightly job needs REDIS_URL set",
                                                  "tags": ["ci"], "kind": "fact"})
            assert not made.is_error, made
            assert made.structured_content["project"] == alpha
            assert made.structured_content["created"] is True

            in_a = await recall(a, "nightly redis")
            assert [m["content"] for m in in_a["memories"]] == ["The nightly job needs REDIS_URL set"]
            assert (await recall(b, "nightly redis"))["memories"] == []
            everywhere = await recall(b, "nightly redis", all_projects=True)
            assert [(m["content"], m["project"]) for m in everywhere["memories"]] == [
                ("The nightly job needs REDIS_URL set", alpha)]
            assert everywhere["project"] == beta

    run(conversation)
    assert len(memesh_home.daemons()) == 1  # both windows went through one daemon
    mesh = memesh_home.connect(start=False)
    found = mesh.memory.recall("redis", project=alpha)
    assert [m["content"] for m in found["memories"]] == ["The nightly job needs REDIS_URL set"]


def test_window_b_subscribed_to_recent_memory_hears_of_a_write_in_window_a_within_a_second(memesh_home, tmp_path):
    alpha = make_project(tmp_path / "alpha")

    async def conversation():
        updated = anyio.Event()

        async def on_message(message) -> None:
            if isinstance(message, mcp_types.ResourceUpdatedNotification) and message.params.uri == RECENT_URI:
                updated.set()

        async with Client(window(memesh_home, alpha), mode="legacy") as a, \
                Client(window(memesh_home, alpha + "/src"), mode="legacy", message_handler=on_message) as b:
            listed = await b.list_resources()
            assert RECENT_URI in [str(r.uri) for r in listed.resources]
            await b.subscribe_resource(RECENT_URI)
            before = json.loads((await b.read_resource(RECENT_URI)).contents[0].text)
            assert before == {"project": alpha, "memories": []}

            made = await a.call_tool("remember", {"content": "Windows share memories through the daemon"})
            assert not made.is_error, made
            written = time.monotonic()
            with anyio.fail_after(NOTICE_WITHIN):
                await updated.wait()
            assert updated.is_set(), f"no update notification ({time.monotonic() - written:.2f}s)"

            after = json.loads((await b.read_resource(RECENT_URI)).contents[0].text)
            assert [m["content"] for m in after["memories"]] == ["Windows share memories through the daemon"]

    run(conversation)
    assert len(memesh_home.daemons()) == 1
