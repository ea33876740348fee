"""``memesh`` with no arguments: serve MCP on stdio for one window.

Start-up is on the hot path of every window, so stdin is read from the first instant
and nothing is imported that this mode does not need. Mode, in order: daemon disabled
→ standalone in-process; otherwise a proxy into the daemon (started if needed); a daemon
that cannot be used → standalone, with one line on stderr saying why; settings or a home
that cannot be used → every request is answered with an error saying what is wrong.

SIGINT and SIGTERM (how clients stop a server) end the window like stdin EOF: exit 0.
"""
from __future__ import annotations

import sys


def run() -> int:
    from memesh.mcp.proxy import install_signal_handlers
    from memesh.mcp.stdin import StdinReader

    install_signal_handlers()
    reader = StdinReader(sys.stdin.fileno())
    reader.start()
    from memesh.config import load_settings
    from memesh.mcp.proxy import serve  # logging is configured on first use (memesh.lazylog)

    try:
        settings = load_settings()
    except Exception as exc:  # a ConfigError, or a home that cannot even be looked at
        if isinstance(exc, OSError):
            import os

            from memesh.config import default_home
            from memesh.mcp.standalone import unusable_home_reason

            problem = unusable_home_reason(default_home(os.environ), exc)
        else:
            problem = f"memesh cannot start: {exc}. To fix: correct it (`memesh config show` checks the settings); then restart this MCP server."
        print(f"memesh: {problem}", file=sys.stderr)
        return serve(None, reader, problem=problem)
    return serve(settings, reader)
