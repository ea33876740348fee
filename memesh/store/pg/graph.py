"""The knowledge graph on PostgreSQL: the same semantics as :mod:`memesh.store.graph`.

:class:`PgKnowledgeGraph` answers every call with the shapes, ordering, paging and size
ceiling of the SQLite :class:`~memesh.store.graph.KnowledgeGraph`; validation, cursors,
page assembly and JSONL parsing are that module's own functions. What differs is only
how the rows are found:

* Ranked search uses the ``search`` tsvector (GIN) and ``ts_rank`` with weights that
  mirror bm25's (name 1.0, entity type 0.3, observations 0.1; length-normalised), in the
  same passes and with the same bounded ranking past ``RANK_WINDOW`` matches ("Search
  order" in :mod:`memesh.store.graph`). Ties go by id, as there.
* Substring search is ``LIKE`` on the case-folded ``folded`` text, answered by a pg_trgm
  index where there is one, listed in id order.
* Every write is one transaction (:meth:`PgDatabase.write`, retried on serialization
  failures) that also publishes a change notice to the other daemons.
* Each entity and observation records its origin (user, host) and time; ``search_nodes``
  can keep only entities created by a given user or host (``origin``).
"""
from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from memesh.errors import NotFound
from memesh.store import graph as sqlite_graph
from memesh.store.db import fold_case
from memesh.store.graph import (
    DEFAULT_PAGE_LIMIT,
    DEFAULT_SEARCH_LIMIT,
    _decode_cursor,
    _encode_cursor,
    _entity,
    _entity_dict,
    _fingerprint,
    _is_graph_position,
    _is_offset,
    _limit,
    _offset,
    _position,
    _list,
    _named_texts,
    _relation,
    _relation_dict,
    _text,
    _texts,
    continued_entity_page,
    entity_page,
    graph_page,
    jsonl_line,
    parse_jsonl,
)
from memesh.store.origin import check_origin
from memesh.store.changes import GRAPH, Change, OnChange
from memesh.store.pg.db import Deferred, PgDatabase
from memesh.store.pg.rows import add_graph_pg
from memesh.store.rows import GraphRows, rows_from_parsed
from memesh.store.pg.text import document, like_pattern, query_words

Json = dict[str, Any]
Changed = Callable[[Change], None]

_WEIGHTS = "'{0.0, 0.1, 0.3, 1.0}'"  # D (unused), C observations, B entityType, A name
_NORMALISE = 1  # divide by 1 + log(document length): longer documents rank lower, as with bm25
_NAMED_RELATIONS = ("SELECT r.from_id, r.to_id, f.name, t.name, r.relation_type FROM relations r "
                    "JOIN entities f ON f.id = r.from_id JOIN entities t ON t.id = r.to_id ")


def _tsquery(words: list[str], every: bool) -> tuple[str, list[str]]:
    """SQL for a tsquery of ``words`` (every one, or any), and its parameters; no input is syntax."""
    one = "plainto_tsquery('memesh', %s)"
    return "(" + (" && " if every else " || ").join([one] * len(words)) + ")", list(words)


def _planned(cur: Any, sql: str, params: list) -> Any:
    """Run a search statement planned for its own parameters: never prepared.

    psycopg prepares a statement run five times on a connection, and PostgreSQL then may
    plan it once for any parameters (a generic plan). For search the best plan depends on
    the values (how common a word is, a LIKE pattern), and the generic one can be a scan
    of the whole table: seen at 10k entities, 16 ms a search instead of 2 ms.
    """
    return cur.execute(sql, params, prepare=False)


# One part of a word pass: the SQL condition on entities and its parameters, the rank
# expression and its parameters.
_Part = tuple[str, list, str, list]


