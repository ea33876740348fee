"""Arbitrary lines and JSON values sent by a window through a real proxy into a real daemon
never break the window, its session or the daemon: after every example the same window
still answers a ping, and the daemon that served it is still the one serving."""
from __future__ import annotations

import json
import pathlib
import sys
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.mcp.stdio_driver import StdioServer
from tests.support import MemeshHome

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)
messages = st.builds(
    lambda i, m, p: {"jsonrpc": "2.0", "id": i, "method": m, "params": p},
    st.integers() | st.text(max_size=6) | st.none(),
    st.sampled_from(["tools/call", "tools/list", "resources/read", "ping", "initialize", "notifications/cancelled", "x"]),
    json_values,
)
lines = st.one_of(
    st.text(max_size=200).map(lambda t: t.replace("\n", " ").replace("\r", " ")),
    json_values.map(json.dumps),
    messages.map(json.dumps),
)


@pytest.fixture(scope="module")
def window():
    home = MemeshHome(pathlib.Path(tempfile.mkdtemp(prefix="mm", dir="/tmp")))
    server = StdioServer([sys.executable, "-m", "memesh"], home.env)
    try:
        server.initialize()
        yield server, home
    finally:
        server.kill()
        home.cleanup()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=st.lists(lines, min_size=1, max_size=5))
def test_garbage_through_the_proxy_never_breaks_the_window_or_the_daemon(window, batch):
    server, home = window
    pid = home.record()["pid"]
    for line in batch:
        server.send_line(line)
    assert server.request("ping", id="alive")["result"] == {}
    assert home.record()["pid"] == pid and [p.pid for p in home.daemons()] == [pid]
    server.received.clear()
