"""The graph and memories as rows that say who wrote what and when, and adding them in bulk to SQLite.

``memesh storage copy`` moves a store as these rows, so the copy keeps every origin
(user, host) and time; a JSONL import makes the same rows, stamped with the importer and
the time of the import. Shapes (plain tuples)::

    EntityRow      (name, entityType, created_at, updated_at, origin_user, origin_host)
    ObservationRow (entity name, text, created_at, origin_user, origin_host)
    RelationRow    (from, to, relationType)
    MemoryRow      (project, content, content_hash, kind, importance, created_at, updated_at,
                    origin_user, origin_host, [tags])

Adding follows import semantics on both backends (the PostgreSQL half is
:mod:`memesh.store.pg.rows`): an entity whose name the destination has already is kept as
it is there (a stub, a name only relations used so far, becomes the entity), its
observations come with it; a relation present already is skipped, and a name a relation
needs that exists nowhere becomes a stub; a memory whose text the destination holds in
the same project is skipped. Rows are added in the order given, so entities copied in
their source's id order keep the order that search ranks ties by.
"""
from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from memesh.store.db import search_index_insert

EntityRow = tuple[str, str, float, float, "str | None", "str | None"]
ObservationRow = tuple[str, str, float, "str | None", "str | None"]
RelationRow = tuple[str, str, str]
MemoryRow = tuple[str, str, str, str, "float | None", float, float, "str | None", "str | None", list[str]]

_IDS = "SELECT value FROM json_each(?)"


@dataclasses.dataclass
class GraphRows:
    entities: list[EntityRow]
    observations: list[ObservationRow]
    relations: list[RelationRow]

    def __len__(self) -> int:
        return len(self.entities) + len(self.relations)


def rows_from_parsed(entities: dict[str, tuple[str, list[str]]], relations: dict[tuple[str, str, str], None],
                     now: float, writer: tuple[str, str]) -> GraphRows:
    """A parsed JSONL graph (memesh.store.graph.parse_jsonl) as rows written by ``writer`` at ``now``."""
    user, host = writer
    return GraphRows([(name, entity_type, now, now, user, host) for name, (entity_type, _) in entities.items()],
                     [(name, text, now, user, host) for name, (_, texts) in entities.items() for text in texts],
                     list(relations))


def fresh_entities(rows: list[EntityRow], present: dict[str, bool]) -> list[EntityRow]:
    """The rows to add: names the destination lacks or holds as a stub (``present``: name -> is a stub)."""
    return [row for row in rows if present.get(row[0], True)]


def stub_names(relations: list[RelationRow], known: set[str]) -> list[str]:
    """Relation endpoints that are not in ``known``, sorted: the stubs to make."""
    return sorted({name for relation in relations for name in relation[:2]} - known)


# -- SQLite ---------------------------------------------------------------------------------------
def read_graph_sqlite(conn: Any) -> GraphRows:
    """Every entity (in id order), observation and relation of a SQLite store, with origins and times."""
    return GraphRows(
        conn.execute("SELECT name, entity_type, created_at, updated_at, origin_user, origin_host FROM entities "
                     "WHERE entity_type IS NOT NULL ORDER BY id").fetchall(),
        conn.execute("SELECT e.name, o.content, o.created_at, o.origin_user, o.origin_host FROM observations o "
                     "JOIN entities e ON e.id = o.entity_id ORDER BY o.id").fetchall(),
        conn.execute("SELECT f.name, t.name, r.relation_type FROM relations r JOIN entities f ON f.id = r.from_id "
                     "JOIN entities t ON t.id = r.to_id ORDER BY r.id").fetchall())


def read_memories_sqlite(conn: Any) -> list[MemoryRow]:
    """Every memory of a SQLite store with its origin, times and tags, oldest first."""
    return [(*row[:9], json.loads(row[9])) for row in conn.execute(
        "SELECT project, content, content_hash, kind, importance, created_at, updated_at, origin_user, origin_host, "
        "(SELECT json_group_array(tag) FROM (SELECT tag FROM memory_tags WHERE memory_id = m.id ORDER BY tag)) "
        "FROM memories m ORDER BY id")]


def add_graph_sqlite(conn: Any, rows: GraphRows, fts_tables: tuple[str, ...], now: float | None = None) -> dict[str, int]:
    """Add ``rows`` inside the caller's write transaction (import semantics); counts added."""
    now = time.time() if now is None else now
    present = dict(conn.execute("SELECT name, entity_type IS NULL FROM entities"))
    fresh = fresh_entities(rows.entities, present)
    conn.executemany("INSERT INTO entities(name, entity_type, created_at, updated_at, origin_user, origin_host) "
                     "VALUES (?, ?, ?, ?, ?, ?)", [row for row in fresh if row[0] not in present])
    conn.executemany("UPDATE entities SET entity_type = ?, created_at = ?, updated_at = ?, origin_user = ?, "
                     "origin_host = ? WHERE name = ?", [(*row[1:], row[0]) for row in fresh if row[0] in present])
    fresh_names = {row[0] for row in fresh}
    conn.executemany("INSERT INTO entities(name, entity_type, created_at, updated_at) VALUES (?, NULL, ?, ?)",
                     [(name, now, now) for name in stub_names(rows.relations, present.keys() | fresh_names)])
    ids = dict(conn.execute("SELECT name, id FROM entities"))
    conn.executemany("INSERT OR IGNORE INTO observations(entity_id, content, created_at, origin_user, origin_host) "
                     "VALUES (?, ?, ?, ?, ?)",
                     ((ids[name], *rest) for name, *rest in rows.observations if name in fresh_names))
    before = conn.total_changes
    conn.executemany("INSERT OR IGNORE INTO relations(from_id, to_id, relation_type) VALUES (?, ?, ?)",
                     ((ids[source], ids[target], kind) for source, target, kind in rows.relations))
    created_relations = conn.total_changes - before
    fresh_ids = json.dumps(sorted(ids[name] for name in fresh_names))
    for table in fts_tables:  # none of them is indexed yet: new rows or former stubs
        conn.execute(search_index_insert(table, f"e.id IN ({_IDS})"), (fresh_ids,))
    return {"entities": len(fresh), "relations": created_relations}


def add_memories_sqlite(conn: Any, rows: list[MemoryRow]) -> int:
    """Add the memories whose text their project lacks, inside the caller's write transaction; how many."""
    last = conn.execute("SELECT coalesce(max(id), 0) FROM memories").fetchone()[0]
    conn.executemany("INSERT OR IGNORE INTO memories(project, content, content_hash, kind, importance, created_at, "
                     "updated_at, origin_user, origin_host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     [row[:9] for row in rows])
    # A new row's id is above every id before it (INTEGER PRIMARY KEY takes max + 1).
    added = dict(((project, digest), memory_id) for memory_id, project, digest in conn.execute(
        "SELECT id, project, content_hash FROM memories WHERE id > ?", (last,)))
    conn.executemany("INSERT INTO memory_tags(memory_id, tag) VALUES (?, ?)",
                     [(added[row[0], row[2]], tag) for row in rows if (row[0], row[2]) in added for tag in row[9]])
    conn.execute("INSERT INTO memory_fts(rowid, content, tags) SELECT id, content, (SELECT group_concat(tag, ' ') "
                 "FROM memory_tags WHERE memory_id = m.id) FROM memories m WHERE id > ?", (last,))
    return len(added)
