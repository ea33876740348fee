"""Search on PostgreSQL stays on its good plans: after many searches, after a bulk import, under writes.

Both the graph's search_nodes and the memories' recall.
"""
from __future__ import annotations

import json
import random

import psycopg

from memesh.store.pg import rows as pg_rows
from memesh.store.pg.db import PgDatabase
from memesh.store import graph as sqlite_graph
from memesh.store.copy import copy_storage
from memesh.store.pg.graph import PgKnowledgeGraph
from memesh.store.pg.memory import PgMemoryStore
from memesh.store.storage import open_storage


def ent(name, entity_type="thing", observations=()):
    return {"name": name, "entityType": entity_type, "observations": list(observations)}


def graph_lines(count):
    """A JSONL graph of ``count`` entities."""
    return [json.dumps({"type": "entity", **ent(f"Node {i}", "note", [f"alpha beta {i}", "gamma delta"])})
            for i in range(count)]


def test_search_statements_are_never_prepared_so_each_is_planned_for_its_own_words(pg_url):
    # One connection, so that every search runs on it: psycopg prepares a statement run
    # five times, and PostgreSQL may then plan it once for any word (a generic plan).
    database = PgDatabase(pg_url, max_size=1)
    graph = PgKnowledgeGraph(database)
    try:
        graph.create_entities([ent(f"Node {i}", observations=["alpha beta", "gamma"]) for i in range(5)])
        for _ in range(8):
            for query in ("alpha", "alpha gamma", "lph", "Node 3"):
                assert graph.search_nodes(query)["entities"]
        prepared = database.read(lambda cur: [row[0] for row in cur.execute(
            "SELECT statement FROM pg_prepared_statements").fetchall()])
        assert any("observations" in text for text in prepared)  # the page's queries are prepared
        assert [text for text in prepared if "@@" in text or "LIKE" in text] == []
    finally:
        database.close()


