"""MCP protocol facts and the pure decisions a session makes from them.

Two eras share one stdio line protocol (see :mod:`memesh.mcp.jsonrpc`):

* **handshake era** (2024-11-05 … 2025-11-25): ``initialize`` negotiates a version for the
  whole connection, then ``notifications/initialized``; results are plain objects.
* **stateless era** (2026-07-28): no handshake. Every request carries
  ``params._meta["io.modelcontextprotocol/protocolVersion"]`` and
  ``["io.modelcontextprotocol/clientCapabilities"]`` (and optionally ``…/logLevel``);
  ``server/discover`` describes the server. Every result carries ``resultType`` and
  ``_meta["io.modelcontextprotocol/serverInfo"]``; cacheable results carry ``ttlMs`` and
  ``cacheScope``.

A request belongs to the stateless era when its ``_meta`` holds the protocol-version key;
otherwise to the handshake era. Nothing here does I/O.
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from memesh._version import __version__
from memesh.mcp.jsonrpc import INVALID_PARAMS, UNSUPPORTED_PROTOCOL_VERSION, RpcError

SERVER_NAME = "memesh"

HANDSHAKE_VERSIONS: tuple[str, ...] = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
LATEST_HANDSHAKE_VERSION = HANDSHAKE_VERSIONS[0]
STATELESS_VERSIONS: tuple[str, ...] = ("2026-07-28",)
#: What we tell clients we speak: newest first, both eras.
SUPPORTED_VERSIONS: tuple[str, ...] = STATELESS_VERSIONS + HANDSHAKE_VERSIONS

PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel"
SERVER_INFO_KEY = "io.modelcontextprotocol/serverInfo"

HANDSHAKE = "handshake"
STATELESS = "stateless"

#: RFC 5424 severities, least severe first, as MCP names them.
LOG_LEVELS: tuple[str, ...] = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")

# Cache hints for stateless results: (ttlMs, cacheScope). The tool list only changes
# when memesh is upgraded; the graph can change at any moment, from any window.
TOOLS_TTL_MS = 300_000
DISCOVER_TTL_MS = 300_000
CACHE_HINTS: dict[str, tuple[int, str]] = {
    "server/discover": (DISCOVER_TTL_MS, "public"),
    "tools/list": (TOOLS_TTL_MS, "public"),
    "resources/list": (0, "private"),
    "resources/templates/list": (TOOLS_TTL_MS, "public"),
    "resources/read": (0, "private"),
}

INSTRUCTIONS = (
    "memesh is a knowledge graph shared by every session of this user: entities (with a "
    "type and observations) linked by typed relations. Search it with search_nodes before "
    "asking the user for facts they may have told another session; record durable facts "
    "with create_entities, add_observations and create_relations. Reads are paged: when a "
    "result has nextCursor, pass it back as cursor to continue."
)


def server_info() -> dict[str, str]:
    """The server's Implementation object."""
    return {"name": SERVER_NAME, "title": "memesh knowledge graph", "version": __version__}


def handshake_capabilities() -> dict[str, Any]:
    """Capabilities declared by ``initialize``: all of these are implemented for that era."""
    return {
        "tools": {"listChanged": True},
        "resources": {"subscribe": True, "listChanged": False},
        "logging": {},
    }


def stateless_capabilities() -> dict[str, Any]:
    """Capabilities declared by ``server/discover`` (no subscriptions/listen stream: no push)."""
    return {"tools": {}, "resources": {}, "logging": {}}


def negotiate(requested: str) -> str:
    """The handshake version to answer ``initialize`` with: the client's if we know it, else our latest."""
    return requested if requested in HANDSHAKE_VERSIONS else LATEST_HANDSHAKE_VERSION


def is_stateless(meta: Any) -> bool:
    """Whether a request's ``_meta`` opts it into the stateless era."""
    return isinstance(meta, Mapping) and PROTOCOL_VERSION_KEY in meta


