"""The nine knowledge-graph tools, drop-in compatible with the reference memory server.

Names, argument names and result shapes follow the reference server
(``create_entities``, ``create_relations``, ``add_observations``, ``delete_entities``,
``delete_observations``, ``delete_relations``, ``read_graph``, ``search_nodes``,
``open_nodes``). memesh adds, without breaking callers of the reference:

* ``limit`` and ``cursor`` on the three reads; a page that is not the last carries
  ``nextCursor`` (pass it back as ``cursor``), and pages stay under the client's
  output ceiling (the store sizes them);
* ``deleted`` (a count) on the results of the deletions;
* ``omittedRelations`` on a read page that had to leave relations out (its ``nextCursor``
  continues with them);
* a bounded echo: the writes repeat what they created in full while that takes at most
  :data:`MAX_ECHO_CHARS` characters of JSON (any normal call); beyond that they list the
  created items without their contents, as many as fit, plus ``created`` (or ``added``),
  the full count, and a ``note`` saying so — the client was the one who sent it all.

Handlers pass arguments straight to ``services.graph`` (a
:class:`memesh.store.graph.KnowledgeGraph` or a proxy of one) and return plain data.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from memesh.mcp.events import GRAPH
from memesh.mcp.tools import Tool, ToolContext
from memesh.store.graph import MAX_LIMIT, MAX_NAME_CHARS

MAX_BATCH = 1000       # items in one write call; larger imports go through `memesh import`
MAX_OBSERVATION_CHARS = 20_000
MAX_QUERY_CHARS = 1000
MAX_ECHO_CHARS = 20_000   # a write's result repeats its input in full up to this size (compact JSON, ASCII escapes)

_LABEL = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS}


def _label(description: str) -> dict[str, Any]:
    return {**_LABEL, "description": description}


def _strings(description: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item, "maxItems": MAX_BATCH, "description": description}


def _obj(properties: dict[str, Any], required: list[str], description: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    if description:
        out["description"] = description
    return out


_OBSERVATION = {"type": "string", "maxLength": MAX_OBSERVATION_CHARS, "description": "One fact, as a short sentence"}

ENTITY_IN = _obj({
    "name": _label("Unique name of the entity, e.g. 'Alice Chen' or 'memesh'"),
    "entityType": _label("Kind of entity, e.g. 'person', 'project', 'concept'"),
    "observations": _strings("Facts about the entity", _OBSERVATION),
}, ["name", "entityType", "observations"])

RELATION_IN = _obj({
    "from": _label("Name of the entity the relation starts at"),
    "to": _label("Name of the entity the relation points to"),
    "relationType": _label("Verb phrase in active voice, e.g. 'works_on'"),
}, ["from", "to", "relationType"])

ENTITY_OUT = _obj({
    "name": {"type": "string"},
    "entityType": {"type": "string"},
    "observations": {"type": "array", "items": {"type": "string"}},
}, ["name", "entityType", "observations"])

RELATION_OUT = _obj({
    "from": {"type": "string"},
    "to": {"type": "string"},
    "relationType": {"type": "string"},
}, ["from", "to", "relationType"])

PAGE_OUT = _obj({
    "entities": {"type": "array", "items": ENTITY_OUT},
    "relations": {"type": "array", "items": RELATION_OUT},
    "nextCursor": {"type": "string", "description": "Present when more results exist: pass it back as cursor"},
    "omittedRelations": {"type": "integer", "minimum": 0},
}, ["entities", "relations"])

_ECHO_OUT = {"note": {"type": "string", "description": "Present when the result lists the items in brief"}}
_CREATED_OUT = {"created": {"type": "integer", "minimum": 0, "description": "How many were created, when listed in brief"},
                **_ECHO_OUT}

DELETED_OUT = _obj({
    "success": {"type": "boolean"},
    "message": {"type": "string"},
    "deleted": {"type": "integer", "minimum": 0},
}, ["success", "message"])

_LIMIT = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
          "description": "Most items to return in this page (the page may hold fewer to stay small)"}
_CURSOR = {"type": "string", "maxLength": 4096, "description": "nextCursor from the previous page of the same call"}


# Who wrote it (memesh.store.origin): only what one person or machine wrote (both backends record it).
ORIGIN = {"type": "object", "additionalProperties": False,
          "properties": {"user": {"type": "string", "minLength": 1, "maxLength": 255},
                         "host": {"type": "string", "minLength": 1, "maxLength": 255}},
          "description": "Only what this user and/or host wrote (memesh records who wrote each entity, observation and memory)"}


def _graph(ctx: ToolContext) -> Any:
    return ctx.services.graph


def _chars(value: Any) -> int:
    """Characters of compact JSON with ASCII escapes (non-Latin text counts more, as in tokens)."""
    return len(json.dumps(value, separators=(",", ":")))


def bounded_echo(items: list[dict[str, Any]], brief: Callable[[dict[str, Any]], dict[str, Any]],
                 limit: int = MAX_ECHO_CHARS) -> tuple[list[dict[str, Any]], bool]:
    """``(items, True)`` if they take at most ``limit`` characters of JSON; else ``(listed, False)``:
    the first items, each reduced by ``brief``, that fit in ``limit``."""
    if _chars(items) <= limit:
        return items, True
    listed, used = [], 2   # the brackets; each item adds itself and a comma
    for item in items:
        short = brief(item)
        if used + _chars(short) + 1 > limit:
            break
        listed.append(short)
        used += _chars(short) + 1
    return listed, False


def _echo(key: str, items: list[dict[str, Any]], brief: Callable[[dict[str, Any]], dict[str, Any]],
          count_key: str, count: int, what: str) -> dict[str, Any]:
    listed, complete = bounded_echo(items, brief)
    out: dict[str, Any] = {key: listed}
    if not complete:
        out[count_key] = count
        out["note"] = (f"{count} {what}; to keep this result small it lists {len(listed)} of {len(items)} "
                       f"without their contents (open_nodes or search_nodes shows them)")
    return out


def _create_entities(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    created = _graph(ctx).create_entities(args["entities"])
    ctx.log("info", f"create_entities: created {len(created)} of {len(args['entities'])}")
    return _echo("entities", created, lambda e: {**e, "observations": []}, "created", len(created),
                 "entities created")


def _create_relations(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    created = _graph(ctx).create_relations(args["relations"])
    ctx.log("info", f"create_relations: created {len(created)} of {len(args['relations'])}")
    return _echo("relations", created, lambda r: r, "created", len(created), "relations created")


def _add_observations(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    results = _graph(ctx).add_observations(args["observations"])
    added = sum(len(r["addedObservations"]) for r in results)
    ctx.log("info", f"add_observations: added {added} observation(s)")
    return _echo("results", results, lambda r: {**r, "addedObservations": []}, "added", added,
                 "observations added")


def _deleted(what: str, outcome: Any) -> dict[str, Any]:
    count = outcome.get("deleted") if isinstance(outcome, dict) else None
    out: dict[str, Any] = {"success": True, "message": f"{what} deleted successfully"}
    if isinstance(count, int):
        out["deleted"] = count
    return out


def _delete_entities(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return _deleted("Entities", _graph(ctx).delete_entities(args["entityNames"]))


def _delete_observations(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return _deleted("Observations", _graph(ctx).delete_observations(args["deletions"]))


def _delete_relations(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return _deleted("Relations", _graph(ctx).delete_relations(args["relations"]))


def _read_graph(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return _graph(ctx).read_graph(limit=args.get("limit"), cursor=args.get("cursor"))


def _search_nodes(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    origin = {"origin": args["origin"]} if "origin" in args else {}  # a graph without origins need not take it
    return _graph(ctx).search_nodes(args["query"], limit=args.get("limit"), cursor=args.get("cursor"), **origin)


def _open_nodes(ctx: ToolContext, args: dict[str, Any]) -> dict[str, Any]:
    return _graph(ctx).open_nodes(args["names"], limit=args.get("limit"), cursor=args.get("cursor"))


def _write(name: str, title: str, description: str, properties: dict[str, Any], handler: Any,
           output: dict[str, Any], destructive: bool = False) -> Tool:
    return Tool(
        name=name, title=title, description=description,
        input_schema=_obj(properties, list(properties)), output_schema=output, handler=handler,
        read_only=False, destructive=destructive, idempotent=True,
        requires=("graph",), publishes=(GRAPH,),
    )


def _read(name: str, title: str, description: str, properties: dict[str, Any], required: list[str],
          handler: Any) -> Tool:
    return Tool(
        name=name, title=title, description=description,
        input_schema=_obj({**properties, "limit": _LIMIT, "cursor": _CURSOR}, required),
        output_schema=PAGE_OUT, handler=handler,
        read_only=True, destructive=False, idempotent=True, requires=("graph",),
    )


TOOLS: tuple[Tool, ...] = (
    _write(
        "create_entities", "Create entities",
        "Add entities (people, projects, concepts, ...) to the knowledge graph shared by all of "
        "this user's sessions. Each has a unique name, a type and a list of observations. A name "
        "that already exists is left as it is; the result lists only the entities created.",
        {"entities": _strings("Entities to create", ENTITY_IN)},
        _create_entities, _obj({"entities": {"type": "array", "items": ENTITY_OUT}, **_CREATED_OUT}, ["entities"]),
    ),
    _write(
        "create_relations", "Create relations",
        "Link entities with directed, typed relations written in active voice (from 'Alice' "
        "relationType 'works_on' to 'memesh'). Existing relations are skipped; the result lists "
        "those created. An endpoint does not have to exist yet.",
        {"relations": _strings("Relations to create", RELATION_IN)},
        _create_relations, _obj({"relations": {"type": "array", "items": RELATION_OUT}, **_CREATED_OUT}, ["relations"]),
    ),
    _write(
        "add_observations", "Add observations",
        "Append facts to existing entities. Facts already recorded are skipped; the result lists "
        "what was added to each entity. If any entity does not exist, nothing is added.",
        {"observations": _strings("Facts to add, grouped by entity", _obj({
            "entityName": _label("Name of an existing entity"),
            "contents": _strings("Facts to add to it", _OBSERVATION),
        }, ["entityName", "contents"]))},
        _add_observations,
        _obj({"results": {"type": "array", "items": _obj({
            "entityName": {"type": "string"},
            "addedObservations": {"type": "array", "items": {"type": "string"}},
        }, ["entityName", "addedObservations"])},
            "added": {"type": "integer", "minimum": 0, "description": "How many were added, when listed in brief"},
            **_ECHO_OUT}, ["results"]),
    ),
    _write(
        "delete_entities", "Delete entities",
        "Remove entities by name, together with their observations and every relation that "
        "touches them. Names that do not exist are ignored.",
        {"entityNames": _strings("Names of the entities to delete", _LABEL)},
        _delete_entities, DELETED_OUT, destructive=True,
    ),
    _write(
        "delete_observations", "Delete observations",
        "Remove specific facts from entities, matched by exact text. Unknown entities and texts "
        "are ignored.",
        {"deletions": _strings("Facts to remove, grouped by entity", _obj({
            "entityName": _label("Name of the entity"),
            "observations": _strings("Exact texts to remove", {"type": "string"}),
        }, ["entityName", "observations"]))},
        _delete_observations, DELETED_OUT, destructive=True,
    ),
    _write(
        "delete_relations", "Delete relations",
        "Remove relations that match from, to and relationType exactly. Unknown relations are "
        "ignored.",
        {"relations": _strings("Relations to delete", RELATION_IN)},
        _delete_relations, DELETED_OUT, destructive=True,
    ),
    _read(
        "read_graph", "Read the graph",
        "Read the whole knowledge graph a page at a time: entities sorted by name, then "
        "relations. When the result has nextCursor, call again with cursor set to it to get "
        "the rest; prefer search_nodes when looking for something specific.",
        {}, [], _read_graph,
    ),
    _read(
        "search_nodes", "Search the graph",
        "Find entities whose name, type or observations match the query (words, or a part of "
        "a word), best matches first, with the relations that touch them. Paged like read_graph.",
        {"query": {"type": "string", "maxLength": MAX_QUERY_CHARS, "description": "Words or text to look for"},
         "origin": ORIGIN},
        ["query"], _search_nodes,
    ),
    _read(
        "open_nodes", "Open entities",
        "Fetch entities by exact name, with the relations that touch them. Names that do not "
        "exist are ignored. Paged like read_graph.",
        {"names": _strings("Names of the entities to fetch", _LABEL)},
        ["names"], _open_nodes,
    ),
)
