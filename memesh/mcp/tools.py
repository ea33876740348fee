"""The MCP tool registry: what a tool is, how it is listed, and how a call becomes a result.

A :class:`Tool` is a plain definition (name, title, description, JSON Schemas,
annotations) plus a handler ``handler(ctx, arguments) -> structured result``. Tool
modules define ``TOOLS: tuple[Tool, ...]``; adding a module to :data:`TOOL_MODULES` is
the one line that makes its tools appear in every session. The order of that tuple, then
of each module's ``TOOLS``, is the stable order of ``tools/list``.

Wire shape of a tool result (``tools/call``)::

    {"content": [{"type": "text", "text": "<the structured result as JSON>"}],
     "structuredContent": {...}}                                  # success
    {"content": [{"type": "text", "text": "<what was wrong, naming the field>"}],
     "isError": true}                                             # the tool failed

Arguments are checked against the tool's ``inputSchema`` before the handler runs; a
:class:`~memesh.errors.MemeshError` from the handler (ValidationError, NotFound, …)
becomes an ``isError`` result whose text is the error's message. Any other exception is
a bug and propagates to the session, which answers with a JSON-RPC internal error.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from memesh.errors import MemeshError, ValidationError
from memesh.mcp import schema
from memesh.mcp.events import TOOLS as TOOLS_TOPIC
from memesh.mcp.events import EventBus

#: Modules whose ``TOOLS`` make up the default registry, in listing order.
TOOL_MODULES: tuple[str, ...] = (
    "memesh.mcp.graph_tools",
    "memesh.mcp.memory_tools",
    "memesh.a2a.tools",
)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

Handler = Callable[["ToolContext", dict[str, Any]], dict[str, Any]]


def _no_progress(progress: float, total: float | None = None, message: str | None = None) -> None:
    return None


def _no_log(level: str, data: Any) -> None:
    return None


@dataclasses.dataclass(frozen=True)
class ToolContext:
    """What a handler may use besides its arguments.

    ``services`` holds the shared objects (``.graph``, later ``.memory``, ``.a2a``);
    ``context`` the calling window's facts (``cwd``, ``pid``). ``progress`` and ``log``
    reach the client only if it asked for them; ``cancelled`` is set when the client
    gives up on the call (long handlers should check it between steps).
    """

    services: Any
    context: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    cancelled: threading.Event = dataclasses.field(default_factory=threading.Event)
    progress: Callable[..., None] = _no_progress
    log: Callable[[str, Any], None] = _no_log


@dataclasses.dataclass(frozen=True)
class Tool:
    """One tool. ``requires`` names the services it needs (listed only when all exist);
    ``publishes`` the event topics a successful call may change (e.g. ``"graph"``). The
    stores announce those changes themselves after commit (:mod:`memesh.store.changes`);
    the field documents the tool and keeps read-only tools honest."""

    name: str
    title: str
    description: str
    input_schema: Mapping[str, Any]
    handler: Handler
    output_schema: Mapping[str, Any] | None = None
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    requires: tuple[str, ...] = ()
    publishes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(f"tool name {self.name!r} must match {NAME_PATTERN.pattern}")
        if not self.description.strip() or not self.title.strip():
            raise ValueError(f"tool {self.name}: title and description must not be empty")
        if self.input_schema.get("type") != "object":
            raise ValueError(f"tool {self.name}: inputSchema must have type 'object'")
        schema.check_schema(self.input_schema, f"{self.name}.inputSchema")
        if self.output_schema is not None:
            if self.output_schema.get("type") != "object":
                raise ValueError(f"tool {self.name}: outputSchema must have type 'object'")
            schema.check_schema(self.output_schema, f"{self.name}.outputSchema")
        if self.read_only and (self.destructive or self.publishes):
            raise ValueError(f"tool {self.name}: a read-only tool cannot be destructive or publish changes")

    def definition(self) -> dict[str, Any]:
        """The tool as ``tools/list`` describes it."""
        out: dict[str, Any] = {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": dict(self.input_schema),
            "annotations": {
                "title": self.title,
                "readOnlyHint": self.read_only,
                "destructiveHint": self.destructive,
                "idempotentHint": self.idempotent,
                "openWorldHint": False,  # memesh only touches its own store
            },
        }
        if self.output_schema is not None:
            out["outputSchema"] = dict(self.output_schema)
        return out

    def available(self, services: Any) -> bool:
        return all(getattr(services, name, None) is not None for name in self.requires)


def text_json(value: Any) -> str:
    """The compact JSON text that mirrors ``structuredContent`` in the content block."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def success(structured: dict[str, Any]) -> dict[str, Any]:
    """A successful tool result: structured content plus the same JSON as text."""
    return {"content": [{"type": "text", "text": text_json(structured)}], "structuredContent": structured}


