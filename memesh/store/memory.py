"""Plain memories: short notes that sessions remember, recall by relevance, list and forget.

This module owns the memory store's semantics. The tables live in the shared database
(migration 3 in :mod:`memesh.store.db`); :class:`MemoryStore` is thread-safe and takes and
returns plain data only, because the daemon serves it over the manager socket.

Shape of a memory::

    {"id": int, "content": str, "kind": str, "tags": [str], "importance": float | None,
     "project": str, "createdAt": str, "updatedAt": str}     # times: ISO 8601 UTC, "…Z"

Decisions:

* **Project scope.** Every memory belongs to one project: the normalised git remote of
  its repository (``github.com/org/repo``), else a normalised absolute directory path
  (see :mod:`memesh.store.project`), or ``""`` for memories made outside any project
  (from Python, say). Reads look at one project unless ``all_projects`` is set.
* **No duplicates.** Content is stripped of surrounding whitespace; the same text in the
  same project is one memory. Remembering it again returns that memory with
  ``"created": false``, adds the new tags, keeps the larger importance and the first
  kind, and sets ``updatedAt`` to now (the fact was reaffirmed, so it ranks as recent).
* **Tags** are stripped and lower-cased, and are searched as words too. A ``tags``
  filter keeps memories that carry *all* the given tags.
* **Importance** is optional, from 0 (trivia) to 1 (crucial); absent counts as 0.5.
* **Ranking** (``recall`` with a query)::

      score = relevance × (0.5 + 0.5 × recency) × (0.5 + importance)
      relevance = bm25 / best bm25 among the matches   (1.0 for the best text match)
      recency   = 0.5 ** (age of updatedAt in days / 30)

  bm25 counts a word in the tags twice as much as one in the content; a memory needs at
  least one of the query's words. Relevance dominates: recency and importance together
  move a score by at most a factor of 1.5 up or 4 down. The current project's memories
  come first, then (``all_projects``) the others, each group by score. An empty query
  lists the newest instead. Every query word is quoted before it reaches FTS5, so no
  input is ever FTS syntax.
* **Origin.** Each memory records who wrote it (user, host; :mod:`memesh.store.origin`);
  ``recall`` and ``list`` take ``origin`` to keep only one user's or host's memories.
  Refreshing a memory keeps its first writer. Forgetting someone else's is logged.
* **Sizes.** Pages hold at most ``limit`` memories and stay under the same output
  ceiling as the graph's pages; ``list`` continues with ``nextCursor``; ``recall``
  says how many of its ``limit`` matches it had to leave out in ``omitted`` and continues
  with them through ``nextCursor``.
"""
from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from memesh.errors import ValidationError
from memesh.store.changes import MEMORY, OnChange, tracked_write
from memesh.store.db import Database
from memesh.store.graph import MAX_RESULT_CHARS
from memesh.store.origin import check_origin, log_foreign_deletions
from memesh.store.project import is_remote_key, normalise_path, project_for

__all__ = ["MemoryStore", "project_for"]

logger = logging.getLogger(__name__)

MAX_CONTENT_CHARS = 8000   # a memory is a note, not a document; 8,000 also fits a page
MAX_LABEL_CHARS = 64       # tags and kinds
MAX_TAGS = 32
MAX_QUERY_CHARS = 1000
MAX_IDS = 1000
DEFAULT_KIND = "note"
DEFAULT_IMPORTANCE = 0.5
DEFAULT_RECALL_LIMIT = 10
MAX_RECALL_LIMIT = 100
DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 500
HALF_LIFE_DAYS = 30.0
MAX_CANDIDATES = 1000      # best text matches per project group that are scored
TAG_WEIGHT, CONTENT_WEIGHT = 2.0, 1.0

Json = dict[str, Any]
_WORD = re.compile(r"[^\W_]+")
_IDS = "SELECT value FROM json_each(?)"
_COLUMNS = ("SELECT m.id, m.content, m.kind, m.importance, m.project, m.created_at, m.updated_at, "
            "(SELECT json_group_array(tag) FROM (SELECT tag FROM memory_tags WHERE memory_id = m.id "
            "ORDER BY tag)) FROM memories m")


