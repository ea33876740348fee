"""The least-privilege setup of docs/team.md works: an owner migrates, a DML-only login uses it."""
from __future__ import annotations

import json
import os

import psycopg
import pytest

from memesh.store.pg import rows as pg_rows
from memesh.store.storage import open_storage
from tests.pg_server import SUPERUSER


@pytest.fixture
def team_database(pg_server):
    suffix = os.getpid()
    db, owner, user = f"team{suffix}", f"owner{suffix}", f"alice{suffix}"
    pg_server.admin(f"CREATE ROLE {owner} LOGIN", f"CREATE DATABASE {db} OWNER {owner}")
    pg_server.admin("CREATE EXTENSION IF NOT EXISTS pg_trgm", "REVOKE ALL ON SCHEMA public FROM PUBLIC",
                    f"GRANT USAGE, CREATE ON SCHEMA public TO {owner}",
                    f"CREATE ROLE {user} LOGIN", f"GRANT CONNECT ON DATABASE {db} TO {user}",
                    f"GRANT USAGE ON SCHEMA public TO {user}",
                    f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
                    f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {user}",
                    f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT USAGE ON SEQUENCES TO {user}",
                    database=db)
    url = pg_server.url(db)
    try:
        yield url.replace(f"//{SUPERUSER}@", f"//{owner}@"), url.replace(f"//{SUPERUSER}@", f"//{user}@")
    finally:
        pg_server.admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)", f"DROP ROLE IF EXISTS {user}",
                        f"DROP ROLE IF EXISTS {owner}")


def test_a_login_with_only_row_rights_works_once_the_owner_created_the_schema(team_database, tmp_path):
    owner_url, user_url = team_database
    owner = open_storage(owner_url, tmp_path / "x.db")
    owner.graph.stats()  # the first call migrates
    owner.close()
    alice = open_storage(user_url, tmp_path / "x.db")
    try:
        alice.graph.create_entities([{"name": "Runbook", "entityType": "doc", "observations": ["restart the queue"]}])
        assert [e["name"] for e in alice.graph.search_nodes("queue")["entities"]] == ["Runbook"]
        assert alice.memory.remember("tokens rotate monthly", project="/p")["created"] is True
    finally:
        alice.close()
    with psycopg.connect(user_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("CREATE TABLE sneaky (id int)")


def test_a_login_with_only_row_rights_can_import_a_large_graph(team_database, tmp_path, monkeypatch):
    # Past ANALYZE_AFTER an import also rebuilds (into an empty graph) or merges the search indexes, which
    # only the indexes' owner may do: a row-rights login leaves that to the next vacuum.
    monkeypatch.setattr(pg_rows, "ANALYZE_AFTER", 10)
    owner_url, user_url = team_database
    owner = open_storage(owner_url, tmp_path / "x.db")
    owner.graph.stats()  # the first call migrates
    owner.close()
    alice = open_storage(user_url, tmp_path / "x.db")
    lines = [json.dumps({"type": "entity", "name": f"Runbook {i}", "entityType": "doc", "observations": [f"step {i}"]})
             for i in range(50)]
    try:
        assert alice.graph.import_jsonl(lines) == {"entities": 50, "relations": 0}
        assert [e["name"] for e in alice.graph.search_nodes("Runbook 7", limit=1)["entities"]] == ["Runbook 7"]
    finally:
        alice.close()
