"""Copying everything memesh stores from one storage to another (``memesh storage copy``).

The graph travels as its reference-format export (the same lines ``graph export``
writes) and is added with import semantics: an entity whose name the destination has
already is kept as it is there, a relation present already is skipped. Memories travel
as rows (project, text, kind, tags, importance, times) and are added unless the
destination holds the same text in the same project. Both halves are written in ONE
transaction of the destination: a failure leaves it exactly as it was. Running the copy
again adds nothing, so it is idempotent.
"""
from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

from memesh.store.changes import MEMORY, Change, record
from memesh.store.graph import parse_jsonl
from memesh.store.pg.text import document
from memesh.store.storage import Storage

Progress = Callable[[int], None]

# (project, content, content_hash, kind, importance, created_at, updated_at, [tags])
MemoryRow = tuple[str, str, str, str, "float | None", float, float, list[str]]


def read_memories(storage: Storage) -> list[MemoryRow]:
    """Every memory of ``storage`` with its tags, oldest first."""
    if storage.kind == "postgresql":
        return storage.db.read(lambda cur: [(*row[:7], list(row[7])) for row in cur.execute(
            "SELECT project, content, content_hash, kind, importance, created_at, updated_at, "
            "coalesce((SELECT array_agg(tag ORDER BY tag) FROM memory_tags WHERE memory_id = m.id), '{}') "
            "FROM memories m ORDER BY id")])
    with storage.db.read() as conn:
        return [(*row[:7], json.loads(row[7])) for row in conn.execute(
            "SELECT project, content, content_hash, kind, importance, created_at, updated_at, "
            "(SELECT json_group_array(tag) FROM (SELECT tag FROM memory_tags WHERE memory_id = m.id ORDER BY tag)) "
            "FROM memories m ORDER BY id")]


def _write_memories_pg(storage: Storage, cur: Any, rows: list[MemoryRow]) -> int:
    user, host = storage.db.origin
    added = 0
    for project, content, digest, kind, importance, created, updated, tags in rows:
        row = cur.execute("INSERT INTO memories(project, content, content_hash, kind, importance, created_at, updated_at, "
                          "origin_user, origin_host) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                          "ON CONFLICT (project, content_hash) DO NOTHING RETURNING id",
                          (project, content, digest, kind, importance, created, updated, user, host)).fetchone()
        if row is None:
            continue
        added += 1
        if tags:
            cur.execute("INSERT INTO memory_tags(memory_id, tag) SELECT %s, t FROM unnest(%s::text[]) AS t", (row[0], tags))
        cur.execute("UPDATE memories SET search = setweight(to_tsvector('memesh', %s), 'D') || "
                    "setweight(to_tsvector('memesh', %s), 'A') WHERE id = %s",
                    (document(content), document(" ".join(tags)), row[0]))
    return added


def _write_memories_sqlite(conn: Any, rows: list[MemoryRow]) -> int:
    added = 0
    for project, content, digest, kind, importance, created, updated, tags in rows:
        cursor = conn.execute("INSERT OR IGNORE INTO memories(project, content, content_hash, kind, importance, "
                              "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                              (project, content, digest, kind, importance, created, updated))
        if not cursor.rowcount:
            continue
        added += 1
        memory_id = cursor.lastrowid
        conn.executemany("INSERT INTO memory_tags(memory_id, tag) VALUES (?, ?)", [(memory_id, tag) for tag in tags])
        conn.execute("INSERT INTO memory_fts(rowid, content, tags) VALUES (?, ?, ?)",
                     (memory_id, content, " ".join(tags) or None))
    return added


def copy_storage(source: Storage, destination: Storage, progress: Progress | None = None) -> dict[str, int]:
    """Add everything in ``source`` to ``destination`` in one transaction; counts of what was added.

    ``progress(n)`` is called as n more items (entities, relations, memories) were read
    or written.
    """
    tick = progress or (lambda n: None)
    buffer = io.StringIO()
    counts = source.graph.export_jsonl(buffer)
    tick(counts["entities"] + counts["relations"])
    buffer.seek(0)
    entities, relations = parse_jsonl(buffer)
    memories = read_memories(source)
    tick(len(memories))
    if destination.kind == "postgresql":
        def work(cur: Any, changed: Any) -> dict[str, int]:
            added = destination.graph.import_in(cur, entities, relations, changed)
            tick(len(entities) + len(relations))
            added["memories"] = _write_memories_pg(destination, cur, memories)
            if added["memories"]:
                changed(Change(MEMORY))  # running daemons re-read (NOTIFY at commit)
            tick(len(memories))
            return added

        return destination.db.tracked_write(work, None, bulk=True)
    with destination.db.write() as conn:  # the graph's import nests in this transaction
        added = destination.graph._import(entities, relations)
        tick(len(entities) + len(relations))
        added["memories"] = _write_memories_sqlite(conn, memories)
        if added["memories"] and destination.db.records_changes:  # a running daemon's feed re-reads
            record(conn, destination.db.origin, [Change(MEMORY)])
        tick(len(memories))
    return added


def item_count(storage: Storage) -> int:
    """Entities + relations + memories in ``storage`` (a progress bar's total, counted twice: read and write)."""
    graph = storage.graph.stats()
    return graph["entities"] + graph["relations"] + storage.memory.stats()["memories"]