def pending_pages(url, table="entities"):
    """Pages each GIN index of ``table`` still has in its pending list (merging them says how many)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT c.relname, gin_clean_pending_list(c.oid) FROM pg_index i "
                            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
                            "WHERE i.indrelid = %s::regclass AND a.amname = 'gin' ORDER BY 1", (table,)).fetchall()


def test_a_bulk_import_leaves_nothing_in_the_search_indexes_pending_lists(pg_url, tmp_path, monkeypatch):
    monkeypatch.setattr(pg_rows, "ANALYZE_AFTER", 100)
    storage = open_storage(pg_url, tmp_path / "x.db")
    try:
        assert storage.graph.import_jsonl(graph_lines(400)) == {"entities": 400, "relations": 0}
        assert [e["name"] for e in storage.graph.search_nodes("Node 7", limit=1)["entities"]] == ["Node 7"]
    finally:
        storage.close()
    pages = pending_pages(pg_url)
    assert len(pages) >= 2 and all(count == 0 for _, count in pages), pages


def test_a_small_import_leaves_its_entries_pending_for_the_next_vacuum(pg_url, tmp_path, monkeypatch):
    monkeypatch.setattr(pg_rows, "ANALYZE_AFTER", 100)
    storage = open_storage(pg_url, tmp_path / "x.db")
    try:
        storage.graph.import_jsonl(graph_lines(50))
    finally:
        storage.close()
    assert any(count > 0 for _, count in pending_pages(pg_url))


def test_writes_keep_the_search_indexes_pending_lists_within_one_megabyte(pg_url, tmp_path):
    # Each write re-indexes the whole entity: a long observation text adds a few thousand
    # trigrams to the pending list each time, past 1 MB well before PostgreSQL's 4 MB.
    rng = random.Random(5)
    text = " ".join("".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 9))) for _ in range(600))
    storage = open_storage(pg_url, tmp_path / "x.db")
    try:
        storage.graph.create_entities([ent("Long", observations=[text])])
        for i in range(300):
            storage.graph.add_observations([{"entityName": "Long", "contents": [f"note {i}"]}])
        assert [e["name"] for e in storage.graph.search_nodes("note 299")["entities"]] == ["Long"]
    finally:
        storage.close()
    pages = dict(pending_pages(pg_url))
    assert pages and max(pages.values()) <= 1024 // 8, pages


def test_recall_statements_are_never_prepared_so_each_is_planned_for_its_own_words(pg_url):
    database = PgDatabase(pg_url, max_size=1)
    memory = PgMemoryStore(database)
    try:
        for i in range(5):
            memory.remember(f"deploy note {i}: alpha beta", tags=["ops"], project="/p")
        for _ in range(8):
            for query in ("alpha", "deploy beta", "note"):
                assert memory.recall(query, project="/p")["memories"]
                assert memory.recall(query, all_projects=True, tags=["ops"])["memories"]
        prepared = database.read(lambda cur: [row[0] for row in cur.execute(
            "SELECT statement FROM pg_prepared_statements").fetchall()])
        assert any("memory_tags" in text for text in prepared)  # the memories' fetch is prepared
        assert [text for text in prepared if "@@" in text] == []
    finally:
        database.close()


def long_text(rng, words=600):
    return " ".join("".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 9))) for _ in range(words))


def test_remembering_keeps_the_memories_search_index_pending_list_within_one_megabyte(pg_url, tmp_path):
    # A memory of 600 distinct words adds two pages (16 kB) to the pending list: 240 of
    # them are well past 1 MB and short of PostgreSQL's 4 MB, where it would be merged.
    rng = random.Random(7)
    storage = open_storage(pg_url, tmp_path / "x.db")
    try:
        for i in range(240):
            storage.memory.remember(f"note{i} {long_text(rng)}", project="/p")
        assert [m["content"][:7] for m in storage.memory.recall("note239", project="/p")["memories"]] == ["note239"]
    finally:
        storage.close()
    pages = dict(pending_pages(pg_url, "memories"))
    assert list(pages) == ["memories_search"] and pages["memories_search"] <= 1024 // 8, pages


def test_a_storage_copy_of_many_memories_leaves_nothing_in_their_search_index_pending_list(pg_url, tmp_path,
                                                                                           monkeypatch):
    monkeypatch.setattr(pg_rows, "ANALYZE_AFTER", 100)
    source = open_storage(f"sqlite:{tmp_path}/source.db", tmp_path / "x.db")
    team = open_storage(pg_url, tmp_path / "x.db")
    try:
        for i in range(150):
            source.memory.remember(f"runbook step {i}: restart the queue", tags=["ops"], project="/p")
        assert copy_storage(source, team)["memories"] == 150
        assert team.memory.recall("step 7", project="/p")["memories"][0]["content"] == "runbook step 7: restart the queue"
    finally:
        team.close()
        source.close()
    assert pending_pages(pg_url, "memories") == [("memories_search", 0)]


def test_a_small_storage_copy_leaves_its_memories_pending_for_the_next_vacuum(pg_url, tmp_path, monkeypatch):
    monkeypatch.setattr(pg_rows, "ANALYZE_AFTER", 100)
    source = open_storage(f"sqlite:{tmp_path}/source.db", tmp_path / "x.db")
    team = open_storage(pg_url, tmp_path / "x.db")
    try:
        for i in range(50):
            source.memory.remember(f"runbook step {i}: restart the queue", project="/p")
        assert copy_storage(source, team)["memories"] == 50
    finally:
        team.close()
        source.close()
    assert pending_pages(pg_url, "memories")[0][1] > 0


def newest_window_plans(database, graph, query):
    """The plans PostgreSQL ran for a large pass's "newest of all matches" statement of ``query``
    (auto_explain on the single pooled connection reports each plan to it as a notice)."""
    plans = []

    def explain_each(cur):
        cur.connection.add_notice_handler(lambda notice: plans.append(notice.message_primary))
        for statement in ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
                          "SET auto_explain.log_level = 'notice'"):
            cur.execute(statement)

    database.read(explain_each)
    assert graph.search_nodes(query, limit=50)["entities"]
    return [plan for plan in plans if "ORDER BY id DESC LIMIT" in plan and "ts_rank(name_search" not in plan]


def test_a_large_pass_takes_the_newest_of_few_matches_from_the_index_and_walks_the_key_for_dense_ones(
        pg_url, monkeypatch):
    # 10,000 entities; "rare" in 3% of them (300 > RANK_WINDOW 100). Walking the primary
    # key from the newest row would test ~3,300 rows to find the newest 100 of them; the
    # search index names all 300 at once. "note", the type of every entity, is found
    # fastest by the walk (100 rows), and must stay so.
    monkeypatch.setattr(sqlite_graph, "RANK_WINDOW", 100)
    rng = random.Random(3)
    rare = set(rng.sample(range(10_000), 300))
    lines = [json.dumps({"type": "entity", "name": f"Node {i}", "entityType": "note", "observations": [
        ("rare " if i in rare else "") + " ".join(f"w{rng.randrange(3000)}" for _ in range(12)) for _ in range(3)]})
        for i in range(10_000)]
    database = PgDatabase(pg_url, max_size=1)
    graph = PgKnowledgeGraph(database)
    try:
        assert graph.import_jsonl(lines)["entities"] == 10_000  # past ANALYZE_AFTER: analysed
        plans = newest_window_plans(database, graph, "rare")
        assert plans and all("Bitmap Index Scan on entities_search" in plan and "Backward" not in plan
                             for plan in plans), plans
        plans = newest_window_plans(database, graph, "note")
        assert plans and all("Index Scan Backward using entities_pkey" in plan for plan in plans), plans
    finally:
        database.close()
