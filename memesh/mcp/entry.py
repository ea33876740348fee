"""``memesh`` with no arguments: pick the mode and serve MCP on stdio (placeholder until the proxy lands)."""
from __future__ import annotations

import sys


def run() -> int:
    from memesh.config import load_settings

    settings = load_settings()
    from memesh.mcp.standalone import run as standalone

    return standalone(settings)
