"""Reading a PostgreSQL store as rows with origins and times, and adding such rows in bulk.

The PostgreSQL half of :mod:`memesh.store.rows` (shapes and import semantics are
there). Adding is set-based, for speed at 100,000 entities: the rows go into temporary
tables with COPY, then one ``INSERT … SELECT … ON CONFLICT`` per table adds what is new,
with the search columns (computed from memesh's own word lists, as
:mod:`memesh.store.pg.graph` does row by row) written in the same INSERT rather than
updated afterwards. Everything runs in the caller's transaction; the temporary tables go
with it (ON COMMIT DROP).
"""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from memesh.store.db import fold_case
from memesh.store.pg.text import document
from memesh.store.rows import GraphRows, MemoryRow, stub_names

ANALYZE_AFTER = 5000  # rows added past which the tables' statistics are refreshed

_SEARCH = ("setweight(to_tsvector('memesh', s.name_doc), 'A') || setweight(to_tsvector('memesh', s.type_doc), 'B') "
           "|| setweight(to_tsvector('memesh', s.texts_doc), 'C')")


def read_graph_pg(cur: Any) -> GraphRows:
    """Every entity (in id order), observation and relation of a PostgreSQL store, with origins and times."""
    return GraphRows(
        [tuple(row) for row in cur.execute(
            "SELECT name, entity_type, created_at, updated_at, origin_user, origin_host FROM entities "
            "WHERE entity_type IS NOT NULL ORDER BY id")],
        [tuple(row) for row in cur.execute(
            "SELECT e.name, o.content, o.created_at, o.origin_user, o.origin_host FROM observations o "
            "JOIN entities e ON e.id = o.entity_id ORDER BY o.id")],
        [tuple(row) for row in cur.execute(
            "SELECT f.name, t.name, r.relation_type FROM relations r JOIN entities f ON f.id = r.from_id "
            "JOIN entities t ON t.id = r.to_id ORDER BY r.id")])


def read_memories_pg(cur: Any) -> list[MemoryRow]:
    """Every memory of a PostgreSQL store with its origin, times and tags, oldest first."""
    return [(*row[:9], list(row[9])) for row in cur.execute(
        "SELECT project, content, content_hash, kind, importance, created_at, updated_at, origin_user, origin_host, "
        "coalesce((SELECT array_agg(tag ORDER BY tag) FROM memory_tags WHERE memory_id = m.id), '{}') "
        "FROM memories m ORDER BY id")]


