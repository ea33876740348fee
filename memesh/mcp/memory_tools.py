"""The memory tools (``remember``, ``recall``, ``forget``, ``list_memories``) and the reader
of the ``memesh://memory/recent`` resource.

Each call works in one project: the one named by the ``project`` argument if given, else
the calling window's (from the cwd and roots its proxy forwarded, see
:mod:`memesh.store.project`). A window that forwarded neither works in the ``""`` scope.
``recall`` and ``list_memories`` reach every project only with ``all_projects: true``;
each memory says which project it belongs to.

Handlers pass arguments to ``services.memory`` (a :class:`memesh.store.memory.MemoryStore`
or a proxy of one) and return plain data; the store publishes the :data:`MEMORY` topic,
with the project written to, after each write.
"""
from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from typing import Any

from memesh.errors import ValidationError
from memesh.mcp.events import MEMORY
from memesh.mcp.graph_tools import ORIGIN
from memesh.mcp.tools import Tool, ToolContext
from memesh.store import memory as store
from memesh.store.project import MAX_PATH_CHARS, project_for

RECENT_URI = "memesh://memory/recent"
RECENT_COUNT = 20                       # memories in the resource: a glance, not an archive


def window_project(context: Mapping[str, Any], override: str | None = None) -> str:
    """The project a call works in: ``override`` (resolved like a cwd), else the window's."""
    cwd = context.get("cwd")
    cwd = cwd if isinstance(cwd, str) and cwd.startswith("/") else None
    if override is not None:
        if override == "":
            return ""
        if not override.startswith("/"):
            if cwd is None:
                raise ValidationError(f"project: {override!r} is relative and this window sent no "
                                      f"working directory; give an absolute path")
            override = posixpath.join(cwd, override)
        return project_for(override)
    roots = context.get("roots")
    roots = roots if isinstance(roots, (list, tuple)) else None
    try:
        return project_for(cwd or "", roots)
    except ValidationError:
        return ""  # neither a usable root nor a cwd: the window's memories have no project


def read_recent(services: Any, context: Mapping[str, Any]) -> str:
    """The ``memesh://memory/recent`` document: the window's project and its newest memories."""
    project = window_project(context)
    page = services.memory.list(project=project, limit=RECENT_COUNT)
    document = {"project": project, "memories": page["memories"]}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


