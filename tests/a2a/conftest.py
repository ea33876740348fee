"""Fixtures for the A2A tests: a home whose daemon serves the front door on a free port,
real windows (``memesh`` over stdio through the proxy) in their own git projects, and the
official a2a-sdk client pointed at them.

``hub`` gives a :class:`Hub`; every window it starts is killed (by process group) in
teardown, and the ``memesh_home`` teardown stops the daemon.
"""
from __future__ import annotations

import json
import os
import pathlib
import sys
from typing import Any

import pytest

from tests.mcp.stdio_driver import StdioServer
from tests.support import wait_until

REPO = str(pathlib.Path(__file__).resolve().parents[2])
WAIT = 15.0


class Hub:
    def __init__(self, home) -> None:
        self.home = home
        home.env["MEMESH_A2A_PORT"] = "0"
        home.env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
        self.windows: list[StdioServer] = []

    def project(self, name: str) -> pathlib.Path:
        path = self.home.path / "projects" / name
        (path / ".git").mkdir(parents=True, exist_ok=True)
        return path

    def window(self, project: str, env: dict | None = None, initialize: bool = True, subscribe: bool = True) -> StdioServer:
        """A real window: ``memesh`` in ``project``'s directory, through the daemon's proxy."""
        directory = self.project(project)
        argv = ["/bin/sh", "-c", f'cd "{directory}" && exec "{sys.executable}" -m memesh']
        server = StdioServer(argv, {**self.home.env, **(env or {})})
        self.windows.append(server)
        if initialize:
            server.initialize()
            if subscribe:
                server.result("resources/subscribe", {"uri": "memesh://a2a/inbox"})
        return server

    def record(self) -> dict:
        return wait_until(lambda: (r := self.home.record()) and r.get("a2aPort") and r, WAIT, "the a2aPort in the lock record")

    @property
    def port(self) -> int:
        return self.record()["a2aPort"]

    @property
    def token(self) -> str:
        self.record()   # the daemon writes the token before it publishes the port
        return (self.home.path / "a2a.token").read_text().strip()

    def url(self, agent: str | None = None) -> str:
        return f"http://127.0.0.1:{self.port}/" + (f"agents/{agent}/" if agent else "")

    def agent_of(self, window: StdioServer) -> str:
        return structured(window.call("a2a_agents"))["you"]

    def kill(self) -> None:
        for window in self.windows:
            window.kill()


def structured(result: dict) -> Any:
    """The structuredContent of a tools/call result (failing loudly on an error result)."""
    assert not result.get("isError"), result["content"][0]["text"]
    return result["structuredContent"]


def tool_error(result: dict) -> str:
    assert result.get("isError"), result
    return result["content"][0]["text"]


def inbox(window: StdioServer) -> dict:
    return structured(window.call("a2a_inbox"))


def read_inbox_resource(window: StdioServer) -> dict:
    contents = window.result("resources/read", {"uri": "memesh://a2a/inbox"})["contents"]
    return json.loads(contents[0]["text"])


@pytest.fixture
def hub(memesh_home):
    hub = Hub(memesh_home)
    try:
        yield hub
    finally:
        hub.kill()
