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


MIGRATE = """
import sys
from memesh.store.pg.db import PgDatabase
db = PgDatabase(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()  # the common start signal
db.ensure_ready()
db.close()
"""


def test_several_processes_migrating_one_fresh_database_at_once_apply_each_version_once(pg_url):
    import os
    import subprocess
    import sys

    import psycopg

    from memesh.store.pg.schema import MIGRATIONS

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    procs = [subprocess.Popen([sys.executable, "-c", MIGRATE, pg_url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(6)]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:  # all at once: each migration's transaction takes the advisory lock
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outcomes = [proc.wait(timeout=60) for proc in procs]
        assert outcomes == [0] * 6, [proc.stderr.read() for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    with psycopg.connect(pg_url) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM memesh_schema ORDER BY version")]
    assert versions == [version for version, _ in MIGRATIONS]
