"""MCP resources: read-only documents a client can list, read and (handshake era) watch.

A :class:`Resource` names its URI, the services it needs, the event topic that means it
changed (sessions turn that topic into ``notifications/resources/updated`` for
subscribers) and a reader returning its text. :data:`RESOURCES` is the registry; a later
resource (the A2A inbox) is one more entry.

Wire shapes::

    resources/list  -> {"resources": [{"uri", "name", "title", "description", "mimeType"}]}
    resources/read  -> {"contents": [{"uri", "mimeType", "text"}]}

``memesh://graph`` is the graph's first page (the same page ``read_graph`` returns, with
``nextCursor`` when there is more) preceded by the graph's counts.
``memesh://memory/recent`` is the newest memories of the reading window's project; being
``contextual``, its reader also gets the window's context (cwd, roots), and a subscribed
window is told only of changes in its own project (``project_of``).
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any

from memesh.mcp import memory_tools
from memesh.mcp.events import GRAPH

GRAPH_URI = "memesh://graph"


@dataclasses.dataclass(frozen=True)
class Resource:
    uri: str
    name: str
    title: str
    description: str
    mime_type: str
    reader: Callable[..., str]
    requires: tuple[str, ...] = ()
    topic: str | None = None
    contextual: bool = False  # reader(services, context) rather than reader(services)
    project_of: Callable[[Mapping[str, Any]], str] | None = None  # the window's project, for project-scoped topics

    def concerns(self, context: Mapping[str, Any], project: str | None) -> bool:
        """Whether a change of this resource's topic in ``project`` (None: any) changes it for this window."""
        if project is None or self.project_of is None:
            return True
        try:
            return self.project_of(context) == project
        except Exception:   # cannot tell which project the window is in: tell it rather than not
            return True

    def available(self, services: Any) -> bool:
        return all(getattr(services, name, None) is not None for name in self.requires)

    def definition(self) -> dict[str, Any]:
        return {"uri": self.uri, "name": self.name, "title": self.title,
                "description": self.description, "mimeType": self.mime_type}


def _read_graph(services: Any) -> str:
    graph = services.graph
    document: dict[str, Any] = {}
    stats = getattr(graph, "stats", None)
    if callable(stats):
        document["counts"] = stats()
    document.update(graph.read_graph())
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


RESOURCES: tuple[Resource, ...] = (
    Resource(
        uri=GRAPH_URI,
        name="graph",
        title="Knowledge graph",
        description="Counts of the shared knowledge graph and its first page of entities and "
                    "relations as JSON; use the read_graph tool with its cursor for the rest.",
        mime_type="application/json",
        reader=_read_graph,
        requires=("graph",),
        topic=GRAPH,
    ),
    Resource(
        uri=memory_tools.RECENT_URI,
        name="recent-memories",
        title="Recent memories",
        description=f"The {memory_tools.RECENT_COUNT} newest memories of this window's project as "
                    "JSON; use the recall tool to search them.",
        mime_type="application/json",
        reader=memory_tools.read_recent,
        requires=("memory",),
        topic=memory_tools.MEMORY,
        contextual=True,
        project_of=memory_tools.window_project,
    ),
    Resource(
        uri="memesh://a2a/inbox",
        name="a2a-inbox",
        title="A2A inbox",
        description="Tasks other agents gave this window that wait for its answer, oldest first, as JSON; "
                    "answer each with the a2a_reply tool. Subscribe to be told when it changes.",
        mime_type="application/json",
        reader=lambda services, context: _read_inbox(services, context),
        requires=("a2a",),
        contextual=True,
    ),
)


def _read_inbox(services: Any, context: Mapping[str, Any]) -> str:
    from memesh.a2a.tools import read_inbox

    return read_inbox(services, context)


def available(services: Any) -> list[Resource]:
    """The resources these services can serve, in listing order."""
    return [r for r in RESOURCES if r.available(services)]


def find(services: Any, uri: str) -> Resource | None:
    """The resource at ``uri``, or None if there is none (or its services are absent)."""
    return next((r for r in available(services) if r.uri == uri), None)


def read(resource: Resource, services: Any, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``resources/read`` result for ``resource``, read for the window described by ``context``."""
    text = resource.reader(services, context or {}) if resource.contextual else resource.reader(services)
    return {"contents": [{"uri": resource.uri, "mimeType": resource.mime_type, "text": text}]}
