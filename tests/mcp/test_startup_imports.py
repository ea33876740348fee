"""A window's start-up imports only what answering ``initialize`` through the daemon needs.

Every Claude Code window starts ``memesh``, so what the proxy imports before its first
answer is paid on every window. The window below is started the way the console script
starts it (``memesh.cli.main:main``, no arguments) against a running daemon, by a small
driver that notes ``sys.modules`` the moment the proxy writes its first line to stdout.

The interpreter runs with ``-S``: start-up files in site-packages (``.pth``) may import
modules of their own, and only what memesh imports is judged here. memesh itself comes
from ``PYTHONPATH``; a third-party module on this path would fail to import and fail the
test too.
"""
from __future__ import annotations

import sys

import pytest

from tests.mcp.conftest import REPO
from tests.mcp.stdio_driver import StdioServer

# Runs the console script's ``main()`` in this process with stdout on a pipe of its own;
# a thread relays that pipe to the real stdout and, before relaying the first line,
# writes the names in sys.modules to the file named by argv[1].
DRIVER = r"""
import os, sys, threading
snapshot = sys.argv[1]
sys.argv[1:] = []
real_stdout = os.dup(1)
read_end, write_end = os.pipe()
os.dup2(write_end, 1)
os.close(write_end)

def relay():
    noted = False
    while data := os.read(read_end, 65536):
        if not noted and b"\n" in data:
            with open(snapshot, "w") as fh:
                fh.write("\n".join(sorted(list(sys.modules))))
            noted = True
        os.write(real_stdout, data)

threading.Thread(target=relay, daemon=True).start()
from memesh.cli.main import main
sys.exit(main())
"""

# Not needed to answer initialize through a running daemon: the CLI and its output
# (argh, colorlog, tqdm), settings files (yaml), the election and spawning (filelock,
# psutil, packaging), the daemon's side (storage, A2A, HTTP), logging (memesh.lazylog
# defers it to the first message), and typing (annotations only, on this path).
NOT_ON_THE_PROXY_PATH = (
    "argh", "colorlog", "tqdm", "yaml", "filelock", "psutil", "packaging",
    "sqlite3", "psycopg", "a2a", "uvicorn", "starlette", "logging", "dataclasses", "typing",
    "memesh.cli.daemon_cmds", "memesh.mcp.standalone", "memesh.mcp.session", "memesh.store",
)


CONFIG = "daemon:\n  max_connections: 777\nproxy:\n  reconnect_budget: 20000\n"


@pytest.mark.parametrize("config_file", [False, True], ids=["no-config-file", "config-file"])
def test_a_window_answers_initialize_through_the_daemon_without_importing_what_only_other_paths_need(make_home, tmp_path, config_file):
    """With a config file too: the daemon's start parsed it, and windows take it from the cache."""
    home = make_home()
    if config_file:
        (home.path / "config.yaml").write_text(CONFIG)
    home.start_daemon()
    snapshot = tmp_path / "modules.txt"
    env = {**home.env, "PYTHONPATH": REPO}
    server = StdioServer([sys.executable, "-S", "-c", DRIVER, str(snapshot)], env)
    try:
        reply = server.request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                              "clientInfo": {"name": "memesh-tests", "version": "1"}})
        assert "result" in reply and reply["result"]["serverInfo"]["name"] == "memesh", (reply, server.stderr_text)
        modules = set(snapshot.read_text().split())
        # The window went through the daemon (standalone, it would have imported its session).
        assert "memesh.mcp.proxy" in modules and "memesh.daemon.channel" in modules, sorted(modules)
        imported = [name for name in NOT_ON_THE_PROXY_PATH
                    if name in modules or any(m.startswith(name + ".") for m in modules)]
        assert imported == [], f"imported before the first answer: {imported}"
    finally:
        server.kill()