def failure(message: str) -> dict[str, Any]:
    """A tool result that reports a failure to the model (not a protocol error)."""
    return {"content": [{"type": "text", "text": message}], "isError": True}


def call_tool(tool: Tool, ctx: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    """Validate ``arguments``, run the handler, and shape the MCP result."""
    try:
        schema.validate(arguments, tool.input_schema)
    except ValidationError as exc:
        return failure(f"Invalid arguments for {tool.name}: {exc}")
    try:
        structured = tool.handler(ctx, arguments)
    except MemeshError as exc:
        return failure(f"{tool.name} failed: {exc}")
    return success(structured)


class ToolRegistry:
    """The tools a session offers, in a stable order; thread-safe.

    Registering or removing a tool after sessions started publishes ``"tools"`` to
    :meth:`subscribe`-rs, which send ``notifications/tools/list_changed``.
    """

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._lock = threading.Lock()
        self._tools: dict[str, Tool] = {}
        self._changes = EventBus()
        for tool in tools:
            self._add(tool)

    def _add(self, tool: Tool) -> None:
        with self._lock:
            if tool.name in self._tools:
                raise ValueError(f"a tool named {tool.name!r} is already registered")
            self._tools[tool.name] = tool

    def register(self, tool: Tool) -> None:
        """Add a tool at the end of the list (ValueError if the name is taken)."""
        self._add(tool)
        self._changes.publish(TOOLS_TOPIC)

    def unregister(self, name: str) -> bool:
        """Remove a tool; returns whether it was there."""
        with self._lock:
            removed = self._tools.pop(name, None) is not None
        if removed:
            self._changes.publish(TOOLS_TOPIC)
        return removed

    def get(self, name: str, services: Any = None) -> Tool | None:
        """The tool called ``name`` (if ``services`` is given: only if available with them)."""
        with self._lock:
            tool = self._tools.get(name)
        if tool is not None and services is not None and not tool.available(services):
            return None
        return tool

    def tools(self, services: Any = None) -> list[Tool]:
        """All tools in listing order (if ``services`` is given: those available with them)."""
        with self._lock:
            tools = list(self._tools.values())
        return [t for t in tools if services is None or t.available(services)]

    def subscribe(self, callback: Callable[[str, "str | None"], None]) -> Callable[[], None]:
        """Be told (``callback("tools", None)``) when the list changes; returns the unsubscriber."""
        return self._changes.subscribe(callback)


def read_only_tool_names(registry: ToolRegistry | None = None) -> list[str]:
    """Names of the tools annotated read-only (safe to resend after a lost connection)."""
    return sorted(t.name for t in (registry or default_registry()).tools() if t.read_only)


def load_tools(modules: Iterable[str] = TOOL_MODULES) -> list[Tool]:
    """The ``TOOLS`` of each module, in order."""
    found: list[Tool] = []
    for name in modules:
        found.extend(importlib.import_module(name).TOOLS)
    return found


_default: ToolRegistry | None = None
_default_lock = threading.Lock()


def default_registry() -> ToolRegistry:
    """The process-wide registry built from :data:`TOOL_MODULES` (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ToolRegistry(load_tools())
        return _default
