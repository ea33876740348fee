"""Tests for memesh.store.copy and ``memesh storage copy``: SQLite into PostgreSQL and back."""
from __future__ import annotations

import io
import os
import time

import pytest

from memesh.errors import ValidationError
from memesh.store.copy import copy_storage, read_rows
from memesh.store.storage import open_storage
from tests.store.backends import run_sql

# The acceptance size: 100,000 entities there and back (37 s for this test on a two-core
# machine, lightly loaded; about a minute when it is busy). MEMESH_TEST_COPY_ENTITIES sets another.
ROUND_TRIP_ENTITIES = int(os.environ.get("MEMESH_TEST_COPY_ENTITIES", "100000"))


def export(storage) -> str:
    out = io.StringIO()
    storage.graph.export_jsonl(out)
    return out.getvalue()


def fill(storage, count: int) -> None:
    lines = []
    for i in range(count):
        lines.append('{"type":"entity","name":"e%06d","entityType":"kind%d","observations":["fact %d","shared ü"]}'
                     % (i, i % 7, i))
    for i in range(0, count, 3):
        lines.append('{"type":"relation","from":"e%06d","to":"e%06d","relationType":"next"}' % (i, (i + 1) % count))
    lines.append('{"type":"relation","from":"e000000","to":"Not Created Yet","relationType":"waits"}')
    storage.graph.import_jsonl(lines)
    storage.memory.remember("deploys go out on Thursdays", tags=["release", "ops"], importance=0.8,
                            project="github.com/acme/widgets")
    storage.memory.remember("a note without a project")


@pytest.fixture
def stores(tmp_path, pg_url):
    opened = []

    def open_(url):
        opened.append(open_storage(url, tmp_path / "default.db"))
        return opened[-1]

    yield open_
    for storage in opened:
        storage.close()


@pytest.mark.timeout(600)  # 100,000 entities twice over: minutes, not the usual 180 s, on a machine under load
def test_a_sqlite_store_copied_into_postgresql_and_back_exports_identically(stores, tmp_path, pg_url):
    original = stores(f"sqlite:{tmp_path}/original.db")
    fill(original, ROUND_TRIP_ENTITIES)
    team = stores(pg_url)
    started = time.monotonic()
    added = copy_storage(original, team)
    into_pg = time.monotonic() - started
    assert added == {"entities": ROUND_TRIP_ENTITIES, "relations": len(range(0, ROUND_TRIP_ENTITIES, 3)) + 1,
                     "memories": 2}
    back = stores(f"sqlite:{tmp_path}/back.db")
    started = time.monotonic()
    copy_storage(team, back)
    out_of_pg = time.monotonic() - started
    assert export(back) == export(team) == export(original)
    # Row for row, with who wrote each and when, memories and their tags too.
    assert read_rows(back) == read_rows(team) == read_rows(original)
    for store in (team, back):
        found = store.memory.recall("thursdays", project="github.com/acme/widgets")["memories"]
        assert [(m["content"], m["tags"], m["importance"]) for m in found] == [
            ("deploys go out on Thursdays", ["ops", "release"], 0.8)]
        assert store.memory.stats()["memories"] == 2
        assert [e["name"] for e in store.graph.search_nodes("fact 17")["entities"]][:1] == ["e000017"]
    print(f"copied {ROUND_TRIP_ENTITIES} entities into PostgreSQL in {into_pg:.1f}s, back in {out_of_pg:.1f}s")


