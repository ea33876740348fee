"""memesh keeps its tables in the first schema of the search path, never borrowing a later one's."""
from __future__ import annotations

import pytest

from memesh.store.storage import open_storage


@pytest.fixture
def two_schemas(pg_server):
    older, fresh = pg_server.create_database(), pg_server.create_database()
    yield older, fresh
    pg_server.drop_database(older)
    pg_server.drop_database(fresh)


def names(url, tmp_path):
    storage = open_storage(url, tmp_path / "x.db")
    try:
        return [e["name"] for e in storage.graph.read_graph()["entities"]]
    finally:
        storage.close()


def test_a_fresh_first_schema_gets_its_own_tables_even_when_a_later_one_has_memesh_tables(two_schemas, tmp_path):
    older, fresh = two_schemas
    first = open_storage(older, tmp_path / "x.db")
    try:
        first.graph.create_entities([{"name": "in the older schema", "entityType": "t", "observations": []}])
    finally:
        first.close()
    older_schema = older.split("search_path%3D")[1].split("%2C")[0]
    both = fresh.replace("%2Cpublic", f"%2C{older_schema}%2Cpublic")  # search path: fresh, older, public
    assert names(both, tmp_path) == []
    second = open_storage(both, tmp_path / "x.db")
    try:
        second.graph.create_entities([{"name": "in the fresh schema", "entityType": "t", "observations": []}])
    finally:
        second.close()
    assert names(older, tmp_path) == ["in the older schema"]
    assert names(fresh, tmp_path) == ["in the fresh schema"]
