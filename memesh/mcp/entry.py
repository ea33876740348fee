"""``memesh`` with no arguments: serve MCP on stdio for one window.

Start-up is on the hot path of every window, so stdin is read from the first instant
and nothing is imported that this mode does not need. Mode, in order: daemon disabled
→ standalone in-process; otherwise a proxy into the daemon (started if needed); a daemon
that cannot be used → standalone, with one line on stderr saying why.
"""
from __future__ import annotations

import sys


def run() -> int:
    from memesh.mcp.proxy import StdinReader

    reader = StdinReader(sys.stdin.buffer)
    reader.start()
    from memesh.config import load_settings
    from memesh.errors import MemeshError

    try:
        settings = load_settings()
    except MemeshError as exc:
        print(f"memesh: {exc}", file=sys.stderr)
        return exc.exit_code
    from memesh.mcp.proxy import serve  # logging is configured on first use (memesh.lazylog)

    try:
        return serve(settings, reader)
    except KeyboardInterrupt:
        return 0  # clients stop their servers with SIGINT; that is a normal end, not a crash
