"""Copying everything memesh stores from one storage to another (``memesh storage copy``).

The graph and the memories travel as rows that say who wrote what and when
(:mod:`memesh.store.rows`): every entity, observation and memory arrives with its
origin (user, host) and times, not re-stamped with the copier's, so SQLite → PostgreSQL
→ SQLite keeps them. They are added with import semantics: an entity whose name the
destination has already is kept as it is there, a relation present already is skipped,
a memory is skipped if the destination holds the same text in the same project. Both
halves are written in ONE transaction of the destination: a failure leaves it exactly as
it was. Running the copy again adds nothing, so it is idempotent. Running daemons on
the destination hear of it as of any write (a change notice when it commits).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memesh.store.changes import MEMORY, Change, record
from memesh.store.rows import (
    GraphRows,
    MemoryRow,
    add_memories_sqlite,
    read_graph_sqlite,
    read_memories_sqlite,
)
from memesh.store.storage import Storage

Progress = Callable[[int], None]


def read_rows(storage: Storage) -> tuple[GraphRows, list[MemoryRow]]:
    """The whole graph and every memory of ``storage``, from one consistent snapshot."""
    if storage.kind == "postgresql":
        from memesh.store.pg.rows import read_graph_pg, read_memories_pg

        return storage.db.read(lambda cur: (read_graph_pg(cur), read_memories_pg(cur)))
    with storage.db.read() as conn:
        return read_graph_sqlite(conn), read_memories_sqlite(conn)


def copy_storage(source: Storage, destination: Storage, progress: Progress | None = None) -> dict[str, int]:
    """Add everything in ``source`` to ``destination`` in one transaction; counts of what was added.

    ``progress(n)`` is called as n more items (entities, relations, memories) were read
    or written.
    """
    tick = progress or (lambda n: None)
    graph, memories = read_rows(source)
    tick(len(graph) + len(memories))
    if destination.kind == "postgresql":
        from memesh.store.pg.rows import add_memories_pg

        def work(cur: Any, changed: Any) -> dict[str, int]:
            added = destination.graph.add_rows_in(cur, graph, changed)
            tick(len(graph))
            added["memories"] = add_memories_pg(cur, memories)
            if added["memories"]:
                changed(Change(MEMORY))  # running daemons re-read (NOTIFY at commit)
            tick(len(memories))
            return added

        return destination.db.tracked_write(work, None, bulk=True)
    with destination.db.write() as conn:  # the graph's rows join this transaction
        added = destination.graph.add_rows(graph)
        tick(len(graph))
        added["memories"] = add_memories_sqlite(conn, memories)
        if added["memories"] and destination.db.records_changes:  # a running daemon's feed re-reads
            record(conn, destination.db.origin, [Change(MEMORY)])
        tick(len(memories))
    return added


def item_count(storage: Storage) -> int:
    """Entities + relations + memories in ``storage`` (a progress bar's total, counted twice: read and write)."""
    graph = storage.graph.stats()
    return graph["entities"] + graph["relations"] + storage.memory.stats()["memories"]
