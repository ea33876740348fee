"""Fixtures for the MCP tests.

``mcp_command`` is the one way end-to-end tests start an MCP server over stdio: it returns
``(argv, env)``. It serves standalone mode today (a fresh, short ``MEMESH_HOME`` with the
daemon disabled); it can be parametrized to also go through the daemon proxy, so
end-to-end tests use nothing else to start a server.

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


@pytest.fixture
def mcp_command(tmp_path):
    home = tempfile.mkdtemp(prefix="mm", dir="/tmp")
    env = {key: value for key, value in os.environ.items() if not key.startswith("MEMESH_")}
    env["MEMESH_HOME"] = home
    env["MEMESH_DISABLE_DAEMON"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
    try:
        yield [sys.executable, "-m", "memesh.mcp.standalone"], env
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def mcp_server(mcp_command):
    argv, env = mcp_command
    server = StdioServer(argv, env)
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def graph():
    home = pathlib.Path(tempfile.mkdtemp(prefix="mm", dir="/tmp"))
    database = Database(home / "memesh.db")
    try:
        yield KnowledgeGraph(database)
    finally:
        database.close()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def services(graph):
    return types.SimpleNamespace(graph=graph, events=EventBus())


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