def _large_parts(words: list[str], every: bool, where: str, params: list) -> tuple[_Part, _Part]:
    """The two parts of a word pass in search order: its name matches, then all its matches.

    A pass with at most RANK_WINDOW matches is the second part ranked whole; a larger one
    lists the first part, then the second (memesh.store.graph, "Search order").
    """
    match, match_params = _tsquery(words, every)
    condition, condition_params = f"search @@ {match}{where}", [*match_params, *params]
    any_word, any_params = _tsquery(words, False)
    in_name = f"name_search @@ {any_word}"
    if every and len(words) > 1:  # a word in the name, and every word anywhere
        name_condition, name_params = f"{in_name} AND {condition}", [*any_params, *condition_params]
    else:
        name_condition, name_params = f"{in_name}{where}", [*any_params, *params]
    return ((name_condition, name_params, f"ts_rank(name_search, {any_word}, {_NORMALISE})", any_params),
            (condition, condition_params, f"ts_rank({_WEIGHTS}, search, {match}, {_NORMALISE})", match_params))


def _counted(part: _Part, window: int, want: int) -> tuple[str, list]:
    """The first ``want`` of up to ``window`` + 1 matches of ``part`` by rank (ties by id), each
    row with how many matches there were: more than ``window`` means not all of them."""
    condition, params, rank, rank_params = part
    return (f"SELECT id, n FROM (SELECT id, score, count(*) OVER () AS n FROM (SELECT id, {rank} AS score "
            f"FROM entities WHERE {condition} LIMIT %s) AS found) AS counted ORDER BY score DESC, id LIMIT %s",
            [*rank_params, *params, window + 1, want])


def _newest(part: _Part, window: int, want: int) -> tuple[str, list]:
    """The first ``want`` of the newest ``window`` matches of ``part`` by rank, ties by id."""
    condition, params, rank, rank_params = part
    return (f"SELECT id FROM (SELECT id, {rank} AS score FROM entities WHERE {condition} "
            f"ORDER BY id DESC LIMIT %s) AS newest ORDER BY score DESC, id LIMIT %s",
            [*rank_params, *params, window, want])


