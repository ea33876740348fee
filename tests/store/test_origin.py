"""Who wrote what (memesh.store.origin): origins recorded, filters and logged deletions, on both backends."""
from __future__ import annotations

import logging
import time

import pytest

from memesh.errors import ValidationError
from memesh.store.db import MIGRATIONS, Database
from memesh.store.origin import default_origin
from tests.store.backends import open_backend, run_sql

ME_USER, ME_HOST = default_origin()


def names(result):
    return [e["name"] for e in result["entities"]]


@pytest.fixture
def storage(backend, tmp_path):
    opened = open_backend(backend, tmp_path)
    yield opened
    opened.close()


def test_a_filter_naming_this_user_and_host_keeps_what_they_wrote_and_others_keep_nothing(storage):
    storage.graph.create_entities([{"name": "Mine", "entityType": "t", "observations": ["written here"]}])
    storage.memory.remember("a memory written here", project="/p")
    assert names(storage.graph.search_nodes("written", origin={"user": ME_USER})) == ["Mine"]
    assert names(storage.graph.search_nodes("written", origin={"user": ME_USER, "host": ME_HOST})) == ["Mine"]
    assert names(storage.graph.search_nodes("written", origin={"host": "elsewhere.example"})) == []
    assert len(storage.memory.recall("memory", project="/p", origin={"host": ME_HOST})["memories"]) == 1
    assert storage.memory.recall("memory", project="/p", origin={"user": "nobody-else"})["memories"] == []
    assert storage.memory.list(project="/p", origin={"user": "nobody-else"})["memories"] == []


@pytest.mark.parametrize("origin, message", [("alice", "origin: expected an object"), ({"who": "x"}, "origin: unknown"),
                                             ({"user": ""}, "origin.user:"), ({"host": 3}, "origin.host:")])
def test_a_malformed_origin_filter_is_refused_naming_the_field(storage, origin, message):
    with pytest.raises(ValidationError, match=f"^{message}"):
        storage.graph.search_nodes("x", origin=origin)
    with pytest.raises(ValidationError, match=f"^{message}"):
        storage.memory.recall("x", origin=origin)


@pytest.fixture
def two_writers(backend, tmp_path):
    """Two writers on one storage: alice on her laptop, bob on a dev box (one SQLite file, or one database)."""
    alice = open_backend(backend, tmp_path, origin=("alice", "laptop"))
    bob = open_backend(backend, tmp_path, origin=("bob", "devbox"))
    yield alice, bob
    alice.close()
    bob.close()


def test_each_write_records_its_origin_and_time_and_filters_tell_writers_apart(two_writers, backend):
    alice, bob = two_writers
    started = time.time()
    alice.graph.create_entities([{"name": "Deploy", "entityType": "howto", "observations": ["run make ship"]}])
    bob.graph.add_observations([{"entityName": "Deploy", "contents": ["ship needs the VPN"]}])
    bob.graph.create_entities([{"name": "VPN", "entityType": "howto", "observations": ["ship via wireguard"]}])
    assert run_sql(backend, "SELECT o.content, o.origin_user, o.origin_host, o.created_at >= ? FROM observations o "
                            "ORDER BY o.id", started - 1) == [("run make ship", "alice", "laptop", True),
                                                               ("ship needs the VPN", "bob", "devbox", True),
                                                               ("ship via wireguard", "bob", "devbox", True)]
    assert run_sql(backend, "SELECT name, origin_user, origin_host FROM entities ORDER BY id") == [
        ("Deploy", "alice", "laptop"), ("VPN", "bob", "devbox")]
    assert names(bob.graph.search_nodes("ship", origin={"user": "alice"})) == ["Deploy"]
    assert names(alice.graph.search_nodes("ship", origin={"host": "devbox"})) == ["VPN"]
    assert names(alice.graph.search_nodes("ship", origin={"user": "bob", "host": "laptop"})) == []
    assert sorted(names(alice.graph.search_nodes("ship"))) == ["Deploy", "VPN"]
    alice.memory.remember("the VPN config lives in the wiki", project="github.com/acme/ops")
    bob.memory.remember("the VPN needs a token", project="github.com/acme/ops")
    found = bob.memory.recall("vpn", project="github.com/acme/ops", origin={"user": "alice"})["memories"]
    assert [m["content"] for m in found] == ["the VPN config lives in the wiki"]
    listed = alice.memory.list(project="github.com/acme/ops", origin={"host": "devbox"})["memories"]
    assert [m["content"] for m in listed] == ["the VPN needs a token"]
    newest = alice.memory.recall("", project="github.com/acme/ops", origin={"user": "bob"})["memories"]
    assert [m["content"] for m in newest] == ["the VPN needs a token"]


