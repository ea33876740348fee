"""The knowledge graph: entities, their observations and the relations between them.

This module owns the graph's semantics, which follow the reference MCP memory server so
that memesh is a drop-in replacement, and what memesh adds: ranked search, pages that stay
under the client's output ceiling, atomic writes, and JSONL import/export.

Shapes (plain data only, because :class:`KnowledgeGraph` is served over a manager socket)::

    Entity   {"name": str, "entityType": str, "observations": [str]}
    Relation {"from": str, "to": str, "relationType": str}
    Page     {"entities": [Entity], "relations": [Relation], "nextCursor"?: str,
              "omittedRelations"?: int}

Decisions where the reference leaves room:

* A relation may name an entity that does not exist yet (as in the reference). The name is
  kept as a hidden stub row, so the relation survives until that entity is created, and
  ``delete_entities`` of that name removes it. Stubs never appear as entities.
* Duplicates inside one call are dropped, first one wins: entities by name, relations by
  (from, to, relationType), observations by text.
* ``search_nodes`` and ``open_nodes`` return the relations with at least one end among the
  returned entities (the reference's current rule). ``read_graph`` pages through all
  entities (by name), then all relations, so following ``nextCursor`` to the end yields
  exactly the whole graph, each item once.
* Deletions return ``{"deleted": n}``: entities, observations or relations removed.
* A page holds at most ``limit`` items and at most :data:`MAX_RESULT_CHARS` characters of
  JSON with ASCII escapes, which keeps it under the client's 25,000-token tool-output
  ceiling even when the MCP layer pretty-prints it. An entity too large for one page (its
  observations, and in ``search_nodes``/``open_nodes`` the relations that touch it) is
  spread over pages: a page shows the observations that fit and a final "[memesh: …]"
  line, then the relations that fit and ``omittedRelations`` (how many of that entity's
  relations are still to come), and its ``nextCursor`` continues the same entity: the
  next page repeats the entity with its further observations (only while some are left),
  then its further relations. Following the cursors therefore reaches every observation
  and every relation. Only one observation that is alone larger than a page is cut (its
  beginning and "…[cut]").
* ``import_jsonl`` adds to the graph with ``create_entities``/``create_relations``
  semantics (existing names are kept as they are), all or nothing.

Search order
------------
``search_nodes`` finds an entity by the query's words (runs of letters and digits, each
searched as a quoted FTS5 string, so no input is FTS syntax) or by the whole query as a
case-insensitive substring of its name, type or an observation (the reference's rule).
Each entity is listed once, where it is first found, in three passes:

1. entities with every word (skipped when the query has no words);
2. entities with any word (only for a query of several words);
3. substring matches, in id order (by name where SQLite lacks the trigram tokenizer).

A word pass with at most :data:`RANK_WINDOW` (1,000) matches lists them all by bm25
(weights: name 10, entityType 3, observations 1), ties by id. A pass with more matches
would spend ~1 µs a match on bm25 (5 ms for a common word at 100,000 entities), so it is
ranked in bounded parts instead, which approximates bm25:

a. the matches with a query word in their name (in pass 1, with every word anywhere and
   at least one in the name), by bm25 over their name hits alone (only occurrences in
   the name count);
b. then the pass's other matches: the newest RANK_WINDOW matches of the pass by bm25
   (name matches among them were listed in a. already), then the older ones, newest first
   and unranked.

If a. holds more than RANK_WINDOW entities, it is split the same way: its newest
RANK_WINDOW by bm25, then its older ones newest first. "Newest" means the highest ids,
that is the most recently created entities (an entity first named by a relation keeps
the id of that stub). So in a large pass a name match always comes before a match in
type or observations only, and a strong type or observation match that is older than
the newest RANK_WINDOW matches comes after them, unranked.

An ``origin`` filter (entities created by one user and/or host, memesh.store.origin)
applies inside every pass, so the passes, windows and pages are those of the entities it
keeps; without one the queries are the same as before it existed.

The order is fixed for a given graph, and ``nextCursor`` is an offset into it: following
the cursors lists every match once, the words' passes first, then the substring pass.
A write between two pages may shift the order under the cursor (as with any offset).
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import itertools
import json
import os
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any

from memesh.errors import NotFound, ValidationError
from memesh.store.changes import GRAPH, OnChange, tracked_write
from memesh.store.db import Database, fold_case, search_index_insert
from memesh.store.origin import check_origin
from memesh.store.pages import ENVELOPE as _ENVELOPE
from memesh.store.pages import MAX_RESULT_CHARS
from memesh.store.pages import fill_entity as _fill_entity
from memesh.store.pages import is_graph_position as _is_graph_position
from memesh.store.pages import is_offset as _is_offset
from memesh.store.pages import cursor_position as _position
from memesh.store.pages import size as _size
from memesh.store.pages import split_offset as _offset
from memesh.store.rows import GraphRows, add_graph_sqlite, rows_from_parsed

DEFAULT_PAGE_LIMIT = 200    # read_graph / open_nodes items per page
DEFAULT_SEARCH_LIMIT = 25   # ranked: the first results are the ones that matter
MAX_LIMIT = 1000
MAX_NAME_CHARS = 1000       # names and types are labels; this keeps one entity printable

_WORD = re.compile(r"[^\W_]+")
_IDS = "SELECT value FROM json_each(?)"
# Ranked word search; "Search order" in the module docstring says what these do.
RANK_WINDOW = 1000  # bm25 costs ~1 µs a match: the most a ranked part ranks
_BM25 = "bm25(entity_fts, 10.0, 3.0, 1.0)"  # weights of name, entityType, observations
# {only} is where an origin filter goes (_Only), placed for its parameters to follow the
# first one; it is empty without a filter, leaving these queries as they are.
_RANKED = f"SELECT rowid FROM entity_fts WHERE entity_fts MATCH ?{{only}} ORDER BY {_BM25}, rowid LIMIT ?"
# Up to window + 1 matches ranked, each row with how many those are (more than the window:
# not all matches). The oldest, as FTS5 walks forward fastest; for passes costly to walk.
_RANKED_COUNTED = (f"SELECT id, count(*) OVER () FROM (SELECT rowid AS id, {_BM25} AS score FROM entity_fts "
                   f"WHERE entity_fts MATCH ?{{only}} LIMIT ?) ORDER BY score, id LIMIT ?")
_MORE_THAN = "SELECT 1 FROM entity_fts WHERE entity_fts MATCH ?{only} LIMIT 1 OFFSET ?"
_RANKED_NEWEST = (f"SELECT id FROM (SELECT rowid AS id, {_BM25} AS score FROM entity_fts WHERE entity_fts MATCH ?"
                  f"{{only}} ORDER BY rowid DESC LIMIT ?) ORDER BY score, id LIMIT ?")
_OLDER = "SELECT rowid FROM entity_fts WHERE entity_fts MATCH ?{only} AND rowid < ? ORDER BY rowid DESC LIMIT ?"
_SUBSTRING = "SELECT rowid FROM entity_trigram WHERE text GLOB ?{only} LIMIT ?"
# "+text" keeps the pattern away from the trigram index, which mishandles patterns under
# three characters that take three bytes or more (SQLite 3.40), and wildcards next to
# such runs: those queries are checked row by row instead.
_SUBSTRING_SCAN = "SELECT rowid FROM entity_trigram WHERE +text GLOB ?{only} LIMIT ?"
_GLOB_SPECIAL = re.compile(r"([*?\[\x00])")
_SCAN = ("SELECT e.id FROM entities e WHERE e.entity_type IS NOT NULL AND ("
         "memesh_contains(e.name, ?) OR memesh_contains(e.entity_type, ?) OR EXISTS ("
         "SELECT 1 FROM observations o WHERE o.entity_id = e.id AND memesh_contains(o.content, ?))){only}"
         " ORDER BY e.name LIMIT ?")
_ALL_BY_NAME = "SELECT e.id FROM entities e WHERE e.entity_type IS NOT NULL{only} ORDER BY e.name LIMIT ?"
_ORIGIN_COLUMNS = {"user": "origin_user", "host": "origin_host"}
_ADD_OBSERVATION = ("INSERT OR IGNORE INTO observations(entity_id, content, created_at, origin_user, origin_host) "
                    "VALUES (?, ?, ?, ?, ?)")
_NAMED_RELATIONS = ("SELECT r.from_id, r.to_id, f.name, t.name, r.relation_type FROM relations r "
                    "JOIN entities f ON f.id = r.from_id JOIN entities t ON t.id = r.to_id ")

Json = dict[str, Any]
# Unicode line breaks that JSON leaves raw but str.splitlines() splits on: escaped in export.
_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


# -- validation: every message starts with the path of the bad field -------------------
def _kind(value: object) -> str:
    for types, name in ((bool, "a boolean"), ((int, float), "a number"), (str, "a string"),
                        ((list, tuple), "an array"), (Mapping, "an object")):
        if isinstance(value, types):
            return name
    return "null" if value is None else type(value).__name__


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise ValidationError(f"{path}: expected an array, got {_kind(value)}")
    return list(value)


def _object(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(f"{path}: expected an object, got {_kind(value)}")
    return value


def _text(value: object, path: str, max_chars: int | None = None) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{path}: expected a string, got {_kind(value)}")
    if not value.isascii():
        try:
            value.encode("utf-8")  # JSON can carry lone surrogates; SQLite cannot store them
        except UnicodeEncodeError:
            raise ValidationError(f"{path}: contains a lone surrogate; send valid Unicode text") from None
    if max_chars is not None and len(value) > max_chars:
        raise ValidationError(f"{path}: longer than {max_chars} characters")
    return value


def _texts(value: object, path: str) -> list[str]:
    return [_text(item, f"{path}[{i}]") for i, item in enumerate(_list(value, path))]


def _field(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise ValidationError(f"{_join(path, key)}: required field is missing")
    return obj[key]


def _entity(value: object, path: str) -> tuple[str, str, list[str]]:
    obj = _object(value, path or "entity")
    name = _text(_field(obj, "name", path), _join(path, "name"), MAX_NAME_CHARS)
    entity_type = _text(_field(obj, "entityType", path), _join(path, "entityType"), MAX_NAME_CHARS)
    observations = _texts(_field(obj, "observations", path), _join(path, "observations"))
    return name, entity_type, list(dict.fromkeys(observations))


def _relation(value: object, path: str) -> tuple[str, str, str]:
    obj = _object(value, path or "relation")
    source, target, relation_type = (_text(_field(obj, key, path), _join(path, key), MAX_NAME_CHARS)
                                     for key in ("from", "to", "relationType"))
    return source, target, relation_type


def _limit(value: object, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise ValidationError(f"limit: expected an integer from 1 to {MAX_LIMIT}, got {value!r}")
    return value


# -- cursors: opaque to callers, checked against the request they continue --------------
def _fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _encode_cursor(kind: str, scope: str, position: Any) -> str:
    raw = json.dumps({"v": 1, "k": kind, "s": scope, "p": position}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def _decode_cursor(cursor: object, kind: str, scope: str, check: Callable[[Any], bool]) -> Any:
    if cursor is None:
        return None
    text = _text(cursor, "cursor")
    try:
        state = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error):
        state = None
    if (not isinstance(state, dict) or state.get("v") != 1 or state.get("k") != kind
            or state.get("s") != scope or not check(state.get("p"))):
        raise ValidationError("cursor: not a nextCursor returned by this call with these "
                              "arguments; omit it to start from the first page")
    return state["p"]


def _entity_dict(name: str, entity_type: str, observations: list[str]) -> Json:
    return {"name": name, "entityType": entity_type, "observations": observations}


def _relation_dict(source: str, target: str, relation_type: str) -> Json:
    return {"from": source, "to": target, "relationType": relation_type}


Rows = Iterable[tuple[int, ...]]


class _Only:
    """An origin filter (memesh.store.origin) as SQL: what fills ``{only}`` in the search queries.

    It keeps the entities whose recorded creator matches, as on PostgreSQL; without a
    filter it is empty and the queries run unchanged.
    """

    def __init__(self, origin: Json | None = None) -> None:
        checked = check_origin(origin)
        self.params = tuple(checked.values())
        self._columns = [_ORIGIN_COLUMNS[key] for key in checked]

    def on(self, table: str) -> str:
        """The condition on the rows of ``table``: ``entities`` (alias e) or a search index."""
        if not self._columns:
            return ""
        if table == "entities":
            return "".join(f" AND e.{column} = ?" for column in self._columns)
        return (f" AND EXISTS (SELECT 1 FROM entities w WHERE w.id = {table}.rowid"
                + "".join(f" AND w.{column} = ?" for column in self._columns) + ")")

    def sql(self, template: str, table: str) -> str:
        return template.format(only=self.on(table))


_EVERYONE = _Only()


def _word_pass(conn: Any, phrases: list[str], every: bool, want: int, only: _Only = _EVERYONE) -> Iterator[Rows]:
    """One word pass in search order, a part at a time; a part's queries run when it is asked for.

    ``every``: entities with every phrase, else with any. Each part holds up to ``want`` rows.
    """
    match = (" " if every else " OR ").join(phrases)
    window, p = RANK_WINDOW, only.params
    if every and len(phrases) > 1:  # few matches, usually, but costly to walk: rank and count at once
        rows = conn.execute(only.sql(_RANKED_COUNTED, "entity_fts"), (match, *p, window + 1, want)).fetchall()
        if not rows or rows[0][1] <= window:
            yield rows
            return
    elif conn.execute(only.sql(_MORE_THAN, "entity_fts"), (match, *p, window)).fetchone() is None:
        yield conn.execute(only.sql(_RANKED, "entity_fts"), (match, *p, want)).fetchall()
        return
    in_name = "{name}: (" + " OR ".join(phrases) + ")"
    if every and len(phrases) > 1:  # and every phrase anywhere; NOT's right side adds nothing to bm25
        in_name = f"{in_name} NOT ({in_name} NOT ({match}))"
    yield from _windowed(conn, in_name, window, want, only)
    yield from _windowed(conn, match, window, want, only)


def _windowed(conn: Any, match: str, window: int, want: int, only: _Only = _EVERYONE) -> Iterator[Rows]:
    """The newest ``window`` matches by bm25, then the older ones, newest first."""
    rows = conn.execute(only.sql(_RANKED_NEWEST, "entity_fts"), (match, *only.params, window, want)).fetchall()
    yield rows
    # Asked for more only if the window ran out; it held all matches unless it was full.
    if len(rows) == window:
        yield conn.execute(only.sql(_OLDER, "entity_fts"),
                           (match, *only.params, min(row[0] for row in rows), want)).fetchall()


def _contains(haystack: str | None, needle: str) -> bool:
    return haystack is not None and needle.lower() in haystack.lower()


def _named_texts(values: Any, name: str, texts_field: str) -> list[tuple[str, list[str]]]:
    """Validate ``[{"entityName": str, <texts_field>: [str]}]`` into (name, texts) pairs."""
    items = []
    for i, value in enumerate(_list(values, name)):
        path = f"{name}[{i}]"
        obj = _object(value, path)
        items.append((_text(_field(obj, "entityName", path), f"{path}.entityName"),
                      _texts(_field(obj, texts_field, path), f"{path}.{texts_field}")))
    return items


# -- page assembly, pure: shared with the PostgreSQL backend (memesh.store.pg.graph) ----------
def continued_entity_page(entity: Json, skip: int) -> Json | None:
    """The read_graph page that continues an entity too large for one page, ``skip`` observations
    in; None when none of its observations is left (the listing goes on after it)."""
    shown, _, done = _fill_entity(entity, [], skip, MAX_RESULT_CHARS - _ENVELOPE)
    if shown is None:
        return None
    page: Json = {"entities": [shown], "relations": []}
    more = done < len(entity["observations"])
    page["nextCursor"] = _encode_cursor("graph", "", ["o", [entity["name"], done]] if more else ["e", entity["name"]])
    return page


def graph_page(items: list[tuple[str, Any, Json]], limit: int) -> Json:
    """A read_graph page of ``items`` (("e", name, entity) then ("r", key, relation)), fetched
    ``limit + 1`` at most, cut to ``limit`` items and the size ceiling, with its cursor."""
    page: Json = {"entities": [], "relations": []}
    left, taken = MAX_RESULT_CHARS - _ENVELOPE, 0
    for kind, _, item in items[:limit]:
        cost = _size(item)
        if cost > left:
            if taken:
                break
            shown, _, done = _fill_entity(item, [], 0, left)   # an entity alone too big for a page
            page["entities"].append(shown)
            if done < len(item["observations"]):
                page["nextCursor"] = _encode_cursor("graph", "", ["o", [item["name"], done]])
                return page
            taken += 1
            break
        page["entities" if kind == "e" else "relations"].append(item)
        left, taken = left - cost, taken + 1
    if taken < len(items):
        page["nextCursor"] = _encode_cursor("graph", "", list(items[taken - 1][:2]))
    return page


def entity_page(entities: list[tuple[int, Json]], relation_rows: Iterable[tuple[Any, ...]], candidates: int,
                skip: int, next_cursor: Callable[[int, int], str]) -> Json:
    """A search/open page: ``entities`` (id, entity) in order, each followed by its not yet shown
    relations, under the size ceiling; more pages when fewer than ``candidates`` fit.

    ``relation_rows``: (from_id, to_id, from_name, to_name, relationType) of every relation
    touching the entities, in listing order. ``skip``: pieces of the first entity shown on
    earlier pages (see :func:`memesh.store.pages.fill_entity`). ``next_cursor(n, done)``
    continues after ``n`` entities, ``done`` pieces into the next.
    """
    touching: dict[int, list[tuple[int, Json]]] = defaultdict(list)
    for n, (source, target, *names) in enumerate(relation_rows):
        for end in {source, target}:
            touching[end].append((n, _relation_dict(*names)))
    page: Json = {"entities": [], "relations": []}
    left, taken, shown = MAX_RESULT_CHARS - _ENVELOPE, 0, set()
    for entity_id, entity in entities:
        new = [(n, rel) for n, rel in touching[entity_id] if n not in shown]
        cost = _size(entity) + sum(_size(rel) for _, rel in new)
        if cost <= left and not (taken == 0 and skip):
            page["entities"].append(entity)
            page["relations"] += [rel for _, rel in new]
            shown.update(n for n, _ in new)
            left, taken = left - cost, taken + 1
            continue
        if taken:
            break
        # The page's first entity is too big for it, or continues from an earlier page:
        # show the pieces that fit; the cursor continues with the rest of it.
        first, relations, done = _fill_entity(entity, [rel for _, rel in new], skip, left)
        if first is not None:
            page["entities"].append(first)
        page["relations"] += relations
        pieces = len(entity["observations"]) + len(new)
        if done < pieces:
            pending = min(len(new), pieces - done)
            if pending:
                page["omittedRelations"] = pending
            page["nextCursor"] = next_cursor(0, done)
            return page
        taken = 1
        break
    if taken < candidates:
        page["nextCursor"] = next_cursor(taken, 0)
    return page


def parse_jsonl(fp: Iterable[str | bytes]) -> tuple[dict[str, tuple[str, list[str]]], dict[tuple[str, str, str], None]]:
    """Read a reference-format JSONL graph: ``({name: (type, observations)}, {(from, to, type): None})``,
    first occurrence wins. ValidationError names the line."""
    entities: dict[str, tuple[str, list[str]]] = {}
    relations: dict[tuple[str, str, str], None] = {}
    for number, line in enumerate(fp, 1):
        try:
            text = line.decode("utf-8") if isinstance(line, bytes) else line
            text = text.lstrip("\ufeff") if number == 1 else text
            if not text.strip():
                continue
            try:
                item = json.loads(text)
            except ValueError as exc:
                raise ValidationError(f"not valid JSON ({exc})") from None
            if not isinstance(item, dict):
                raise ValidationError(f"expected a JSON object, got {_kind(item)}")
            if item.get("type") == "entity":
                name, entity_type, observations = _entity(item, "")
                entities.setdefault(name, (entity_type, observations))
            elif item.get("type") == "relation":
                relations.setdefault(_relation(item, ""))
            else:
                raise ValidationError('type: expected "entity" or "relation"')
        except (ValidationError, UnicodeDecodeError) as exc:
            raise ValidationError(f"line {number}: {exc}") from None
    return entities, relations


def jsonl_line(obj: Json) -> str:
    """One line of the reference server's JSONL format (no raw Unicode line breaks)."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_LINE_BREAKS) + "\n"