def add_graph_pg(cur: Any, rows: GraphRows, now: float | None = None) -> dict[str, int]:
    """Add ``rows`` in the caller's transaction (import semantics, memesh.store.rows); counts added."""
    now = time.time() if now is None else now
    bulk = len(rows) > ANALYZE_AFTER
    rebuild = _drop_search_indexes(cur) if bulk else []
    texts: dict[str, list[str]] = defaultdict(list)
    for name, text, *_ in rows.observations:
        texts[name].append(text)
    # Names and projects in the "C" collation, as in the tables they are compared with.
    cur.execute("CREATE TEMP TABLE memesh_rows_entities (n bigint, name text COLLATE \"C\", entity_type text, "
                "created_at float8, "
                "updated_at float8, origin_user text, origin_host text, name_doc text, type_doc text, texts_doc text, "
                "folded text) ON COMMIT DROP")
    with cur.copy("COPY memesh_rows_entities FROM STDIN") as copy:
        for n, (name, entity_type, *rest) in enumerate(rows.entities):
            joined = "\n".join(texts.get(name, ()))
            copy.write_row((n, name, entity_type, *rest, document(name), document(entity_type), document(joined),
                            fold_case(f"{name}\n{entity_type}\n{joined}")))
    cur.execute("ANALYZE memesh_rows_entities")  # temporary tables have no statistics until asked: plans go astray
    # New names, and stubs (names only relations used) that become entities; a real
    # entity of the same name is kept as it is. Their ids, for the observations:
    cur.execute('CREATE TEMP TABLE memesh_rows_fresh (id bigint, name text COLLATE "C") ON COMMIT DROP')
    cur.execute("WITH added AS ("
                "INSERT INTO entities(name, entity_type, created_at, updated_at, origin_user, origin_host, search, "
                "name_search, folded) "
                f"SELECT s.name, s.entity_type, s.created_at, s.updated_at, s.origin_user, s.origin_host, {_SEARCH}, "
                "to_tsvector('memesh', s.name_doc), s.folded FROM memesh_rows_entities s ORDER BY s.n "
                "ON CONFLICT (name) DO UPDATE SET entity_type = EXCLUDED.entity_type, created_at = EXCLUDED.created_at, "
                "updated_at = EXCLUDED.updated_at, origin_user = EXCLUDED.origin_user, origin_host = EXCLUDED.origin_host, "
                "search = EXCLUDED.search, name_search = EXCLUDED.name_search, folded = EXCLUDED.folded "
                "WHERE entities.entity_type IS NULL RETURNING id, name) INSERT INTO memesh_rows_fresh SELECT id, name FROM added")
    fresh = cur.execute("SELECT count(*) FROM memesh_rows_fresh").fetchone()[0]
    if rows.observations and fresh:
        _stage(cur, "memesh_rows_observations", 'name text COLLATE "C", content text, created_at float8, '
               "origin_user text, origin_host text", rows.observations)
        cur.execute("ANALYZE memesh_rows_fresh")
        cur.execute("INSERT INTO observations(entity_id, content, created_at, origin_user, origin_host) "
                    "SELECT f.id, o.content, o.created_at, o.origin_user, o.origin_host FROM memesh_rows_observations o "
                    "JOIN memesh_rows_fresh f ON f.name = o.name ORDER BY o.n "
                    "ON CONFLICT (entity_id, md5(content)) DO NOTHING")
    created = 0
    if rows.relations:
        endpoints = stub_names(rows.relations, {row[0] for row in rows.entities})
        if endpoints:  # names no entity has: stubs, unless the destination knows them
            cur.execute("INSERT INTO entities(name, entity_type, created_at, updated_at) SELECT n, NULL, %s, %s "
                        "FROM unnest(%s::text[]) AS n ORDER BY n ON CONFLICT (name) DO NOTHING", (now, now, endpoints))
        _stage(cur, "memesh_rows_relations", 'from_name text COLLATE "C", to_name text COLLATE "C", relation_type text',
               rows.relations)
        cur.execute("INSERT INTO relations(from_id, to_id, relation_type) SELECT f.id, t.id, r.relation_type "
                    "FROM memesh_rows_relations r JOIN entities f ON f.name = r.from_name "
                    "JOIN entities t ON t.name = r.to_name ORDER BY r.n ON CONFLICT DO NOTHING")
        created = max(cur.rowcount, 0)
    if fresh + created > ANALYZE_AFTER:  # fresh planner statistics, or the next searches plan badly
        cur.execute("ANALYZE entities, observations, relations")
    for statement in rebuild:
        cur.execute(statement)
    if bulk and not rebuild:
        _merge_pending_entries(cur, "entities")
    return {"entities": fresh, "relations": created}