def check_envelope(meta: Mapping[str, Any]) -> str | None:
    """Validate a stateless request's ``_meta``; return its log level (or None).

    Raises RpcError: -32602 for a missing or malformed required field, -32022 (with
    ``data.supported`` and ``data.requested``) for a version we do not serve statelessly.
    """
    version = meta.get(PROTOCOL_VERSION_KEY)
    if not isinstance(version, str):
        raise RpcError(INVALID_PARAMS, f"params._meta[{PROTOCOL_VERSION_KEY!r}]: expected a protocol version string")
    if version not in STATELESS_VERSIONS:
        # data.supported lists what this field accepts; handshake versions are negotiated
        # by initialize instead, and saying so beats listing them as if they worked here.
        how = (f"{version} is a handshake version: send initialize instead of the {PROTOCOL_VERSION_KEY} field"
               if version in HANDSHAKE_VERSIONS else f"Unsupported protocol version {version!r}")
        raise RpcError(
            UNSUPPORTED_PROTOCOL_VERSION,
            f"{how}; in _meta this server accepts: {', '.join(STATELESS_VERSIONS)}",
            {"supported": list(STATELESS_VERSIONS), "requested": version},
        )
    if CLIENT_CAPABILITIES_KEY not in meta:
        raise RpcError(INVALID_PARAMS, f"params._meta[{CLIENT_CAPABILITIES_KEY!r}]: required field is missing")
    if not isinstance(meta[CLIENT_CAPABILITIES_KEY], Mapping):
        raise RpcError(INVALID_PARAMS, f"params._meta[{CLIENT_CAPABILITIES_KEY!r}]: expected an object")
    level = meta.get(LOG_LEVEL_KEY)
    if level is not None and level not in LOG_LEVELS:
        raise RpcError(INVALID_PARAMS, f"params._meta[{LOG_LEVEL_KEY!r}]: must be one of {', '.join(LOG_LEVELS)}")
    return level


def check_log_level(level: Any) -> str:
    """Validate ``logging/setLevel``'s level."""
    if level not in LOG_LEVELS:
        raise RpcError(INVALID_PARAMS, f"params.level: must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    return level


def level_passes(level: str, threshold: str | None) -> bool:
    """Whether a message at ``level`` is sent to a client that asked for ``threshold`` (None = nothing)."""
    return threshold is not None and LOG_LEVELS.index(level) >= LOG_LEVELS.index(threshold)


def decorate_stateless(method: str, result: dict[str, Any]) -> dict[str, Any]:
    """Add what every 2026-07-28 result carries (resultType, serverInfo, cache hints)."""
    out = dict(result)
    out.setdefault("resultType", "complete")
    meta = dict(out.get("_meta") or {})
    meta.setdefault(SERVER_INFO_KEY, server_info())
    out["_meta"] = meta
    hints = CACHE_HINTS.get(method)
    if hints is not None:
        out.setdefault("ttlMs", hints[0])
        out.setdefault("cacheScope", hints[1])
    return out


T = TypeVar("T")


def page(items: Sequence[T], cursor: Any, size: int, kind: str) -> tuple[list[T], str | None]:
    """One page of a stable list and the cursor of the next (None at the end).

    Cursors are opaque to clients; one that we did not issue for this ``kind`` (or that no
    longer points inside the list) is refused with -32602.
    """
    start = 0 if cursor is None else _decode_cursor(cursor, kind, len(items))
    end = start + size
    following = _encode_cursor(kind, end) if end < len(items) else None
    return list(items[start:end]), following


def _encode_cursor(kind: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{offset}".encode("ascii")).decode("ascii").rstrip("=")


def _decode_cursor(cursor: Any, kind: str, length: int) -> int:
    problem = RpcError(INVALID_PARAMS, "params.cursor: not a nextCursor issued by this server; omit it to start from the first page")
    if not isinstance(cursor, str) or len(cursor) > 64:
        raise problem
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        raise problem from None
    prefix, _, number = text.partition(":")
    if prefix != kind or not number.isdigit() or not 0 < int(number) < max(length, 1):
        raise problem
    return int(number)
