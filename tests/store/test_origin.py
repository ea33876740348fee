"""Who wrote what (memesh.store.origin): origin filters on both backends, several writers on PostgreSQL."""
from __future__ import annotations

import logging

import pytest

from memesh.errors import ValidationError
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
def two_writers(pg_url, tmp_path):
    alice = open_backend(pg_url, tmp_path, origin=("alice", "laptop"))
    bob = open_backend(pg_url, tmp_path, origin=("bob", "devbox"))
    yield alice, bob
    alice.close()
    bob.close()


def test_on_postgresql_each_write_records_its_origin_and_time_and_filters_tell_writers_apart(two_writers, pg_url):
    alice, bob = two_writers
    alice.graph.create_entities([{"name": "Deploy", "entityType": "howto", "observations": ["run make ship"]}])
    bob.graph.add_observations([{"entityName": "Deploy", "contents": ["ship needs the VPN"]}])
    bob.graph.create_entities([{"name": "VPN", "entityType": "howto", "observations": ["ship via wireguard"]}])
    assert run_sql(pg_url, "SELECT o.content, o.origin_user, o.origin_host, o.created_at > 0 FROM observations o "
                           "ORDER BY o.id") == [("run make ship", "alice", "laptop", True),
                                                ("ship needs the VPN", "bob", "devbox", True),
                                                ("ship via wireguard", "bob", "devbox", True)]
    assert names(bob.graph.search_nodes("ship", origin={"user": "alice"})) == ["Deploy"]
    assert names(alice.graph.search_nodes("ship", origin={"host": "devbox"})) == ["VPN"]
    assert sorted(names(alice.graph.search_nodes("ship"))) == ["Deploy", "VPN"]
    alice.memory.remember("the VPN config lives in the wiki", project="github.com/acme/ops")
    bob.memory.remember("the VPN needs a token", project="github.com/acme/ops")
    found = bob.memory.recall("vpn", project="github.com/acme/ops", origin={"user": "alice"})["memories"]
    assert [m["content"] for m in found] == ["the VPN config lives in the wiki"]


def test_on_postgresql_forgetting_someone_elses_memory_works_and_is_logged(two_writers, caplog):
    alice, bob = two_writers
    made = alice.memory.remember("alice's note", project="/p")
    with caplog.at_level(logging.WARNING, logger="memesh.store.pg.memory"):
        assert bob.memory.forget([made["id"]]) == {"deleted": 1}
    assert any("bob@devbox forgot memory" in r.getMessage() and "alice@laptop" in r.getMessage()
               for r in caplog.records)
