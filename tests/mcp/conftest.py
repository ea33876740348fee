"""Fixtures for the MCP tests.

``mcp_command`` is the one way end-to-end tests start an MCP server over stdio: it returns
``(argv, env)`` for the real ``memesh`` command in a fresh, short ``MEMESH_HOME``, once
standalone and once through the daemon proxy, so every end-to-end test holds in both.

``mcp_server`` starts that command under :class:`~tests.mcp.stdio_driver.StdioServer`
and kills it (by process group) in teardown.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import sys
import tempfile
import types

import pytest

from memesh.mcp.events import EventBus
from memesh.mcp.session import McpSession
from memesh.store.db import Database
from memesh.store.graph import KnowledgeGraph
from tests.mcp.stdio_driver import SessionClient, StdioServer

REPO = str(pathlib.Path(__file__).resolve().parents[2])


@pytest.fixture(params=["standalone", "proxy"])
def mcp_command(request, make_home):
    """``(argv, env)`` of the real ``memesh`` command, in each mode a window can run in.

    standalone: daemon mode disabled, an in-process server. proxy: through the home's
    daemon, which the first window starts; the ``make_home`` teardown stops it by
    verified pid.
    """
    home = make_home()
    env = dict(home.env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
    if request.param == "standalone":
        env["MEMESH_DISABLE_DAEMON"] = "1"
    yield [sys.executable, "-m", "memesh"], env


@pytest.fixture
def mcp_server(mcp_command):
    argv, env = mcp_command
    server = StdioServer(argv, env)
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def events():
    return EventBus()


@pytest.fixture
def graph(events):
    """A graph on a fresh database that announces its writes on ``events``, as in the daemon."""
    home = pathlib.Path(tempfile.mkdtemp(prefix="mm", dir="/tmp"))
    database = Database(home / "memesh.db")
    try:
        yield KnowledgeGraph(database, on_change=events.on_change)
    finally:
        database.close()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def services(graph, events):
    return types.SimpleNamespace(graph=graph, events=events)


@pytest.fixture
def session(services):
    session = McpSession(services, context={"cwd": "/tmp", "pid": 1})
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def client(session):
    return SessionClient(session)
