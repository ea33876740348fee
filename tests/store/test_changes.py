"""Change events from the stores: after commit, only when something changed, with the
project for memories; and across processes sharing the file, through the changes table."""
from __future__ import annotations

import pytest

from memesh.errors import NotFound
from memesh.store.changes import KEEP, Change, ChangeFeed
from memesh.store.db import Database
from memesh.store.graph import KnowledgeGraph
from memesh.store.memory import MemoryStore

ADA = {"name": "Ada", "entityType": "person", "observations": ["wrote notes"]}


@pytest.fixture
def database(tmp_path):
    db = Database(tmp_path / "memesh.db")
    yield db
    db.close()


def test_a_graph_write_announces_one_change_after_it_committed(database):
    seen = []
    graph = KnowledgeGraph(database, on_change=lambda change: seen.append((change, graph.stats()["entities"])))
    graph.create_entities([ADA])
    assert seen == [(Change("graph"), 1)]   # the hook already sees the committed entity


def test_a_write_that_changes_nothing_or_fails_announces_nothing(database):
    seen = []
    graph = KnowledgeGraph(database, on_change=seen.append)
    graph.create_entities([ADA])
    seen.clear()
    assert graph.create_entities([ADA]) == []
    with pytest.raises(NotFound):
        graph.add_observations([{"entityName": "Nobody", "contents": ["x"]}])
    assert graph.delete_entities(["Nobody"]) == {"deleted": 0}
    assert seen == []


def test_memory_changes_name_every_project_they_touched(database):
    seen = []
    memory = MemoryStore(database, on_change=seen.append)
    first = memory.remember("one", project="/p/a")
    second = memory.remember("two", project="/p/b")
    assert seen == [Change("memory", "/p/a"), Change("memory", "/p/b")]
    seen.clear()
    memory.forget([first["id"], second["id"]])
    assert seen == [Change("memory", "/p/a"), Change("memory", "/p/b")]


def test_a_feed_publishes_what_other_processes_wrote_and_not_its_own(tmp_path):
    ours, theirs = Database(tmp_path / "m.db"), Database(tmp_path / "m.db")   # two writers on one file
    heard = []
    feed = ChangeFeed(ours, heard.append).start()
    try:
        KnowledgeGraph(ours).create_entities([ADA])
        MemoryStore(theirs).remember("from elsewhere", project="/p/x")
        KnowledgeGraph(theirs).create_relations([{"from": "Ada", "to": "Bob", "relationType": "knows"}])
        assert feed.poll() == [Change("memory", "/p/x"), Change("graph")]
        assert feed.poll() == []
    finally:
        feed.stop()
        ours.close()
        theirs.close()


def test_the_changes_table_keeps_only_the_newest_rows(database):
    graph = KnowledgeGraph(database)
    graph.create_entities([{"name": f"e{i}", "entityType": "t", "observations": []} for i in range(3)])
    for i in range(KEEP + 5):
        graph.add_observations([{"entityName": "e0", "contents": [f"fact {i}"]}])
    with database.read() as conn:
        assert conn.execute("SELECT count(*) FROM changes").fetchone()[0] == KEEP