def test_a_copy_there_and_back_keeps_who_wrote_what_and_when(tmp_path, pg_url):
    path = tmp_path / "original.db"
    alice = open_storage(f"sqlite:{path}", path, origin=("alice", "laptop"))
    bob = open_storage(f"sqlite:{path}", path, origin=("bob", "devbox"))
    team = open_storage(pg_url, tmp_path / "x.db", origin=("carol", "ci"))
    back = open_storage(f"sqlite:{tmp_path}/back.db", tmp_path / "x.db", origin=("dave", "box"))
    try:
        alice.graph.create_entities([{"name": "Deploy", "entityType": "howto", "observations": ["run make ship"]}])
        bob.graph.add_observations([{"entityName": "Deploy", "contents": ["ship needs the VPN"]}])
        bob.graph.create_entities([{"name": "VPN", "entityType": "howto", "observations": []}])
        bob.graph.create_relations([{"from": "Deploy", "to": "VPN", "relationType": "needs"},
                                    {"from": "VPN", "to": "Later", "relationType": "waits for"}])
        alice.memory.remember("the VPN config lives in the wiki", tags=["vpn"], project="github.com/acme/ops")
        bob.memory.remember("the VPN needs a token", importance=0.9, project="github.com/acme/ops")
        original = read_rows(alice)
        assert {row[3:] for row in original[0].observations} == {("alice", "laptop"), ("bob", "devbox")}
        copy_storage(alice, team)
        copy_storage(team, back)
        assert read_rows(team) == original and read_rows(back) == original  # origins, times, tags, all of it
        for store in (team, back):
            assert [e["name"] for e in store.graph.search_nodes("ship", origin={"user": "alice"})["entities"]] == [
                "Deploy"]
            found = store.memory.recall("vpn", project="github.com/acme/ops", origin={"host": "devbox"})["memories"]
            assert [m["content"] for m in found] == ["the VPN needs a token"]
    finally:
        for storage in (alice, bob, team, back):
            storage.close()


@pytest.mark.parametrize("destination_holds", [[], ["already"]], ids=["empty", "not-empty"])
def test_a_bulk_copy_into_postgresql_leaves_every_search_index_in_place_and_searchable(stores, tmp_path, pg_url,
                                                                                      monkeypatch, destination_holds):
    from memesh.store.pg import rows as pg_rows

    monkeypatch.setattr(pg_rows, "ANALYZE_AFTER", 10)  # 50 entities take the bulk path (drop and rebuild when empty)
    original = stores(f"sqlite:{tmp_path}/original.db")
    fill(original, 50)
    team = stores(pg_url)
    team.graph.create_entities([{"name": name, "entityType": "t", "observations": []} for name in destination_holds])
    indexes = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'entities' ORDER BY 1"
    before = run_sql(pg_url, indexes)
    assert copy_storage(original, team)["entities"] == 50
    assert run_sql(pg_url, indexes) == before
    assert [e["name"] for e in team.graph.search_nodes("fact 17")["entities"]][:1] == ["e000017"]
    assert [e["name"] for e in team.graph.search_nodes("000017")["entities"]] == ["e000017"]  # substring, trigram
    assert run_sql(pg_url, "SELECT count(*) FROM entities WHERE search IS NULL AND entity_type IS NOT NULL") == [(0,)]


def test_copying_twice_adds_nothing_the_second_time(stores, tmp_path, pg_url):
    original = stores(f"sqlite:{tmp_path}/original.db")
    fill(original, 50)
    team = stores(pg_url)
    copy_storage(original, team)
    before = export(team)
    assert copy_storage(original, team) == {"entities": 0, "relations": 0, "memories": 0}
    assert export(team) == before and team.memory.stats()["memories"] == 2


def test_a_copy_that_fails_leaves_the_destination_unchanged(stores, tmp_path, pg_url):
    original = stores(f"sqlite:{tmp_path}/original.db")
    fill(original, 50)
    original.graph.create_entities([{"name": "zzz", "entityType": "t", "observations": ["NUL \x00 inside"]}])
    team = stores(pg_url)
    team.graph.create_entities([{"name": "already", "entityType": "t", "observations": []}])
    before = export(team)
    with pytest.raises(ValidationError, match="NUL"):
        copy_storage(original, team)  # PostgreSQL text cannot hold NUL: the last entity fails
    assert export(team) == before and team.memory.stats()["memories"] == 0


def test_the_storage_copy_command_copies_into_postgresql_and_says_what_it_added(memesh_home, pg_url):
    store = open_storage("sqlite:", memesh_home.path / "memesh.db")
    fill(store, 30)
    store.close()
    done = memesh_home.cli("storage", "copy", "--to", pg_url)
    assert done.returncode == 0, done.stderr
    assert "added 30 entities, 11 relations, 2 memories" in done.stdout
    again = memesh_home.cli("storage", "copy", "--to", pg_url)
    assert "added 0 entities, 0 relations, 0 memories" in again.stdout
    shown = memesh_home.cli("storage", "show", env={"MEMESH_STORAGE_URL": pg_url})
    assert shown.stdout.strip() == f"postgresql {pg_url}"
    bad = memesh_home.cli("storage", "copy", "--to", "mysql://x/y")
    assert bad.returncode == 78 and "--to:" in bad.stderr