def add_memories_pg(cur: Any, rows: list[MemoryRow]) -> int:
    """Add the memories whose text their project lacks, in the caller's transaction; how many."""
    if not rows:
        return 0
    cur.execute("CREATE TEMP TABLE memesh_rows_memories (n bigint, project text COLLATE \"C\", content text, content_hash text, "
                "kind text, importance float8, created_at float8, updated_at float8, origin_user text, "
                "origin_host text, tags text[], content_doc text, tags_doc text) ON COMMIT DROP")
    with cur.copy("COPY memesh_rows_memories FROM STDIN") as copy:
        for n, row in enumerate(rows):
            copy.write_row((n, *row, document(row[1]), document(" ".join(row[9]))))
    cur.execute("ANALYZE memesh_rows_memories")
    cur.execute('CREATE TEMP TABLE memesh_rows_new_memories (id bigint, project text COLLATE "C", content_hash text) '
                'ON COMMIT DROP')
    cur.execute("WITH added AS ("
                "INSERT INTO memories(project, content, content_hash, kind, importance, created_at, updated_at, "
                "origin_user, origin_host, search) SELECT s.project, s.content, s.content_hash, s.kind, s.importance, "
                "s.created_at, s.updated_at, s.origin_user, s.origin_host, "
                "setweight(to_tsvector('memesh', s.content_doc), 'D') || setweight(to_tsvector('memesh', s.tags_doc), 'A') "
                "FROM memesh_rows_memories s ORDER BY s.n ON CONFLICT (project, content_hash) DO NOTHING "
                "RETURNING id, project, content_hash) INSERT INTO memesh_rows_new_memories SELECT * FROM added")
    cur.execute("ANALYZE memesh_rows_new_memories")
    cur.execute("INSERT INTO memory_tags(memory_id, tag) SELECT a.id, t.tag FROM memesh_rows_new_memories a "
                "JOIN memesh_rows_memories s ON s.project = a.project AND s.content_hash = a.content_hash "
                "CROSS JOIN unnest(s.tags) AS t(tag) ON CONFLICT DO NOTHING")
    added = cur.execute("SELECT count(*) FROM memesh_rows_new_memories").fetchone()[0]
    if len(rows) > ANALYZE_AFTER:  # as after a large graph copy: settle the search index, fresh statistics
        _merge_pending_entries(cur, "memories")
        cur.execute("ANALYZE memories, memory_tags")
    return added


def _stage(cur: Any, table: str, columns: str, rows: Any) -> None:
    """A temporary table ``table`` (``n`` — the rows' order — then ``columns``) filled with
    ``rows`` by COPY and analysed (temporary tables have no statistics until asked)."""
    cur.execute(f"CREATE TEMP TABLE {table} (n bigint, {columns}) ON COMMIT DROP")
    with cur.copy(f"COPY {table} FROM STDIN") as copy:
        for n, row in enumerate(rows):
            copy.write_row((n, *row))
    cur.execute(f"ANALYZE {table}")


def _drop_search_indexes(cur: Any) -> list[str]:
    """Into an empty graph, drop the search indexes (GIN) to build them once at the end, when
    this role owns the table; the statements that build them again (none: not dropped).

    Building such an index over 100,000 rows at once takes a fraction of adding the rows
    to it one by one. The price: dropping locks the table until this transaction ends, so
    other daemons' calls wait for the copy, which is fine only while the graph is empty.
    """
    if cur.execute("SELECT EXISTS (SELECT 1 FROM entities) OR NOT pg_has_role(c.relowner, 'USAGE') "
                   "FROM pg_class c WHERE c.oid = 'entities'::regclass").fetchone()[0]:
        return []
    indexes = cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                          "AND tablename = 'entities' AND indexdef LIKE '%% USING gin %%'").fetchall()
    for name, _ in indexes:
        cur.execute(f'DROP INDEX "{name}"')
    cur.execute("SET LOCAL maintenance_work_mem = '256MB'")  # what a build sorts in
    return [definition for _, definition in indexes]


def _merge_pending_entries(cur: Any, table: str) -> None:
    """Move what was added to ``table``'s search indexes' pending lists into the indexes proper.

    A GIN index collects new entries in a pending list (fastupdate), merged at the next
    vacuum; until then every search reads the whole list, and the planner, pricing the
    index by it, may scan the table instead (seen at 10k entities: 15 ms a substring
    search instead of 2). Only the indexes this role owns: merging needs ownership.
    """
    cur.execute("SELECT gin_clean_pending_list(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = %s::regclass AND a.amname = 'gin' "
                "AND pg_has_role(c.relowner, 'USAGE')", (table,))
