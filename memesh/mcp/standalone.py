"""Standalone mode: one MCP session served in-process on this process's stdin/stdout.

Used when daemon mode is disabled (``MEMESH_DISABLE_DAEMON=1``), and as the fallback
when the daemon cannot be used. It is the proxy's own loop (``memesh.mcp.proxy``) over an
in-process session instead of a daemon session, so both modes share one implementation
of reading, writing, EOF handling and oversize lines.

Run it with ``python -m memesh.mcp.standalone`` (standalone whatever the settings say).
"""
from __future__ import annotations

import sys
from typing import Any, BinaryIO

from memesh.mcp.proxy import StdinReader, serve


def run(settings: Any, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> int:
    """Serve one window in-process until stdin ends; returns the exit status (0)."""
    reader = StdinReader(stdin if stdin is not None else sys.stdin.buffer)
    reader.start()
    return serve(settings, reader, stdout, standalone=True)


def main() -> int:
    import logging

    from memesh.config import load_settings

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="memesh %(levelname)s %(name)s: %(message)s")
    return run(load_settings())


if __name__ == "__main__":
    sys.exit(main())
