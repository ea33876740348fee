"""The MCP layer: JSON-RPC framing, per-window sessions for both protocol eras, tools, stdio."""