# -- schemas --------------------------------------------------------------------------
def _obj(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


_TAG = {"type": "string", "minLength": 1, "maxLength": store.MAX_LABEL_CHARS}
_TAGS = {"type": "array", "items": _TAG, "maxItems": store.MAX_TAGS,
         "description": "Short labels, e.g. ['ci', 'flaky-test']; matched case-insensitively"}
_KIND = {"type": "string", "minLength": 1, "maxLength": store.MAX_LABEL_CHARS,
         "description": "What sort of memory: 'note' (default), 'decision', 'fact', 'todo', ..."}
_PROJECT = {"type": "string", "maxLength": MAX_PATH_CHARS,
            "description": "Directory of the project to use instead of this window's own (its git "
                           "work tree is found the same way); '' means memories without a project"}
_ALL = {"type": "boolean", "description": "Also look in every other project (default false); "
                                          "this project's memories still come first"}

MEMORY_OUT = _obj({
    "id": {"type": "integer", "description": "Pass to forget to delete it"},
    "content": {"type": "string"},
    "kind": {"type": "string"},
    "tags": {"type": "array", "items": {"type": "string"}},
    "importance": {"type": ["number", "null"]},
    "project": {"type": "string", "description": "Directory of the project it belongs to ('' for none)"},
    "createdAt": {"type": "string", "description": "ISO 8601, UTC"},
    "updatedAt": {"type": "string", "description": "ISO 8601, UTC; set again when remembered again"},
    "score": {"type": "number", "description": "Ranking score of a recall with a query (higher is better)"},
}, ["id", "content", "kind", "tags", "importance", "project", "createdAt", "updatedAt"])

_MEMORIES = {"type": "array", "items": MEMORY_OUT}


# -- handlers -------------------------------------------------------------------------
def _memory(ctx: ToolContext) -> Any:
    return ctx.services.memory


def _origin(args: dict[str, Any]) -> dict[str, Any]:
    return {"origin": args["origin"]} if "origin" in args else {}


def _remember(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    project = window_project(ctx.context, args.get("project"))
    memory = _memory(ctx).remember(args["content"], tags=args.get("tags"), kind=args.get("kind", store.DEFAULT_KIND),
                                   importance=args.get("importance"), project=project)
    ctx.log("info", f"remember: memory {memory['id']} {'stored' if memory['created'] else 'already known'}")
    return memory


def _recall(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return _memory(ctx).recall(args["query"], project=window_project(ctx.context, args.get("project")),
                               all_projects=args.get("all_projects", False), tags=args.get("tags"),
                               kind=args.get("kind"), limit=args.get("limit"), cursor=args.get("cursor"),
                               **_origin(args))


def _forget(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    outcome = _memory(ctx).forget(args["ids"])
    ctx.log("info", f"forget: deleted {outcome['deleted']} of {len(args['ids'])}")
    return outcome


def _list(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return _memory(ctx).list(project=window_project(ctx.context, args.get("project")),
                             all_projects=args.get("all_projects", False), tags=args.get("tags"),
                             kind=args.get("kind"), limit=args.get("limit"), cursor=args.get("cursor"), **_origin(args))


TOOLS: tuple[Tool, ...] = (
    Tool(
        name="remember", title="Remember",
        description=(
            "Save a short piece of knowledge worth keeping across sessions: a decision and its "
            "reason, a fact about this codebase, a lesson from a failure. It is stored for the "
            "current project and shared with every session of this user. Saving the same text "
            "again in the same project does not duplicate it: the existing memory is returned "
            "with created=false, its tags are merged and it counts as fresh."),
        input_schema=_obj({
            "content": {"type": "string", "minLength": 1, "maxLength": store.MAX_CONTENT_CHARS,
                        "description": "The memory, one or a few self-contained sentences"},
            "tags": _TAGS,
            "kind": _KIND,
            "importance": {"type": "number", "minimum": 0, "maximum": 1,
                           "description": "0 (trivia) to 1 (crucial); ranks higher in recall. Default 0.5"},
            "project": _PROJECT,
        }, ["content"]),
        output_schema=_obj({**MEMORY_OUT["properties"], "created": {
            "type": "boolean", "description": "false when this text was already remembered here"}},
            [*MEMORY_OUT["required"], "created"]),
        handler=_remember, idempotent=True, requires=("memory",), publishes=(MEMORY,),
    ),
    Tool(
        name="recall", title="Recall memories",
        description=(
            "Find what was remembered about something: memories matching any of the query's "
            "words, best first. Ranking favours strong text matches, then recent and important "
            "memories. Only the current project is searched unless all_projects is true (its "
            "memories still come first; each result names its project). An empty query returns "
            "the newest memories."),
        input_schema=_obj({
            "query": {"type": "string", "maxLength": store.MAX_QUERY_CHARS,
                      "description": "Words to look for; '' for the newest memories"},
            "tags": {**_TAGS, "description": "Only memories that carry all of these tags"},
            "kind": {**_KIND, "description": "Only memories of this kind"},
            "limit": {"type": "integer", "minimum": 1, "maximum": store.MAX_RECALL_LIMIT,
                      "description": f"Most memories to return (default {store.DEFAULT_RECALL_LIMIT})"},
            "cursor": {"type": "string", "maxLength": 4096,
                       "description": "nextCursor from the previous result of the same call"},
            "project": _PROJECT,
            "all_projects": _ALL,
            "origin": ORIGIN,
        }, ["query"]),
        output_schema=_obj({
            "memories": _MEMORIES,
            "project": {"type": "string", "description": "The project searched first"},
            "allProjects": {"type": "boolean"},
            "omitted": {"type": "integer", "minimum": 1,
                        "description": "Matches left out to keep the result small; nextCursor continues with them"},
            "nextCursor": {"type": "string", "description": "Present with omitted: pass it back as cursor"},
        }, ["memories", "project", "allProjects"]),
        handler=_recall, read_only=True, idempotent=True, requires=("memory",),
    ),
    Tool(
        name="forget", title="Forget memories",
        description=(
            "Delete memories for good, by the ids that recall or list_memories returned (in any "
            "project). Ids that do not exist are ignored; the result says how many were deleted."),
        input_schema=_obj({
            "ids": {"type": "array", "items": {"type": "integer"}, "minItems": 1,
                    "maxItems": store.MAX_IDS, "description": "Ids of the memories to delete"},
        }, ["ids"]),
        output_schema=_obj({"deleted": {"type": "integer", "minimum": 0}}, ["deleted"]),
        handler=_forget, destructive=True, idempotent=True, requires=("memory",), publishes=(MEMORY,),
    ),
    Tool(
        name="list_memories", title="List memories",
        description=(
            "Browse the memories of the current project, newest first, optionally only those "
            "with given tags or of one kind (all projects with all_projects). When the result "
            "has nextCursor, call again with cursor set to it for the next page. Use recall to "
            "search by content."),
        input_schema=_obj({
            "tags": {**_TAGS, "description": "Only memories that carry all of these tags"},
            "kind": {**_KIND, "description": "Only memories of this kind"},
            "limit": {"type": "integer", "minimum": 1, "maximum": store.MAX_LIST_LIMIT,
                      "description": f"Most memories in this page (default {store.DEFAULT_LIST_LIMIT})"},
            "cursor": {"type": "string", "maxLength": 4096,
                       "description": "nextCursor from the previous page of the same call"},
            "project": _PROJECT,
            "all_projects": _ALL,
            "origin": ORIGIN,
        }, []),
        output_schema=_obj({
            "memories": _MEMORIES,
            "nextCursor": {"type": "string", "description": "Present when more memories exist: pass it back as cursor"},
        }, ["memories"]),
        handler=_list, read_only=True, idempotent=True, requires=("memory",),
    ),
)
