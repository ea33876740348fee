"""Memories on PostgreSQL: the same semantics as :mod:`memesh.store.memory`.

Validation, the ranking formula, timestamps, cursors and the size ceiling are that
module's own functions; this one only finds and stores rows. Text ranking uses the
``search`` tsvector with ``ts_rank`` (tags weigh twice the content, as with bm25 there),
normalised by the best match as there. Each memory records its origin (user, host);
``recall`` and ``list`` can keep only memories from one user or host, and forgetting a
memory someone else wrote is allowed but logged.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from memesh.store.memory import (
    DEFAULT_KIND,
    DEFAULT_LIST_LIMIT,
    DEFAULT_RECALL_LIMIT,
    MAX_CANDIDATES,
    MAX_LIST_LIMIT,
    MAX_QUERY_CHARS,
    MAX_RECALL_LIMIT,
    _decode_cursor,
    _decode_offset,
    _flag,
    _ids,
    _label,
    _limit,
    _list_answer,
    _list_fingerprint,
    _project,
    _recall_answer,
    _recall_fingerprint,
    _tags,
    _text,
    iso_utc,
    new_memory,
    score,
)
from memesh.store.changes import MEMORY, Change, OnChange
from memesh.store.origin import check_origin, log_foreign_deletions
from memesh.store.pg.db import PgDatabase
from memesh.store.pg.text import document, query_words

logger = logging.getLogger(__name__)

Json = dict[str, Any]
_WEIGHTS = "'{0.5, 0.0, 0.0, 1.0}'"  # D content, A tags: a tag word counts twice
_COLUMNS = ("SELECT m.id, m.content, m.kind, m.importance, m.project, m.created_at, m.updated_at, "
            "coalesce((SELECT array_agg(tag ORDER BY tag) FROM memory_tags WHERE memory_id = m.id), '{}'), "
            "m.origin_user, m.origin_host FROM memories m")


class _Filters:
    """The SQL condition (on alias ``m``) for tags/kind/origin filters, and its parameters."""

    def __init__(self, tags: object, kind: object, origin: object = None) -> None:
        self.tags = _tags(tags)
        self.kind = None if kind is None else _label(kind, "kind")
        self.origin = check_origin(origin)
        self.sql, self.params = "", []
        if self.kind is not None:
            self.sql += " AND m.kind = %s"
            self.params.append(self.kind)
        if self.tags:
            self.sql += (" AND m.id IN (SELECT memory_id FROM memory_tags WHERE tag = ANY(%s) "
                         "GROUP BY memory_id HAVING count(*) = %s)")
            self.params += [self.tags, len(self.tags)]
        for key, column in (("user", "origin_user"), ("host", "origin_host")):
            if key in self.origin:
                self.sql += f" AND m.{column} = %s"
                self.params.append(self.origin[key])


class PgMemoryStore:
    """Project-scoped memories in a :class:`PgDatabase`; thread-safe. See the module doc."""

    def __init__(self, database: PgDatabase, *, clock: Callable[[], float] = time.time,
                 on_change: OnChange | None = None) -> None:
        """``on_change(Change("memory", project))`` is called after each write that changed
        memories commits, once per project touched (memesh.store.changes)."""
        self._db = database
        self._clock = clock
        self._on_change = on_change

    def __repr__(self) -> str:
        return f"<memesh MemoryStore on {self._db.path}>"

    # -- writes -----------------------------------------------------------------------
    def remember(self, content: str, *, tags: Sequence[str] | None = None, kind: str = DEFAULT_KIND,
                 importance: float | None = None, project: str = "") -> Json:
        """Store a memory, or refresh the identical one; the memory plus ``"created"``."""
        text, new_tags, label, weight, scope, digest = new_memory(content, tags, kind, importance, project)
        now = self._clock()
        user, host = self._db.origin

        def work(cur: Any, changed: Callable[[Change], None]) -> Json:
            memory_id, created = cur.execute(
                "INSERT INTO memories(project, content, content_hash, kind, importance, created_at, updated_at, "
                "origin_user, origin_host) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (project, content_hash) DO UPDATE SET "
                "importance = CASE WHEN EXCLUDED.importance IS NULL THEN memories.importance "
                "WHEN memories.importance IS NULL THEN EXCLUDED.importance "
                "ELSE greatest(memories.importance, EXCLUDED.importance) END, "
                "updated_at = greatest(memories.updated_at, EXCLUDED.updated_at) "
                "RETURNING id, xmax = 0",
                (scope, text, digest, label, weight, now, now, user, host)).fetchone()
            if new_tags:
                cur.execute("INSERT INTO memory_tags(memory_id, tag) SELECT %s, t FROM unnest(%s::text[]) AS t "
                            "ON CONFLICT DO NOTHING", (memory_id, new_tags))
            tags_now = [row[0] for row in cur.execute("SELECT tag FROM memory_tags WHERE memory_id = %s ORDER BY tag",
                                                       (memory_id,))]
            cur.execute("UPDATE memories SET search = setweight(to_tsvector('memesh', %s), 'D') || "
                        "setweight(to_tsvector('memesh', %s), 'A') WHERE id = %s",
                        (document(text), document(" ".join(tags_now)), memory_id))
            changed(Change(MEMORY, scope))
            return {**self._fetch(cur, [memory_id])[0], "created": bool(created)}

        return self._db.tracked_write(work, self._on_change)

    def forget(self, ids: Sequence[int]) -> dict[str, int]:
        """Delete the memories with these ids (unknown ids are ignored); ``{"deleted": n}``."""
        wanted = _ids(ids)
        user, host = self._db.origin

        def work(cur: Any, changed: Callable[[Change], None]) -> list[tuple]:
            rows = cur.execute("DELETE FROM memories WHERE id = ANY(%s) RETURNING id, origin_user, origin_host, project",
                               (wanted,)).fetchall()
            for project in sorted({row[3] for row in rows}):
                changed(Change(MEMORY, project))
            return rows

        rows = self._db.tracked_write(work, self._on_change)
        log_foreign_deletions(logger, (user, host), rows)  # once committed (a retried attempt logs nothing)
        return {"deleted": len(rows)}

    # -- reads ------------------------------------------------------------------------
    def recall(self, query: str = "", *, project: str = "", all_projects: bool = False,
               tags: Sequence[str] | None = None, kind: str | None = None, limit: int | None = None,
               cursor: str | None = None, origin: dict | None = None) -> Json:
        """Memories for ``query``, best first; newest first if it is empty (see memesh.store.memory)."""
        text = _text(query, "query", MAX_QUERY_CHARS)
        scope, everywhere = _project(project), _flag(all_projects, "all_projects")
        filters, wanted = _Filters(tags, kind, origin), _limit(limit, DEFAULT_RECALL_LIMIT, MAX_RECALL_LIMIT)
        fingerprint = _recall_fingerprint(text, scope, everywhere, filters, wanted)
        offset = _decode_offset(cursor, fingerprint)
        now = self._clock()

        def work(cur: Any) -> tuple[list[Json], dict[int, float]]:
            scores: dict[int, float] = {}
            if not text.strip():
                ranked = self._newest(cur, scope, everywhere, filters, wanted)[offset:]
            else:
                best = sorted(self._scored(cur, text, scope, everywhere, filters, now))[offset:wanted]
                ranked = [memory_id for _, _, memory_id in best]
                scores = {memory_id: -negated for _, negated, memory_id in best}
            return self._fetch(cur, ranked), scores

        memories, scores = self._db.read(work)
        return _recall_answer(memories, scores, scope, everywhere, fingerprint, offset)

    def list(self, *, project: str = "", all_projects: bool = False, tags: Sequence[str] | None = None,
             kind: str | None = None, limit: int | None = None, cursor: str | None = None,
             origin: dict | None = None) -> Json:
        """One page of memories, newest first: ``{"memories": [...], "nextCursor"?: str}``."""
        scope, everywhere = _project(project), _flag(all_projects, "all_projects")
        filters, wanted = _Filters(tags, kind, origin), _limit(limit, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)
        fingerprint = _list_fingerprint(scope, everywhere, filters)
        after = _decode_cursor(cursor, fingerprint)
        where, params = ("TRUE", []) if everywhere else ("m.project = %s", [scope])
        if after is not None:
            where += " AND (m.updated_at, m.id) < (%s, %s)"
            params += list(after)

        def work(cur: Any) -> tuple[list, list[Json]]:
            rows = cur.execute(f"SELECT m.id, m.updated_at FROM memories m WHERE {where}{filters.sql} "
                               f"ORDER BY m.updated_at DESC, m.id DESC LIMIT %s",
                               (*params, *filters.params, wanted + 1)).fetchall()
            return rows, self._fetch(cur, [memory_id for memory_id, _ in rows])

        rows, memories = self._db.read(work)
        return _list_answer(rows, memories, wanted, fingerprint)

    def stats(self) -> Json:
        """Counts: ``{"memories", "projects", "tags", "byProject": {project: memories}}``."""
        def work(cur: Any) -> Json:
            by_project = dict(cur.execute("SELECT project, count(*) FROM memories GROUP BY project ORDER BY project"))
            tags = cur.execute("SELECT count(DISTINCT tag) FROM memory_tags").fetchone()[0]
            return {"memories": sum(by_project.values()), "projects": len(by_project), "tags": tags,
                    "byProject": by_project}

        return self._db.read(work)

    # -- internals --------------------------------------------------------------------
    def _newest(self, cur: Any, scope: str, everywhere: bool, filters: _Filters, wanted: int) -> list[int]:
        where, params = ("TRUE", []) if everywhere else ("m.project = %s", [scope])
        return [row[0] for row in cur.execute(
            f"SELECT m.id FROM memories m WHERE {where}{filters.sql} "
            f"ORDER BY m.project != %s, m.updated_at DESC, m.id DESC LIMIT %s",
            (*params, *filters.params, scope, wanted))]

    def _scored(self, cur: Any, query: str, scope: str, everywhere: bool, filters: _Filters,
                now: float) -> list[tuple[bool, float, int]]:
        words = query_words(query)
        if not words:
            return []
        match = "(" + " || ".join(["plainto_tsquery('memesh', %s)"] * len(words)) + ")"
        rank = f"ts_rank({_WEIGHTS}, m.search, {match})"
        rows = []
        for same in (True, False) if everywhere else (True,):
            rows += [(same, *row) for row in cur.execute(
                f"SELECT m.id, {rank}, m.updated_at, m.importance FROM memories m WHERE m.search @@ {match} "
                f"AND m.project {'=' if same else '!='} %s{filters.sql} ORDER BY 2 DESC, m.id LIMIT %s",
                (*words, *words, scope, *filters.params, MAX_CANDIDATES),
                prepare=False)]  # planned for its own words, as graph search (memesh.store.pg.graph._planned)
        best = max((row[2] for row in rows), default=0.0) or 1.0
        return [(not same, -score(max(rank, 0.0) / best, now - updated_at, weight), memory_id)
                for same, memory_id, rank, updated_at, weight in rows]

    def _fetch(self, cur: Any, ids: list[int]) -> list[Json]:
        rows = {row[0]: row for row in cur.execute(f"{_COLUMNS} WHERE m.id = ANY(%s)", (ids,))}
        out = []
        for memory_id in ids:
            if memory_id not in rows:
                continue
            _, content, kind, importance, project, created, updated, tags, _, _ = rows[memory_id]
            out.append({"id": memory_id, "content": content, "kind": kind, "tags": list(tags),
                        "importance": importance, "project": project, "createdAt": iso_utc(created),
                        "updatedAt": iso_utc(updated)})
        return out