@contextlib.contextmanager
def _graph_write(db: Database, on_change: OnChange | None) -> Iterator[Any]:
    with tracked_write(db, on_change, GRAPH) as (conn, _):
        yield conn


class KnowledgeGraph:
    """The knowledge graph stored in a :class:`~memesh.store.db.Database`; thread-safe.

    Parameter names follow the reference server's tool arguments, so the MCP layer can
    pass a tool call's arguments through as keywords.
    """

    def __init__(self, database: Database | str | os.PathLike[str], *, on_change: OnChange | None = None) -> None:
        """``on_change(Change("graph"))`` is called after each write that changed the graph
        commits (see :mod:`memesh.store.changes`)."""
        self._on_change = on_change
        self._owns_db = not isinstance(database, Database)
        self._db = Database(database) if self._owns_db else database  # type: ignore[arg-type]
        with self._db.read() as conn:
            has_trigram = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'entity_trigram'").fetchone()
        self._fts_tables = ("entity_fts", "entity_trigram") if has_trigram else ("entity_fts",)

    def _write(self) -> Any:
        """A write transaction that, if it changed anything, records and publishes a change."""
        return _graph_write(self._db, self._on_change)

    def close(self) -> None:
        """Close the database if this graph opened it."""
        if self._owns_db:
            self._db.close()

    # -- writes -----------------------------------------------------------------------
    def create_entities(self, entities: list[Json]) -> list[Json]:
        """Create entities whose names are new; return those created."""
        batch = [_entity(e, f"entities[{i}]") for i, e in enumerate(_list(entities, "entities"))]
        created, touched, now = [], [], time.time()
        user, host = self._db.writer
        with self._write() as conn:
            for name, entity_type, observations in batch:
                row = conn.execute("SELECT id, entity_type FROM entities WHERE name = ?", (name,)).fetchone()
                if row is None:
                    entity_id = conn.execute(
                        "INSERT INTO entities(name, entity_type, created_at, updated_at, origin_user, origin_host) "
                        "VALUES (?, ?, ?, ?, ?, ?)", (name, entity_type, now, now, user, host)).lastrowid
                elif row[1] is None:  # a stub named by relations becomes a real entity
                    entity_id = row[0]
                    conn.execute("UPDATE entities SET entity_type = ?, created_at = ?, updated_at = ?, origin_user = ?, "
                                 "origin_host = ? WHERE id = ?", (entity_type, now, now, user, host, entity_id))
                else:
                    continue
                conn.executemany(_ADD_OBSERVATION, [(entity_id, text, now, user, host) for text in observations])
                touched.append(entity_id)
                created.append(_entity_dict(name, entity_type, observations))
            self._reindex(conn, touched)
        return created

    def create_relations(self, relations: list[Json]) -> list[Json]:
        """Create relations not present yet; return those created. Endpoints may be unknown."""
        batch = list(dict.fromkeys(_relation(r, f"relations[{i}]")
                                   for i, r in enumerate(_list(relations, "relations"))))
        created = []
        with self._write() as conn:
            ids = self._ids(conn, {name for rel in batch for name in rel[:2]}, make_stubs=True)
            for source, target, relation_type in batch:
                cursor = conn.execute("INSERT OR IGNORE INTO relations(from_id, to_id, relation_type) "
                                      "VALUES (?, ?, ?)", (ids[source], ids[target], relation_type))
                if cursor.rowcount:
                    created.append(_relation_dict(source, target, relation_type))
        return created

    def add_observations(self, observations: list[Json]) -> list[Json]:
        """Add observations to existing entities; all or nothing (NotFound names the entity)."""
        items = _named_texts(observations, "observations", "contents")
        results, now = [], time.time()
        user, host = self._db.writer
        with self._write() as conn:
            ids = self._ids(conn, {name for name, _ in items}, make_stubs=False)
            for i, (name, _) in enumerate(items):
                if name not in ids:
                    raise NotFound(f"observations[{i}].entityName: no entity named {name!r}; "
                                   f"create it with create_entities first (nothing was added)")
            for name, contents in items:
                added = [text for text in dict.fromkeys(contents) if conn.execute(
                    _ADD_OBSERVATION, (ids[name], text, now, user, host)).rowcount]
                results.append({"entityName": name, "addedObservations": added})
            conn.executemany("UPDATE entities SET updated_at = ? WHERE id = ?",
                             [(now, ids[name]) for name, _ in items])
            self._reindex(conn, [ids[name] for name, _ in items])
        return results

    def delete_entities(self, entityNames: list[str]) -> dict[str, int]:  # noqa: N803
        """Delete entities, their observations and every relation touching them."""
        names = set(_texts(entityNames, "entityNames"))
        with self._write() as conn:
            rows = [conn.execute("SELECT id, entity_type FROM entities WHERE name = ?", (n,)).fetchone()
                    for n in names]
            rows = [row for row in rows if row is not None]
            # Stubs go too: the reference drops relations naming a deleted name either way.
            conn.executemany("DELETE FROM entities WHERE id = ?", [(row[0],) for row in rows])
            self._reindex(conn, [row[0] for row in rows])
            self._drop_unused_stubs(conn)
        return {"deleted": sum(row[1] is not None for row in rows)}

    def delete_observations(self, deletions: list[Json]) -> dict[str, int]:
        """Delete the given observation texts; unknown entities and texts are ignored."""
        items = _named_texts(deletions, "deletions", "observations")
        deleted, now = 0, time.time()
        with self._write() as conn:
            ids = self._ids(conn, {name for name, _ in items}, make_stubs=False)
            for name, texts in items:
                if name in ids:
                    deleted += conn.executemany(
                        "DELETE FROM observations WHERE entity_id = ? AND content = ?",
                        [(ids[name], text) for text in texts]).rowcount
                    conn.execute("UPDATE entities SET updated_at = ? WHERE id = ?", (now, ids[name]))
            self._reindex(conn, list(ids.values()))
        return {"deleted": deleted}

    def delete_relations(self, relations: list[Json]) -> dict[str, int]:
        """Delete the given relations; unknown ones are ignored."""
        batch = set(_relation(r, f"relations[{i}]") for i, r in enumerate(_list(relations, "relations")))
        with self._write() as conn:
            deleted = conn.executemany(
                "DELETE FROM relations WHERE from_id = (SELECT id FROM entities WHERE name = ?) "
                "AND to_id = (SELECT id FROM entities WHERE name = ?) AND relation_type = ?",
                list(batch)).rowcount if batch else 0
            self._drop_unused_stubs(conn)
        return {"deleted": max(deleted, 0)}

    def _ids(self, conn: Any, names: Iterable[str], make_stubs: bool) -> dict[str, int]:
        """Map names to entity ids (real entities only, unless stubs are to be made)."""
        ids = {}
        for name in names:
            row = conn.execute("SELECT id, entity_type FROM entities WHERE name = ?", (name,)).fetchone()
            if row is not None and (make_stubs or row[1] is not None):
                ids[name] = row[0]
            elif row is None and make_stubs:
                now = time.time()
                ids[name] = conn.execute("INSERT INTO entities(name, entity_type, created_at, updated_at) "
                                         "VALUES (?, NULL, ?, ?)", (name, now, now)).lastrowid
        return ids

    def _drop_unused_stubs(self, conn: Any) -> None:
        conn.execute("DELETE FROM entities WHERE entity_type IS NULL "
                     "AND NOT EXISTS (SELECT 1 FROM relations WHERE from_id = entities.id) "
                     "AND NOT EXISTS (SELECT 1 FROM relations WHERE to_id = entities.id)")

    def _reindex(self, conn: Any, entity_ids: Iterable[int], fresh: bool = False) -> None:
        """Bring the search indexes in line with these entities (deleted ones drop out).

        ``fresh``: none of them is indexed yet (new rows or former stubs).
        """
        ids = json.dumps(sorted(set(entity_ids)))
        if ids == "[]":
            return
        for table in self._fts_tables:
            if not fresh:
                conn.execute(f"DELETE FROM {table} WHERE rowid IN ({_IDS})", (ids,))
            conn.execute(search_index_insert(table, f"e.id IN ({_IDS})"), (ids,))

    # -- reads ------------------------------------------------------------------------
    def read_graph(self, limit: int | None = None, cursor: str | None = None) -> Json:
        """One page of the whole graph: entities by name, then relations."""
        limit = _limit(limit, DEFAULT_PAGE_LIMIT)
        phase, after = _decode_cursor(cursor, "graph", "", _is_graph_position) or ("e", None)
        items: list[tuple[str, Any, Json]] = []
        with self._db.read() as conn:
            if phase == "o":   # the rest of an entity too large for one page
                name, skip = after
                row = conn.execute("SELECT id FROM entities WHERE name = ? AND entity_type IS NOT NULL",
                                   (name,)).fetchone()
                if row is not None:
                    page = continued_entity_page(self._entities(conn, [row[0]])[0][1], skip)
                    if page is not None:
                        return page
                phase, after = "e", name   # it is gone or complete: go on after it
            if phase == "e":
                where = "" if after is None else "AND name > ?"
                rows = conn.execute(f"SELECT id FROM entities WHERE entity_type IS NOT NULL {where} "
                                    f"ORDER BY name LIMIT ?", (*([] if after is None else [after]), limit + 1))
                entities = self._entities(conn, [row[0] for row in rows])
                items += [("e", entity["name"], entity) for _, entity in entities]
                after = None
            if len(items) <= limit:
                where = "" if after is None else "WHERE (r.from_id, r.to_id, r.relation_type) > (?, ?, ?)"
                rows = conn.execute(f"{_NAMED_RELATIONS} {where} ORDER BY r.from_id, r.to_id, r.relation_type "
                                    f"LIMIT ?", (*(after or []), limit + 1 - len(items)))
                items += [("r", [f, t, rt], _relation_dict(fn, tn, rt)) for f, t, fn, tn, rt in rows]
        return graph_page(items, limit)

    def search_nodes(self, query: str, limit: int | None = None, cursor: str | None = None,
                     origin: Json | None = None) -> Json:
        """Entities matching ``query``, best first, with the relations touching them.

        ``origin`` ({"user"?: str, "host"?: str}) keeps only entities created by that user/host.
        """
        query = _text(query, "query")
        limit = _limit(limit, DEFAULT_SEARCH_LIMIT)
        only = _Only(origin)
        scope = _fingerprint(query if not only.params else query + json.dumps(list(only.params)))
        offset, skip = _offset(_decode_cursor(cursor, "search", scope, _is_offset) or 0)
        with self._db.read() as conn:
            ids = self._ranked_ids(conn, query, offset + limit + 1, only)[offset:]
            return self._page(conn, ids, limit, skip,
                              lambda n, done: _encode_cursor("search", scope, _position(offset + n, done)))

    def open_nodes(self, names: list[str], limit: int | None = None, cursor: str | None = None) -> Json:
        """The named entities (unknown names ignored), with the relations touching them."""
        wanted = sorted(set(_texts(names, "names")))
        limit = _limit(limit, DEFAULT_PAGE_LIMIT)
        scope = _fingerprint(json.dumps(wanted))
        offset, skip = _offset(_decode_cursor(cursor, "open", scope, _is_offset) or 0)
        with self._db.read() as conn:
            found = self._ids(conn, wanted, make_stubs=False)
            ids = [found[name] for name in wanted if name in found][offset:offset + limit + 1]
            return self._page(conn, ids, limit, skip,
                              lambda n, done: _encode_cursor("open", scope, _position(offset + n, done)))

    def _ranked_ids(self, conn: Any, query: str, want: int, only: _Only = _EVERYONE) -> list[int]:
        """The first ``want`` entity ids in the search order for ``query``.

        The order is fixed for a given graph (see "Search order" in the module docstring),
        so a larger ``want`` only appends ids: pages continue each other.
        """
        if not query.strip():
            return [row[0] for row in conn.execute(only.sql(_ALL_BY_NAME, "entities"), (*only.params, want))]
        ranked: dict[int, None] = {}
        # Each word becomes a quoted FTS string, so no user input is FTS syntax.
        words: dict[str, str] = {}
        for word in _WORD.findall(query):
            words.setdefault(word.lower(), word)  # FTS5 folds case: a repeat adds nothing
        phrases = [f'"{word}"' for word in words.values()]
        passes = [_word_pass(conn, phrases, every, want, only) for every in (True, False)[:len(phrases)]]
        parts = itertools.chain(*passes, self._substring_pass(conn, query, want, only))
        # Each part gives up to ``want`` rows, at most len(ranked) of them seen already: one
        # part that holds ``want`` rows fills the list, and the parts after it never run.
        while len(ranked) < want:
            rows = next(parts, None)
            if rows is None:
                break
            for row in rows:
                ranked.setdefault(row[0])
        return list(ranked)[:want]

    def _substring_pass(self, conn: Any, query: str, want: int, only: _Only = _EVERYONE) -> Iterator[Rows]:
        if "entity_trigram" in self._fts_tables:  # GLOB is case-sensitive: both sides folded
            folded = fold_case(query)
            indexable = len(folded) >= 3 and not _GLOB_SPECIAL.search(folded)
            yield conn.execute(only.sql(_SUBSTRING if indexable else _SUBSTRING_SCAN, "entity_trigram"),
                               ("*" + _GLOB_SPECIAL.sub(r"[\1]", folded) + "*", *only.params, want))
        else:  # no trigram tokenizer in this SQLite: the reference's scan
            conn.create_function("memesh_contains", 2, _contains, deterministic=True)
            yield conn.execute(only.sql(_SCAN, "entities"), (query, query, query, *only.params, want))

    def _entities(self, conn: Any, ids: list[int]) -> list[tuple[int, Json]]:
        """Entities by id, in the order given, with their observations in insertion order."""
        arg = json.dumps(ids)
        observations: dict[int, list[str]] = defaultdict(list)
        for entity_id, text in conn.execute(
                f"SELECT entity_id, content FROM observations WHERE entity_id IN ({_IDS}) ORDER BY id", (arg,)):
            observations[entity_id].append(text)
        rows = {row[0]: row for row in conn.execute(
            f"SELECT id, name, entity_type FROM entities WHERE id IN ({_IDS})", (arg,))}
        return [(i, _entity_dict(rows[i][1], rows[i][2], observations[i])) for i in ids if i in rows]

    def _page(self, conn: Any, ids: list[int], limit: int, skip: int, next_cursor: Callable[[int, int], str]) -> Json:
        """Up to ``limit`` of ``ids`` as entities, each followed by its not yet shown relations.

        ``skip``: pieces of the first entity shown on earlier pages (see :func:`_fill_entity`).
        ``next_cursor(n, done)`` continues after ``n`` entities, ``done`` pieces into the next.
        """
        arg = json.dumps(ids[:limit])
        rows = conn.execute(f"{_NAMED_RELATIONS} WHERE r.id IN (SELECT id FROM relations WHERE from_id IN "
                            f"({_IDS}) UNION SELECT id FROM relations WHERE to_id "
                            f"IN ({_IDS})) ORDER BY 3, 4, 5", (arg, arg))
        return entity_page(self._entities(conn, ids[:limit]), rows, len(ids), skip, next_cursor)

    # -- whole-graph operations -------------------------------------------------------
    def stats(self) -> dict[str, int]:
        """Counts: {"entities", "relations", "observations"}."""
        sources = {"entities": "entities WHERE entity_type IS NOT NULL",
                   "relations": "relations", "observations": "observations"}
        with self._db.read() as conn:
            return {key: conn.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
                    for key, source in sources.items()}

    def export_jsonl(self, fp: IO[str]) -> dict[str, int]:
        """Write the graph in the reference server's JSONL format, sorted; return counts."""
        counts = {"entities": 0, "relations": 0}

        def line(obj: Json) -> None:
            fp.write(jsonl_line(obj))

        with self._db.read() as conn:
            rows = conn.execute("SELECT e.name, e.entity_type, o.content FROM entities e LEFT JOIN observations o "
                                "ON o.entity_id = e.id WHERE e.entity_type IS NOT NULL ORDER BY e.name, o.id")
            for (name, entity_type), group in itertools.groupby(rows, key=lambda row: row[:2]):
                line({"type": "entity", **_entity_dict(name, entity_type,
                                                       [r[2] for r in group if r[2] is not None])})
                counts["entities"] += 1
            for _, _, source, target, relation_type in conn.execute(f"{_NAMED_RELATIONS} ORDER BY 3, 4, 5"):
                line({"type": "relation", **_relation_dict(source, target, relation_type)})
                counts["relations"] += 1
        return counts

    def import_jsonl(self, fp: Iterable[str | bytes]) -> dict[str, int]:
        """Add a reference-format JSONL graph; all or nothing. Returns counts created."""
        return self._import(*parse_jsonl(fp))

    def _import(self, entities: dict[str, tuple[str, list[str]]],
                relations: dict[tuple[str, str, str], None]) -> dict[str, int]:
        return self.add_rows(rows_from_parsed(entities, relations, time.time(), self._db.writer))

    def add_rows(self, rows: GraphRows) -> dict[str, int]:
        """Add rows that say who wrote what and when (memesh.store.rows), all or nothing; counts added.

        Inside a write transaction of the same database it joins that transaction.
        """
        with self._write() as conn:
            return add_graph_sqlite(conn, rows, self._fts_tables)