def test_a_stub_made_by_a_relation_gets_the_origin_of_whoever_creates_the_entity(two_writers, backend):
    alice, bob = two_writers
    alice.graph.create_relations([{"from": "Ops", "to": "Pager", "relationType": "owns"}])
    assert run_sql(backend, "SELECT name, origin_user FROM entities ORDER BY name") == [("Ops", None), ("Pager", None)]
    bob.graph.create_entities([{"name": "Pager", "entityType": "tool", "observations": ["pages the on-call"]}])
    assert run_sql(backend, "SELECT name, origin_user, origin_host FROM entities ORDER BY name") == [
        ("Ops", None, None), ("Pager", "bob", "devbox")]
    assert names(alice.graph.search_nodes("pager", origin={"user": "bob"})) == ["Pager"]
    assert names(alice.graph.search_nodes("pager", origin={"user": "alice"})) == []


def test_an_origin_filter_applies_to_every_search_pass_and_pages_to_the_end(two_writers, monkeypatch):
    from memesh.store import graph as graph_module

    monkeypatch.setattr(graph_module, "RANK_WINDOW", 3)  # both backends read it: large passes are windowed
    alice, bob = two_writers
    for writer, who in ((alice, "alice"), (bob, "bob")):
        writer.graph.create_entities([{"name": f"{who} kiwi {i}", "entityType": "fruit",
                                       "observations": [f"kiwi note {i}", f"grown by {who}"]} for i in range(5)])
        writer.graph.create_entities([{"name": f"{who} plain {i}", "entityType": "t",
                                       "observations": [f"says kiwifruit {i}"]} for i in range(3)])

    def everything(query):
        found, cursor = [], None
        while True:
            page = bob.graph.search_nodes(query, limit=2, cursor=cursor, origin={"user": "alice"})
            found += names(page)
            cursor = page.get("nextCursor")
            if cursor is None:
                return found

    kiwis = {f"alice kiwi {i}" for i in range(5)}
    plains = {f"alice plain {i}" for i in range(3)}
    for query, expected in (("kiwi", kiwis | plains), ("kiwi grown", kiwis), ("kiwi note grown", kiwis),
                            ("iwifrui", plains), ("", kiwis | plains)):
        found = everything(query)
        assert len(found) == len(set(found)) and set(found) == expected, query
    with pytest.raises(ValidationError, match="cursor"):  # a cursor belongs to its filter
        page = bob.graph.search_nodes("kiwi", limit=2, origin={"user": "alice"})
        bob.graph.search_nodes("kiwi", limit=2, cursor=page["nextCursor"], origin={"user": "bob"})


def test_forgetting_someone_elses_memory_works_and_is_logged_naming_both(two_writers, caplog):
    alice, bob = two_writers
    made = alice.memory.remember("alice's note", project="/p")
    own = bob.memory.remember("bob's own note", project="/p")
    with caplog.at_level(logging.WARNING, logger="memesh.store"):
        assert bob.memory.forget([made["id"], own["id"]]) == {"deleted": 2}
    logged = [r.getMessage() for r in caplog.records if "forgot memory" in r.getMessage()]
    assert logged == [f"bob@devbox forgot memory {made['id']} written by alice@laptop"]
    assert bob.memory.list(project="/p")["memories"] == []


def test_a_sqlite_store_from_before_origins_were_kept_counts_its_rows_as_its_owners(tmp_path):
    old = Database(tmp_path / "old.db", migrations=MIGRATIONS[:6])
    with old.write() as conn:  # rows as memesh of schema version 6 wrote them
        conn.execute("INSERT INTO entities(id, name, entity_type, created_at, updated_at) VALUES (1, 'Old', 't', 100, 200)")
        conn.execute("INSERT INTO entities(id, name, entity_type, created_at, updated_at) VALUES (2, 'Stub', NULL, 5, 5)")
        conn.execute("INSERT INTO relations(from_id, to_id, relation_type) VALUES (1, 2, 'r')")
        conn.execute("INSERT INTO observations(entity_id, content) VALUES (1, 'an old fact')")
        conn.execute("INSERT INTO entity_fts(rowid, name, entity_type, observations) VALUES (1, 'Old', 't', 'an old fact')")
        conn.execute("INSERT INTO memories(project, content, content_hash, kind, created_at, updated_at) "
                     "VALUES ('/p', 'an old memory', 'h', 'note', 1, 1)")
        conn.execute("INSERT INTO memory_fts(rowid, content) VALUES (1, 'an old memory')")
    old.close()
    url = f"sqlite:{tmp_path}/old.db"
    storage = open_backend(url, tmp_path)
    try:
        assert storage.db.user_version == len(MIGRATIONS)
        assert run_sql(url, "SELECT name, origin_user, origin_host FROM entities ORDER BY id") == [
            ("Old", ME_USER, ME_HOST), ("Stub", None, None)]
        assert run_sql(url, "SELECT content, created_at, origin_user, origin_host FROM observations") == [
            ("an old fact", 100.0, ME_USER, ME_HOST)]
        assert run_sql(url, "SELECT origin_user, origin_host FROM memories") == [(ME_USER, ME_HOST)]
        assert names(storage.graph.search_nodes("fact", origin={"user": ME_USER, "host": ME_HOST})) == ["Old"]
        assert names(storage.graph.search_nodes("fact", origin={"user": "someone-else"})) == []
        assert len(storage.memory.recall("memory", project="/p", origin={"user": ME_USER})["memories"]) == 1
    finally:
        storage.close()