# -- validation: every message starts with the name of the bad argument ---------------
def _text(value: object, field: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{field}: expected a string, got {type(value).__name__}")
    if len(value) > max_chars:
        raise ValidationError(f"{field}: longer than {max_chars} characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(f"{field}: contains a lone surrogate; send valid Unicode text") from None
    return value


def _label(value: object, field: str) -> str:
    label = _text(value, field, MAX_LABEL_CHARS).strip()
    if not label:
        raise ValidationError(f"{field}: must not be empty")
    return label


def _tags(value: object, field: str = "tags") -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValidationError(f"{field}: expected an array of strings, got {type(value).__name__}")
    if len(value) > MAX_TAGS:
        raise ValidationError(f"{field}: at most {MAX_TAGS} tags")
    return list(dict.fromkeys(_label(tag, f"{field}[{i}]").lower() for i, tag in enumerate(value)))


def _importance(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValidationError(f"importance: expected a number from 0 to 1, got {value!r}")
    return float(value)


def _project(value: object) -> str:
    if value == "" or is_remote_key(value):  # type: ignore[arg-type]
        return value  # type: ignore[return-value]
    return normalise_path(value, "project")  # type: ignore[arg-type]


def new_memory(content: object, tags: object, kind: object, importance: object, project: object
               ) -> tuple[str, list[str], str, float | None, str, str]:
    """Check what ``remember`` was given (pure; both storage backends use it):
    ``(text, tags, kind, importance, project, digest)``. Surrounding whitespace is not part
    of a memory (nor of its length); the digest finds the identical memory of a project."""
    text = _text(content, "content", 2 * MAX_CONTENT_CHARS).strip()
    if not text:
        raise ValidationError("content: must not be empty")
    if len(text) > MAX_CONTENT_CHARS:
        raise ValidationError(f"content: longer than {MAX_CONTENT_CHARS} characters")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return text, _tags(tags), _label(kind, "kind"), _importance(importance), _project(project), digest


def _limit(value: object, default: int, ceiling: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= ceiling:
        raise ValidationError(f"limit: expected an integer from 1 to {ceiling}, got {value!r}")
    return value


def _ids(value: object) -> list[int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValidationError(f"ids: expected an array of memory ids, got {type(value).__name__}")
    if len(value) > MAX_IDS:
        raise ValidationError(f"ids: at most {MAX_IDS} per call")
    for i, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int):
            raise ValidationError(f"ids[{i}]: expected an integer memory id, got {item!r}")
    return sorted(set(value))


# -- pure helpers -----------------------------------------------------------------
def iso_utc(timestamp: float) -> str:
    """``timestamp`` (seconds since the epoch) as ISO 8601 UTC with milliseconds and ``Z``."""
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fts_query(query: str) -> str | None:
    """The FTS5 expression for ``query``: each word quoted, any word may match; None if no words."""
    words = list(dict.fromkeys(word.lower() for word in _WORD.findall(query)))
    return " OR ".join(f'"{word}"' for word in words) or None


def score(relevance: float, age_seconds: float, importance: float | None) -> float:
    """The ranking formula of the module doc; ``relevance`` is already normalised to 0..1."""
    recency = 0.5 ** (max(age_seconds, 0.0) / 86400.0 / HALF_LIFE_DAYS)
    weight = DEFAULT_IMPORTANCE if importance is None else importance
    return relevance * (0.5 + 0.5 * recency) * (0.5 + weight)


def _size(value: object) -> int:
    return len(json.dumps(value)) + 2  # ASCII escapes: non-Latin text counts more, as in tokens


def _within_ceiling(items: list[Json]) -> int:
    """How many of ``items`` fit under the output ceiling (always at least one)."""
    left = MAX_RESULT_CHARS - 400  # the envelope: project, cursor, counts
    for n, item in enumerate(items):
        left -= _size(item)
        if left < 0:
            return max(n, 1)
    return len(items)


def _encode_cursor(scope: str, position: Any) -> str:
    raw = json.dumps({"v": 1, "s": scope, "p": position}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def _decode_cursor(cursor: object, scope: str) -> tuple[float, int] | None:
    if cursor is None:
        return None
    text = _text(cursor, "cursor", 4096)
    try:
        state = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        updated_at, memory_id = state["p"]
        if state["v"] == 1 and state["s"] == scope and isinstance(memory_id, int) \
                and isinstance(updated_at, (int, float)):
            return float(updated_at), memory_id
    except (ValueError, binascii.Error, KeyError, TypeError):
        pass
    raise ValidationError("cursor: not a nextCursor returned by list with these arguments; "
                          "omit it to start from the newest")


def _decode_offset(cursor: object, scope: str) -> int:
    """The offset a ``recall`` cursor holds (0 without one)."""
    if cursor is None:
        return 0
    text = _text(cursor, "cursor", 4096)
    try:
        state = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        offset = state["p"]
        if state["v"] == 1 and state["s"] == scope and isinstance(offset, int) and not isinstance(offset, bool) \
                and 0 < offset < MAX_RECALL_LIMIT:
            return offset
    except (ValueError, binascii.Error, KeyError, TypeError):
        pass
    raise ValidationError("cursor: not a nextCursor returned by recall with these arguments; "
                          "omit it to start from the best match")


def _recall_fingerprint(text: str, scope: str, everywhere: bool, filters: Any, wanted: int) -> str:
    """What a recall cursor is bound to: the same question with the same filters (either backend)."""
    key = [text, scope, everywhere, filters.tags, filters.kind, wanted] + ([filters.origin] if filters.origin else [])
    return "recall:" + hashlib.sha256(json.dumps(key).encode("utf-8")).hexdigest()[:16]


def _list_fingerprint(scope: str, everywhere: bool, filters: Any) -> str:
    """What a list cursor is bound to (either backend)."""
    key = [scope, everywhere, filters.tags, filters.kind] + ([filters.origin] if filters.origin else [])
    return hashlib.sha256(json.dumps(key).encode("utf-8")).hexdigest()[:16]


def _recall_answer(memories: list[Json], scores: dict[int, float], scope: str, everywhere: bool,
                   fingerprint: str, offset: int) -> Json:
    """recall's answer from the memories found, best first: scores added, cut at the ceiling."""
    for memory in memories:
        if memory["id"] in scores:
            memory["score"] = round(scores[memory["id"]], 6)
    fit = _within_ceiling(memories)
    out: Json = {"memories": memories[:fit], "project": scope, "allProjects": everywhere}
    if fit < len(memories):
        out["omitted"] = len(memories) - fit
        out["nextCursor"] = _encode_cursor(fingerprint, offset + fit)
    return out


def _list_answer(rows: list, memories: list[Json], wanted: int, fingerprint: str) -> Json:
    """list's page from ``rows`` ((id, updated_at), one more than ``wanted`` when there are more) and their memories."""
    fit = min(_within_ceiling(memories), wanted, len(rows))
    page: Json = {"memories": memories[:fit]}
    if fit < len(rows):
        memory_id, updated_at = rows[fit - 1]
        page["nextCursor"] = _encode_cursor(fingerprint, [updated_at, memory_id])
    return page


class _Filters:
    """The SQL condition (on alias ``m``) for tags/kind/origin filters, and its parameters."""

    def __init__(self, tags: object, kind: object, origin: object = None) -> None:
        self.tags = _tags(tags)
        self.kind = None if kind is None else _label(kind, "kind")
        self.origin = check_origin(origin)
        self.sql, self.params = "", []
        if self.kind is not None:
            self.sql += " AND m.kind = ?"
            self.params.append(self.kind)
        if self.tags:
            self.sql += (f" AND m.id IN (SELECT memory_id FROM memory_tags WHERE tag IN ({_IDS}) "
                         f"GROUP BY memory_id HAVING count(*) = ?)")
            self.params += [json.dumps(self.tags), len(self.tags)]
        for key, column in (("user", "origin_user"), ("host", "origin_host")):
            if key in self.origin:
                self.sql += f" AND m.{column} = ?"
                self.params.append(self.origin[key])


class MemoryStore:
    """Project-scoped memories in a :class:`~memesh.store.db.Database`; thread-safe.

    ``clock`` (seconds since the epoch) is the time source for timestamps and recency.
    """

    def __init__(self, database: Database, *, clock: Callable[[], float] = time.time,
                 on_change: OnChange | None = None) -> None:
        """``on_change(Change("memory", project))`` is called after each write that changed
        memories commits, once per project touched (see :mod:`memesh.store.changes`)."""
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
        user, host = self._db.writer
        with tracked_write(self._db, self._on_change, MEMORY) as (conn, pending):
            pending.projects.add(scope)
            row = conn.execute("SELECT id, importance FROM memories WHERE project = ? AND content_hash = ?",
                               (scope, digest)).fetchone()
            if row is None:
                memory_id = conn.execute(
                    "INSERT INTO memories(project, content, content_hash, kind, importance, created_at, "
                    "updated_at, origin_user, origin_host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (scope, text, digest, label, weight, now, now, user, host)).lastrowid
            else:
                memory_id, old = row
                kept = old if weight is None else weight if old is None else max(old, weight)
                conn.execute("UPDATE memories SET importance = ?, updated_at = max(updated_at, ?) WHERE id = ?",
                             (kept, now, memory_id))
            conn.executemany("INSERT OR IGNORE INTO memory_tags(memory_id, tag) VALUES (?, ?)",
                             [(memory_id, tag) for tag in new_tags])
            conn.execute("DELETE FROM memory_fts WHERE rowid = ?", (memory_id,))
            conn.execute("INSERT INTO memory_fts(rowid, content, tags) SELECT id, content, (SELECT "
                         "group_concat(tag, ' ') FROM memory_tags WHERE memory_id = m.id) "
                         "FROM memories m WHERE id = ?", (memory_id,))
            memory = self._fetch(conn, [memory_id])[0]
        return {**memory, "created": row is None}

    def forget(self, ids: Sequence[int]) -> dict[str, int]:
        """Delete the memories with these ids (unknown ids are ignored); ``{"deleted": n}``.

        Forgetting a memory someone else wrote (another user or host, say after a copy
        from a team's database) is allowed, and logged as a warning naming both.
        """
        wanted = json.dumps(_ids(ids))
        user, host = self._db.writer
        with tracked_write(self._db, self._on_change, MEMORY) as (conn, pending):
            rows = conn.execute(f"SELECT id, origin_user, origin_host, project FROM memories WHERE id IN ({_IDS})",
                                (wanted,)).fetchall()
            pending.projects.update(row[3] for row in rows)
            deleted = conn.execute(f"DELETE FROM memories WHERE id IN ({_IDS})", (wanted,)).rowcount
            conn.execute(f"DELETE FROM memory_fts WHERE rowid IN ({_IDS})", (wanted,))
        log_foreign_deletions(logger, (user, host), rows)
        return {"deleted": max(deleted, 0)}

    # -- reads ------------------------------------------------------------------------
    def recall(self, query: str = "", *, project: str = "", all_projects: bool = False,
               tags: Sequence[str] | None = None, kind: str | None = None, limit: int | None = None,
               cursor: str | None = None, origin: dict | None = None) -> Json:
        """Memories for ``query``, best first (module doc: Ranking); newest first if it is empty.

        Returns ``{"memories": [...], "project": str, "allProjects": bool}`` plus, when the
        output ceiling cut the list, ``"omitted": n`` and a ``"nextCursor"`` that continues
        with them (pass it back as ``cursor`` with the same arguments); with a query each
        memory carries its ``score``.
        """
        text = _text(query, "query", MAX_QUERY_CHARS)
        scope, everywhere = _project(project), _flag(all_projects, "all_projects")
        filters, wanted = _Filters(tags, kind, origin), _limit(limit, DEFAULT_RECALL_LIMIT, MAX_RECALL_LIMIT)
        fingerprint = _recall_fingerprint(text, scope, everywhere, filters, wanted)
        offset = _decode_offset(cursor, fingerprint)
        scores: dict[int, float] = {}
        with self._db.read() as conn:
            if not text.strip():
                ranked = self._newest(conn, scope, everywhere, filters, wanted)[offset:]
            else:
                best = sorted(self._scored(conn, text, scope, everywhere, filters, self._clock()))[offset:wanted]
                ranked = [memory_id for _, _, memory_id in best]
                scores = {memory_id: -negated for _, negated, memory_id in best}
            memories = self._fetch(conn, ranked)
        return _recall_answer(memories, scores, scope, everywhere, fingerprint, offset)

    def list(self, *, project: str = "", all_projects: bool = False, tags: Sequence[str] | None = None,
             kind: str | None = None, limit: int | None = None, cursor: str | None = None,
             origin: dict | None = None) -> Json:
        """One page of memories, newest first: ``{"memories": [...], "nextCursor"?: str}``."""
        scope, everywhere = _project(project), _flag(all_projects, "all_projects")
        filters, wanted = _Filters(tags, kind, origin), _limit(limit, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)
        fingerprint = _list_fingerprint(scope, everywhere, filters)
        after = _decode_cursor(cursor, fingerprint)
        where, params = "1" if everywhere else "m.project = ?", [] if everywhere else [scope]
        if after is not None:
            where += " AND (m.updated_at, m.id) < (?, ?)"
            params += list(after)
        with self._db.read() as conn:
            rows = conn.execute(f"SELECT m.id, m.updated_at FROM memories m WHERE {where}{filters.sql} "
                                f"ORDER BY m.updated_at DESC, m.id DESC LIMIT ?",
                                (*params, *filters.params, wanted + 1)).fetchall()
            memories = self._fetch(conn, [memory_id for memory_id, _ in rows])
        return _list_answer(rows, memories, wanted, fingerprint)

    def stats(self) -> Json:
        """Counts: ``{"memories", "projects", "tags", "byProject": {project: memories}}``."""
        with self._db.read() as conn:
            by_project = dict(conn.execute("SELECT project, count(*) FROM memories GROUP BY project ORDER BY project"))
            tags = conn.execute("SELECT count(DISTINCT tag) FROM memory_tags").fetchone()[0]
        return {"memories": sum(by_project.values()), "projects": len(by_project), "tags": tags,
                "byProject": by_project}

    # -- internals --------------------------------------------------------------------
    def _newest(self, conn: Any, scope: str, everywhere: bool, filters: _Filters, wanted: int) -> list[int]:
        """Ids of the newest memories, the current project's first."""
        where, params = ("1", []) if everywhere else ("m.project = ?", [scope])
        return [row[0] for row in conn.execute(
            f"SELECT m.id FROM memories m WHERE {where}{filters.sql} "
            f"ORDER BY m.project != ?, m.updated_at DESC, m.id DESC LIMIT ?",
            (*params, *filters.params, scope, wanted))]

    def _scored(self, conn: Any, query: str, scope: str, everywhere: bool, filters: _Filters,
                now: float) -> list[tuple[bool, float, int]]:
        """``(from another project, -score, id)`` for the best text matches: sorted, best first."""
        match = fts_query(query)
        if match is None:
            return []
        rows = []
        for same in (True, False) if everywhere else (True,):
            rows += [(same, *row) for row in conn.execute(
                f"SELECT m.id, -bm25(memory_fts, {CONTENT_WEIGHT}, {TAG_WEIGHT}), m.updated_at, m.importance "
                f"FROM memory_fts JOIN memories m ON m.id = memory_fts.rowid WHERE memory_fts MATCH ? "
                f"AND m.project {'=' if same else '!='} ?{filters.sql} "
                f"ORDER BY bm25(memory_fts, {CONTENT_WEIGHT}, {TAG_WEIGHT}) LIMIT ?",
                (match, scope, *filters.params, MAX_CANDIDATES))]
        best = max((row[2] for row in rows), default=0.0) or 1.0
        return [(not same, -score(max(rank, 0.0) / best, now - updated_at, weight), memory_id)
                for same, memory_id, rank, updated_at, weight in rows]

    def _fetch(self, conn: Any, ids: list[int]) -> list[Json]:
        """Memories by id, in the order given (ids that vanished are skipped)."""
        rows = {row[0]: row for row in conn.execute(f"{_COLUMNS} WHERE m.id IN ({_IDS})", (json.dumps(ids),))}
        out = []
        for memory_id in ids:
            if memory_id not in rows:
                continue
            _, content, kind, importance, project, created, updated, tags = rows[memory_id]
            out.append({"id": memory_id, "content": content, "kind": kind, "tags": json.loads(tags),
                        "importance": importance, "project": project, "createdAt": iso_utc(created),
                        "updatedAt": iso_utc(updated)})
        return out


def _flag(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{field}: expected true or false, got {value!r}")
    return value
