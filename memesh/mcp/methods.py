"""What each MCP method does, and which era it belongs to.

:data:`METHODS` maps a method name to a :class:`Method`: its era rule, whether it runs on
the executor (``slow``) or inline, and its handler ``handler(session, call) -> result``.
Handlers return the plain result object of the handshake era; the session adds what the
stateless era requires (:func:`memesh.mcp.protocol.decorate_stateless`). They raise
:class:`~memesh.mcp.jsonrpc.RpcError` for protocol errors; the session turns any
exception into the error reply.

Era rules:

* ``OPENING``         ``initialize``: always the handshake, whatever ``_meta`` holds.
* ``HANDSHAKE_ONLY``  removed in 2026-07-28 (``ping``, ``logging/setLevel``, resource
  subscriptions): -32601 when the request carries the 2026 envelope.
* ``SHARED``          both eras: needs the 2026 envelope, or ``initialize`` first.
* ``STATELESS_ONLY``  ``server/discover``: needs the 2026 envelope.

One rule before ``initialize``: a request without the 2026 envelope is answered -32602
("call initialize first"), whatever its era, except ``initialize`` itself and ``ping``
(which the spec allows at any time). ``initialize`` is accepted once per session; a
second one is -32600 and changes nothing.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Callable

from memesh.mcp import jsonrpc, protocol, resources
from memesh.mcp.jsonrpc import INVALID_PARAMS, RpcError
from memesh.mcp.tools import ToolContext, call_tool

if TYPE_CHECKING:  # pragma: no cover
    from memesh.mcp.session import McpSession

OPENING = "opening"
HANDSHAKE_ONLY = "handshake-only"
SHARED = "shared"
STATELESS_ONLY = "stateless-only"


@dataclasses.dataclass
class Call:
    """A request between its arrival and its reply (owned by the session, read by handlers)."""

    request: jsonrpc.Request
    key: tuple[bool, Any]
    era: str = protocol.HANDSHAKE
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    log_level: str | None = None          # stateless era: from _meta (handshake: the session's level)
    progress_token: str | int | None = None
    last_progress: float | None = None
    cancelled: threading.Event = dataclasses.field(default_factory=threading.Event)
    finished: bool = False
    future: Future | None = None
    # Ordering within the session (slow calls only): the handler to run, how many earlier
    # calls it still waits for, the later calls waiting for it, whether it holds an
    # executor slot of the session.
    method: "Method | None" = None
    waiting: int = 0
    dependents: list["Call"] = dataclasses.field(default_factory=list)
    submitted: bool = False


@dataclasses.dataclass(frozen=True)
class Method:
    era: str
    slow: bool
    handler: Callable[["McpSession", Call], dict[str, Any]]
    before_initialize: bool = False   # answered in the handshake era before initialize


def initialize(session: McpSession, call: Call) -> dict[str, Any]:
    requested = call.params.get("protocolVersion")
    if not isinstance(requested, str):
        raise RpcError(INVALID_PARAMS, "params.protocolVersion: expected a protocol version string")
    version = protocol.negotiate(requested)
    session.begin_handshake(version, call.params.get("clientInfo"), call.params.get("capabilities"))
    result = {"protocolVersion": version, "capabilities": protocol.handshake_capabilities(),
              "serverInfo": protocol.server_info(), "instructions": protocol.INSTRUCTIONS}
    if getattr(session.services, "a2a", None) is not None:
        from memesh.a2a.tools import initialize_extras

        initialize_extras(session.services.a2a, result)
    return result


def discover(session: McpSession, call: Call) -> dict[str, Any]:
    return {"supportedVersions": list(protocol.SUPPORTED_VERSIONS),
            "capabilities": protocol.stateless_capabilities(), "instructions": protocol.INSTRUCTIONS}


def ping(session: McpSession, call: Call) -> dict[str, Any]:
    return {}


def set_level(session: McpSession, call: Call) -> dict[str, Any]:
    session.set_log_level(protocol.check_log_level(call.params.get("level")))
    return {}


def tools_list(session: McpSession, call: Call) -> dict[str, Any]:
    tools = session.registry.tools(session.services)
    page, following = protocol.page(tools, call.params.get("cursor"), session.tools_page_size, "tools")
    result: dict[str, Any] = {"tools": [tool.definition() for tool in page]}
    if following is not None:
        result["nextCursor"] = following
    return result


def tools_call(session: McpSession, call: Call) -> dict[str, Any]:
    name = call.params.get("name")
    if not isinstance(name, str):
        raise RpcError(INVALID_PARAMS, "params.name: expected the name of a tool")
    tool = session.registry.get(name, session.services)
    if tool is None:
        raise RpcError(INVALID_PARAMS, f"Unknown tool: {name!r}; tools/list shows the available tools")
    arguments = call.params.get("arguments")
    arguments = {} if arguments is None else arguments
    if not isinstance(arguments, dict):
        raise RpcError(INVALID_PARAMS, "params.arguments: expected an object")
    ctx = ToolContext(
        services=session.services, context=session.context, cancelled=call.cancelled,
        progress=lambda progress, total=None, message=None: session.progress(call, progress, total, message),
        log=lambda level, data: session.log(call, level, data),
    )
    session.progress(call, 0, 1, f"{name} started")
    started = time.monotonic()
    result = call_tool(tool, ctx, arguments)
    if result.get("isError"):   # a success was announced by the store that committed it
        session.log(call, "warning", f"{name}: {result['content'][0]['text']}")
    session.log(call, "debug", f"{name} finished in {1000 * (time.monotonic() - started):.1f} ms")
    session.progress(call, 1, 1, f"{name} finished")
    return result


def _resource(session: McpSession, call: Call) -> resources.Resource:
    uri = call.params.get("uri")
    if not isinstance(uri, str):
        raise RpcError(INVALID_PARAMS, "params.uri: expected a resource URI string")
    found = resources.find(session.services, uri)
    if found is None:
        code = INVALID_PARAMS if call.era == protocol.STATELESS else jsonrpc.RESOURCE_NOT_FOUND
        raise RpcError(code, f"Resource not found: {uri}", {"uri": uri})
    return found


def _paged(session: McpSession, call: Call, key: str, items: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """One page of a listing; a cursor we did not issue is -32602, as for every list."""
    page, following = protocol.page(items, call.params.get("cursor"), session.tools_page_size, kind)
    result: dict[str, Any] = {key: page}
    if following is not None:
        result["nextCursor"] = following
    return result


def resources_list(session: McpSession, call: Call) -> dict[str, Any]:
    return _paged(session, call, "resources", [r.definition() for r in resources.available(session.services)], "resources")


def templates_list(session: McpSession, call: Call) -> dict[str, Any]:
    return _paged(session, call, "resourceTemplates", [], "templates")


def resources_read(session: McpSession, call: Call) -> dict[str, Any]:
    return resources.read(_resource(session, call), session.services, session.context)


def subscribe(session: McpSession, call: Call) -> dict[str, Any]:
    session.watch(_resource(session, call).uri, True)
    return {}


def unsubscribe(session: McpSession, call: Call) -> dict[str, Any]:
    uri = call.params.get("uri")
    if isinstance(uri, str):
        session.watch(uri, False)
    return {}


METHODS: dict[str, Method] = {
    "initialize": Method(OPENING, False, initialize, before_initialize=True),
    "ping": Method(HANDSHAKE_ONLY, False, ping, before_initialize=True),
    "logging/setLevel": Method(HANDSHAKE_ONLY, False, set_level),
    "resources/subscribe": Method(HANDSHAKE_ONLY, False, subscribe),
    "resources/unsubscribe": Method(HANDSHAKE_ONLY, False, unsubscribe),
    "server/discover": Method(STATELESS_ONLY, False, discover),
    "tools/list": Method(SHARED, False, tools_list),
    "tools/call": Method(SHARED, True, tools_call),
    "resources/list": Method(SHARED, False, resources_list),
    "resources/templates/list": Method(SHARED, False, templates_list),
    "resources/read": Method(SHARED, True, resources_read),
}