class PgKnowledgeGraph:
    """The knowledge graph stored in a :class:`PgDatabase`; thread-safe. See the module doc."""

    def __init__(self, database: PgDatabase, *, on_change: OnChange | None = None) -> None:
        """``on_change(Change("graph"))`` is called after each write that changed the graph
        commits (memesh.store.changes); other daemons hear of it through NOTIFY."""
        self._db = database
        self._on_change = on_change

    def __repr__(self) -> str:
        return f"<memesh KnowledgeGraph on {self._db.path}>"

    def close(self) -> None:
        """The database belongs to whoever opened it; nothing to do."""

    # -- writes -----------------------------------------------------------------------
    def create_entities(self, entities: list[Json]) -> list[Json]:
        """Create entities whose names are new; return those created."""
        batch = [_entity(e, f"entities[{i}]") for i, e in enumerate(_list(entities, "entities"))]
        user, host = self._db.origin

        def work(cur: Any, changed: Changed) -> list[Json]:
            created, touched, now = [], [], time.time()
            for name, entity_type, observations in batch:
                row = cur.execute(
                    "INSERT INTO entities(name, entity_type, created_at, updated_at, origin_user, origin_host) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET entity_type = EXCLUDED.entity_type, "
                    "created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, origin_user = EXCLUDED.origin_user, "
                    "origin_host = EXCLUDED.origin_host WHERE entities.entity_type IS NULL RETURNING id",
                    (name, entity_type, now, now, user, host)).fetchone()
                if row is None:  # a real entity of that name exists already
                    continue
                self._add_observations(cur, row[0], observations, now)
                touched.append(row[0])
                created.append(_entity_dict(name, entity_type, observations))
            self._reindex(cur, touched)
            if created:
                changed(Change(GRAPH))
            return created

        return self._db.tracked_write(work, self._on_change)

    def _add_observations(self, cur: Any, entity_id: int, texts: list[str], now: float) -> list[str]:
        """Insert the texts not present yet; return those inserted, in order."""
        if not texts:
            return []
        user, host = self._db.origin
        rows = cur.execute(
            "INSERT INTO observations(entity_id, content, created_at, origin_user, origin_host) "
            "SELECT %s, t.content, %s, %s, %s FROM unnest(%s::text[]) WITH ORDINALITY AS t(content, n) ORDER BY t.n "
            "ON CONFLICT (entity_id, md5(content)) DO NOTHING RETURNING content",
            (entity_id, now, user, host, list(dict.fromkeys(texts)))).fetchall()
        added = {row[0] for row in rows}
        return [text for text in dict.fromkeys(texts) if text in added]

    def create_relations(self, relations: list[Json]) -> list[Json]:
        """Create relations not present yet; return those created. Endpoints may be unknown."""
        batch = list(dict.fromkeys(_relation(r, f"relations[{i}]")
                                   for i, r in enumerate(_list(relations, "relations"))))

        def work(cur: Any, changed: Changed) -> list[Json]:
            ids = self._ids(cur, {name for rel in batch for name in rel[:2]}, make_stubs=True)
            created = []
            for source, target, relation_type in batch:
                if cur.execute("INSERT INTO relations(from_id, to_id, relation_type) VALUES (%s, %s, %s) "
                               "ON CONFLICT DO NOTHING RETURNING id",
                               (ids[source], ids[target], relation_type)).fetchone():
                    created.append(_relation_dict(source, target, relation_type))
            if created:
                changed(Change(GRAPH))
            return created

        return self._db.tracked_write(work, self._on_change)

    def add_observations(self, observations: list[Json]) -> list[Json]:
        """Add observations to existing entities; all or nothing (NotFound names the entity)."""
        items = _named_texts(observations, "observations", "contents")

        def work(cur: Any, changed: Changed) -> list[Json]:
            now = time.time()
            ids = self._ids(cur, {name for name, _ in items}, make_stubs=False)
            for i, (name, _) in enumerate(items):
                if name not in ids:
                    raise NotFound(f"observations[{i}].entityName: no entity named {name!r}; "
                                   f"create it with create_entities first (nothing was added)")
            results = [{"entityName": name, "addedObservations": self._add_observations(cur, ids[name], contents, now)}
                       for name, contents in items]
            touched = sorted({ids[name] for name, _ in items})
            cur.execute("UPDATE entities SET updated_at = %s WHERE id = ANY(%s)", (now, touched))
            self._reindex(cur, touched)
            if any(r["addedObservations"] for r in results):
                changed(Change(GRAPH))
            return results

        return self._db.tracked_write(work, self._on_change)

    def delete_entities(self, entityNames: list[str]) -> dict[str, int]:  # noqa: N803
        """Delete entities, their observations and every relation touching them."""
        names = sorted(set(_texts(entityNames, "entityNames")))

        def work(cur: Any, changed: Changed) -> dict[str, int]:
            rows = cur.execute("DELETE FROM entities WHERE name = ANY(%s) RETURNING entity_type", (names,)).fetchall()
            self._drop_unused_stubs(cur)
            if rows:
                changed(Change(GRAPH))
            return {"deleted": sum(row[0] is not None for row in rows)}

        return self._db.tracked_write(work, self._on_change)

    def delete_observations(self, deletions: list[Json]) -> dict[str, int]:
        """Delete the given observation texts; unknown entities and texts are ignored."""
        items = _named_texts(deletions, "deletions", "observations")

        def work(cur: Any, changed: Changed) -> dict[str, int]:
            now, deleted = time.time(), 0
            ids = self._ids(cur, {name for name, _ in items}, make_stubs=False)
            for name, texts in items:
                if name in ids:
                    deleted += len(cur.execute("DELETE FROM observations WHERE entity_id = %s AND content = ANY(%s) "
                                               "RETURNING id", (ids[name], texts)).fetchall())
            touched = sorted(set(ids.values()))
            cur.execute("UPDATE entities SET updated_at = %s WHERE id = ANY(%s)", (now, touched))
            self._reindex(cur, touched)
            if deleted:
                changed(Change(GRAPH))
            return {"deleted": deleted}

        return self._db.tracked_write(work, self._on_change)

    def delete_relations(self, relations: list[Json]) -> dict[str, int]:
        """Delete the given relations; unknown ones are ignored."""
        batch = sorted(set(_relation(r, f"relations[{i}]") for i, r in enumerate(_list(relations, "relations"))))

        def work(cur: Any, changed: Changed) -> dict[str, int]:
            deleted = 0
            for source, target, relation_type in batch:
                deleted += len(cur.execute(
                    "DELETE FROM relations WHERE from_id = (SELECT id FROM entities WHERE name = %s) "
                    "AND to_id = (SELECT id FROM entities WHERE name = %s) AND relation_type = %s RETURNING id",
                    (source, target, relation_type)).fetchall())
            self._drop_unused_stubs(cur)
            if deleted:
                changed(Change(GRAPH))
            return {"deleted": deleted}

        return self._db.tracked_write(work, self._on_change)

    def _ids(self, cur: Any, names: Iterable[str], make_stubs: bool) -> dict[str, int]:
        """Map names to entity ids (real entities only, unless stubs are to be made)."""
        wanted = sorted(set(names))
        if make_stubs and wanted:
            now = time.time()
            cur.execute("INSERT INTO entities(name, entity_type, created_at, updated_at) "
                        "SELECT n, NULL, %s, %s FROM unnest(%s::text[]) AS n ORDER BY n ON CONFLICT (name) DO NOTHING",
                        (now, now, wanted))
        rows = cur.execute("SELECT name, id, entity_type FROM entities WHERE name = ANY(%s)", (wanted,)).fetchall()
        return {name: entity_id for name, entity_id, entity_type in rows if make_stubs or entity_type is not None}

    def _drop_unused_stubs(self, cur: Any) -> None:
        cur.execute("DELETE FROM entities WHERE entity_type IS NULL "
                    "AND NOT EXISTS (SELECT 1 FROM relations WHERE from_id = entities.id) "
                    "AND NOT EXISTS (SELECT 1 FROM relations WHERE to_id = entities.id)")

    def _reindex(self, cur: Any, entity_ids: Iterable[int]) -> None:
        """Recompute the search columns of these entities from their current rows."""
        ids = sorted(set(entity_ids))
        if not ids:
            return
        observations: dict[int, list[str]] = defaultdict(list)
        for entity_id, text in cur.execute("SELECT entity_id, content FROM observations WHERE entity_id = ANY(%s) "
                                           "ORDER BY id", (ids,)):
            observations[entity_id].append(text)
        rows = cur.execute("SELECT id, name, entity_type FROM entities WHERE id = ANY(%s) AND entity_type IS NOT NULL",
                           (ids,)).fetchall()
        params = []
        for entity_id, name, entity_type in rows:
            texts = "\n".join(observations[entity_id])
            params.append((document(name), document(entity_type), document(texts), document(name),
                           fold_case(f"{name}\n{entity_type}\n{texts}"), entity_id))
        cur.executemany(
            "UPDATE entities SET search = setweight(to_tsvector('memesh', %s), 'A') || "
            "setweight(to_tsvector('memesh', %s), 'B') || setweight(to_tsvector('memesh', %s), 'C'), "
            "name_search = to_tsvector('memesh', %s), folded = %s WHERE id = %s", params)

    # -- reads ------------------------------------------------------------------------
    def read_graph(self, limit: int | None = None, cursor: str | None = None) -> Json:
        """One page of the whole graph: entities by name, then relations."""
        limit = _limit(limit, DEFAULT_PAGE_LIMIT)
        phase, after = _decode_cursor(cursor, "graph", "", _is_graph_position) or ("e", None)

        def work(cur: Any) -> Json:
            items: list[tuple[str, Any, Json]] = []
            position, current = after, phase
            if current == "o":  # the rest of an entity too large for one page
                name, skip = position
                row = cur.execute("SELECT id FROM entities WHERE name = %s AND entity_type IS NOT NULL",
                                  (name,)).fetchone()
                if row is not None:
                    page = continued_entity_page(self._entities(cur, [row[0]])[0][1], skip)
                    if page is not None:
                        return page
                current, position = "e", name  # it is gone or complete: go on after it
            if current == "e":
                where = "" if position is None else "AND name > %s"
                rows = cur.execute(f"SELECT id FROM entities WHERE entity_type IS NOT NULL {where} ORDER BY name LIMIT %s",
                                   (*([] if position is None else [position]), limit + 1)).fetchall()
                items += [("e", entity["name"], entity) for _, entity in self._entities(cur, [r[0] for r in rows])]
                position = None
            if len(items) <= limit:
                where = "" if position is None else "WHERE (r.from_id, r.to_id, r.relation_type) > (%s, %s, %s)"
                rows = cur.execute(f"{_NAMED_RELATIONS} {where} ORDER BY r.from_id, r.to_id, r.relation_type LIMIT %s",
                                   (*(position or []), limit + 1 - len(items))).fetchall()
                items += [("r", [f, t, rt], _relation_dict(fn, tn, rt)) for f, t, fn, tn, rt in rows]
            return graph_page(items, limit)

        return self._db.read(work)

    def search_nodes(self, query: str, limit: int | None = None, cursor: str | None = None,
                     origin: Json | None = None) -> Json:
        """Entities matching ``query``, best first, with the relations touching them.

        ``origin`` ({"user"?: str, "host"?: str}) keeps only entities created by that user/host.
        """
        query = _text(query, "query")
        limit = _limit(limit, DEFAULT_SEARCH_LIMIT)
        where, params = _origin_filter(origin)
        scope = _fingerprint(query if not params else query + json.dumps(params))
        offset, skip = _offset(_decode_cursor(cursor, "search", scope, _is_offset) or 0)

        def work(cur: Any) -> Deferred:
            ids = self._ranked_ids(cur, query, offset + limit + 1, where, params)[offset:]
            return self._page(cur, ids, limit, skip,
                              lambda n, done: _encode_cursor("search", scope, _position(offset + n, done)))

        return self._db.read(work)

    def open_nodes(self, names: list[str], limit: int | None = None, cursor: str | None = None) -> Json:
        """The named entities (unknown names ignored), with the relations touching them."""
        wanted = sorted(set(_texts(names, "names")))
        limit = _limit(limit, DEFAULT_PAGE_LIMIT)
        scope = _fingerprint(json.dumps(wanted))
        offset, skip = _offset(_decode_cursor(cursor, "open", scope, _is_offset) or 0)

        def work(cur: Any) -> Deferred:
            found = self._ids(cur, wanted, make_stubs=False)
            ids = [found[name] for name in wanted if name in found][offset:offset + limit + 1]
            return self._page(cur, ids, limit, skip,
                              lambda n, done: _encode_cursor("open", scope, _position(offset + n, done)))

        return self._db.read(work)

    # Every query of a call is sent before any answer is awaited where the logic allows
    # (pipeline mode): each round trip to the server costs more than the queries do.
    def _ranked_ids(self, cur: Any, query: str, want: int, where: str = "", params: list | None = None) -> list[int]:
        """The first ``want`` entity ids in the search order for ``query`` (see memesh.store.graph).

        The queries that count the word passes' matches (up to RANK_WINDOW + 1 each) go out
        together, each answering with the pass's first ``want`` matches by rank. A larger
        pass then asks for its parts one at a time, only while the page is short, and the
        substring pass is asked only if the word passes left it short.
        """
        params = params or []
        if not query.strip():
            return [row[0] for row in cur.execute(
                f"SELECT id FROM entities WHERE entity_type IS NOT NULL{where} ORDER BY name LIMIT %s", (*params, want))]
        window = sqlite_graph.RANK_WINDOW  # read at call time: one setting for both backends
        words = query_words(query)
        conn = cur.connection
        passes = []
        for every in (True, False)[:len(words)]:
            parts = _large_parts(words, every, where, params)
            counted = conn.cursor()
            _planned(counted, *_counted(parts[1], window, want))
            passes.append((counted, parts))
        ranked: dict[int, None] = {}
        for counted, parts in passes:
            rows = counted.fetchall()
            if not rows or rows[0][1] <= window:  # every match was counted: these are the first, by rank
                pieces: Iterator[list] = iter([rows])
            else:
                pieces = self._large_pass(cur, parts, window, want)
            # Each piece holds up to ``want`` rows, at most len(ranked) of them listed already:
            # one piece of ``want`` rows fills the page, and the pieces after it are not asked for.
            while len(ranked) < want:
                piece = next(pieces, None)
                if piece is None:
                    break
                for row in piece:
                    ranked.setdefault(row[0])
        # Asked only when the word passes left the page short: a substring scan costs more.
        if len(ranked) < want and "\x00" not in query:  # PostgreSQL text never holds NUL
            for row in _planned(cur, f"SELECT id FROM entities WHERE folded LIKE %s{where} ORDER BY id LIMIT %s",
                                [like_pattern(fold_case(query)), *params, want]).fetchall():
                ranked.setdefault(row[0])
        return list(ranked)[:want]

    def _large_pass(self, cur: Any, parts: tuple["_Part", "_Part"], window: int,
                    want: int) -> Iterator[list[tuple[int, ...]]]:
        """A pass past RANK_WINDOW matches: name matches first, each part windowed (memesh.store.graph).

        The newest RANK_WINDOW matches can be found two ways: walking the primary key from
        the newest row, testing each (cheap when matches are dense), or taking every
        match from the search index and sorting them by id (cheap when they are few). The
        planner weighs them by what it reckons a random page read costs; its default, 4
        sequential reads, is for disks and makes it walk the key even for a word in 3% of
        the entities (100k entities: 30,000 rows tested, 5,140 buffers, instead of 3,202
        matches from the index, 2,874 buffers). A memesh store is read from memory (a team
        server's buffers hold it), where a random page costs about a sequential one: these
        statements are planned as such (1.1, the common setting for SSDs and cached data).
        """
        cur.execute("SET LOCAL random_page_cost = 1.1", prepare=False)  # this read transaction only
        for part in parts:
            yield from self._windowed(cur, part, _planned(cur, *_newest(part, window, want)).fetchall(), window, want)

    def _windowed(self, cur: Any, part: "_Part", rows: list[tuple[int, ...]], window: int,
                  want: int) -> Iterator[list[tuple[int, ...]]]:
        """``rows``, the newest ``window`` matches of ``part`` by rank; then the older ones, newest first."""
        yield rows
        if len(rows) == window:  # the window was full (and the page is still short)
            condition, params, _, _ = part
            yield _planned(cur, f"SELECT id FROM entities WHERE {condition} AND id < %s ORDER BY id DESC LIMIT %s",
                           [*params, min(row[0] for row in rows), want]).fetchall()

    def _queue_entities(self, cur: Any, ids: list[int]) -> Callable[[], list[tuple[int, Json]]]:
        """Send the queries for these entities; the function returned fetches them, in the order given."""
        conn = cur.connection
        observations_cur, entities_cur = conn.cursor(), conn.cursor()
        observations_cur.execute("SELECT entity_id, content FROM observations WHERE entity_id = ANY(%s) ORDER BY id",
                                 (ids,))
        entities_cur.execute("SELECT id, name, entity_type FROM entities WHERE id = ANY(%s)", (ids,))

        def fetch() -> list[tuple[int, Json]]:
            observations: dict[int, list[str]] = defaultdict(list)
            for entity_id, text in observations_cur.fetchall():
                observations[entity_id].append(text)
            rows = {row[0]: row for row in entities_cur.fetchall()}
            return [(i, _entity_dict(rows[i][1], rows[i][2], observations[i])) for i in ids if i in rows]

        return fetch

    def _entities(self, cur: Any, ids: list[int]) -> list[tuple[int, Json]]:
        """Entities by id, in the order given, with their observations in insertion order."""
        return self._queue_entities(cur, ids)()

    def _page(self, cur: Any, ids: list[int], limit: int, skip: int, next_cursor) -> Deferred:
        """Send the page's queries; the result, once fetched, is the page (see PgDatabase.read)."""
        shown = ids[:limit]
        relations_cur = cur.connection.cursor()
        relations_cur.execute(f"{_NAMED_RELATIONS} WHERE r.from_id = ANY(%s) OR r.to_id = ANY(%s) ORDER BY 3, 4, 5",
                              (shown, shown))
        entities = self._queue_entities(cur, shown)
        return Deferred(lambda: entity_page(entities(), relations_cur.fetchall(), len(ids), skip, next_cursor))

    # -- whole-graph operations -------------------------------------------------------
    def stats(self) -> dict[str, int]:
        """Counts: {"entities", "relations", "observations"}."""
        return self._db.read(lambda cur: dict(zip(("entities", "relations", "observations"), cur.execute(
            "SELECT (SELECT count(*) FROM entities WHERE entity_type IS NOT NULL), (SELECT count(*) FROM relations), "
            "(SELECT count(*) FROM observations)").fetchone())))

    def export_jsonl(self, fp: IO[str]) -> dict[str, int]:
        """Write the graph in the reference server's JSONL format, sorted; return counts."""
        counts = {"entities": 0, "relations": 0}

        def work(cur: Any) -> None:
            rows = cur.execute("SELECT e.name, e.entity_type, o.content FROM entities e LEFT JOIN observations o "
                               "ON o.entity_id = e.id WHERE e.entity_type IS NOT NULL ORDER BY e.name, o.id")
            for (name, entity_type), group in itertools.groupby(rows, key=lambda row: row[:2]):
                fp.write(jsonl_line({"type": "entity", **_entity_dict(
                    name, entity_type, [r[2] for r in group if r[2] is not None])}))
                counts["entities"] += 1
            for _, _, source, target, relation_type in cur.execute(f"{_NAMED_RELATIONS} ORDER BY 3, 4, 5"):
                fp.write(jsonl_line({"type": "relation", **_relation_dict(source, target, relation_type)}))
                counts["relations"] += 1

        self._db.read(work)
        return counts

    def import_jsonl(self, fp: Iterable[str | bytes]) -> dict[str, int]:
        """Add a reference-format JSONL graph; all or nothing. Returns counts created."""
        entities, relations = parse_jsonl(fp)
        return self.import_graph(entities, relations)

    def import_graph(self, entities: dict[str, tuple[str, list[str]]],
                     relations: dict[tuple[str, str, str], None]) -> dict[str, int]:
        """Add parsed entities and relations (create_* semantics) in one transaction."""
        return self._db.tracked_write(lambda cur, changed: self.import_in(cur, entities, relations, changed),
                                      self._on_change, bulk=True)

    def import_in(self, cur: Any, entities: dict[str, tuple[str, list[str]]],
                  relations: dict[tuple[str, str, str], None], changed: Changed) -> dict[str, int]:
        """:meth:`import_graph` inside the caller's transaction: written by this daemon's origin, now."""
        return self.add_rows_in(cur, rows_from_parsed(entities, relations, time.time(), self._db.origin), changed)

    def add_rows_in(self, cur: Any, rows: GraphRows, changed: Changed) -> dict[str, int]:
        """Add rows that say who wrote what and when (memesh.store.rows) inside the caller's
        transaction (``storage copy`` adds memories to it); counts added."""
        added = add_graph_pg(cur, rows)
        if added["entities"] or added["relations"]:
            changed(Change(GRAPH))
        return added


def _origin_filter(origin: Json | None) -> tuple[str, list[str]]:
    """SQL (`` AND ...`` on entities) keeping those created by ``origin``'s user and/or host."""
    checked = check_origin(origin)
    columns = {"user": "origin_user", "host": "origin_host"}
    return "".join(f" AND {columns[key]} = %s" for key in checked), list(checked.values())
