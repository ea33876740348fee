"""Tests for memesh.store.db: file creation, pragmas, migrations, threads and transactions."""
import os
import sqlite3
import stat
import threading

import pytest

from memesh.errors import MemeshError
from memesh.store import db as dbmod
from memesh.store.db import MIGRATIONS, Database


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def loose_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def database(tmp_path):
    db = Database(tmp_path / "memesh.db")
    yield db
    db.close()


def test_new_database_file_and_its_wal_and_shm_are_private_0600(tmp_path, loose_umask):
    db = Database(tmp_path / "memesh.db")
    with db.write() as conn:
        conn.execute("INSERT INTO entities(name, entity_type, created_at, updated_at) VALUES ('a', 't', 0, 0)")
    for suffix in ("", "-wal", "-shm"):
        assert os.path.exists(f"{db.path}{suffix}")
        assert mode(f"{db.path}{suffix}") == 0o600, suffix
    db.close()


def test_an_existing_database_with_a_loose_mode_is_tightened_to_0600(tmp_path):
    Database(tmp_path / "memesh.db").close()
    os.chmod(tmp_path / "memesh.db", 0o644)
    Database(tmp_path / "memesh.db").close()
    assert mode(tmp_path / "memesh.db") == 0o600


def test_connection_uses_wal_foreign_keys_and_a_busy_timeout_of_at_least_10_seconds(database):
    conn = database.connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000
    assert dbmod.BUSY_TIMEOUT_S >= 10


def test_a_new_file_is_migrated_to_the_latest_schema_version(database):
    assert database.user_version == len(MIGRATIONS)
    tables = {row[0] for row in database.connection().execute("SELECT name FROM sqlite_master")}
    assert {"entities", "observations", "relations", "entity_fts"} <= tables


def test_reopening_a_migrated_file_runs_no_migration_again(tmp_path):
    calls = []
    registry = [(1, "CREATE TABLE t (x INTEGER)"), (2, lambda conn: calls.append(conn))]
    Database(tmp_path / "m.db", migrations=registry).close()
    Database(tmp_path / "m.db", migrations=registry).close()
    assert len(calls) == 1


def test_a_callable_migration_receives_the_connection_inside_its_transaction(tmp_path):
    seen = []
    registry = [(1, lambda conn: seen.append(conn.in_transaction))]
    Database(tmp_path / "m.db", migrations=registry).close()
    assert seen == [True]


def test_a_failing_migration_rolls_back_alone_and_leaves_the_previous_version(tmp_path):
    def broken(conn):
        conn.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("boom")

    registry = [(1, "CREATE TABLE first (x INTEGER)"), (2, broken)]
    with pytest.raises(RuntimeError, match="boom"):
        Database(tmp_path / "m.db", migrations=registry)
    conn = sqlite3.connect(tmp_path / "m.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "first" in names and "half_done" not in names
    conn.close()


def test_an_extended_registry_migrates_an_older_file_forward(tmp_path):
    Database(tmp_path / "m.db", migrations=MIGRATIONS[:1]).close()
    extended = MIGRATIONS + [(len(MIGRATIONS) + 1, "CREATE TABLE a_later_feature (id INTEGER PRIMARY KEY)")]
    db = Database(tmp_path / "m.db", migrations=extended)
    assert db.user_version == len(extended)
    assert db.connection().execute("SELECT count(*) FROM entity_trigram").fetchone() == (0,)
    db.close()


def test_sql_migrations_may_hold_triggers_with_inner_semicolons(tmp_path):
    registry = [(1, """
        CREATE TABLE a (x INTEGER);
        CREATE TABLE log (x INTEGER);
        CREATE TRIGGER a_log AFTER INSERT ON a BEGIN INSERT INTO log VALUES (new.x); END;
    """)]
    db = Database(tmp_path / "m.db", migrations=registry)
    with db.write() as conn:
        conn.execute("INSERT INTO a VALUES (7)")
    assert db.connection().execute("SELECT x FROM log").fetchall() == [(7,)]
    db.close()


def test_a_schema_newer_than_this_code_is_refused_with_upgrade_advice(tmp_path):
    Database(tmp_path / "m.db").close()
    conn = sqlite3.connect(tmp_path / "m.db")
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    conn.close()
    with pytest.raises(MemeshError, match="upgrade memesh"):
        Database(tmp_path / "m.db")


def test_a_registry_with_a_gap_in_versions_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="in order"):
        Database(tmp_path / "m.db", migrations=[(1, "SELECT 1"), (3, "SELECT 1")])


def test_each_thread_gets_its_own_connection_and_keeps_it(database):
    mine = database.connection()
    assert database.connection() is mine
    other = []
    thread = threading.Thread(target=lambda: other.append(database.connection()))
    thread.start()
    thread.join(10)
    assert other and other[0] is not mine


def test_write_commits_on_success_and_rolls_back_on_error(database):
    with database.write() as conn:
        conn.execute("INSERT INTO entities(name, entity_type, created_at, updated_at) VALUES ('kept', 't', 0, 0)")
    with pytest.raises(KeyError):
        with database.write() as conn:
            conn.execute("INSERT INTO entities(name, entity_type, created_at, updated_at) VALUES ('gone', 't', 0, 0)")
            raise KeyError("abort")
    names = [row[0] for row in database.connection().execute("SELECT name FROM entities")]
    assert names == ["kept"]
    assert not database.connection().in_transaction


def test_a_read_sees_one_snapshot_while_another_thread_commits(database):
    def writer():
        with database.write() as conn:
            conn.execute("INSERT INTO entities(name, entity_type, created_at, updated_at) VALUES ('late', 't', 0, 0)")

    with database.read() as conn:
        assert conn.execute("SELECT count(*) FROM entities").fetchone() == (0,)
        thread = threading.Thread(target=writer)
        thread.start()
        thread.join(10)  # WAL: the writer does not wait for this reader
        assert not thread.is_alive()
        assert conn.execute("SELECT count(*) FROM entities").fetchone() == (0,)
    assert database.connection().execute("SELECT count(*) FROM entities").fetchone() == (1,)


def test_a_write_started_inside_a_read_is_refused(database):
    with database.read():
        with pytest.raises(MemeshError, match="inside a read"):
            with database.write():
                pass


def test_nested_writes_share_the_outer_transaction(database):
    with pytest.raises(KeyError):
        with database.write() as outer:
            with database.write() as inner:
                assert inner is outer
                inner.execute("INSERT INTO entities(name, entity_type, created_at, updated_at) VALUES ('x', 't', 0, 0)")
            raise KeyError("abort outer")
    assert database.connection().execute("SELECT count(*) FROM entities").fetchone() == (0,)


def test_threads_doing_read_modify_write_lose_no_update(database):
    with database.write() as conn:
        conn.execute("CREATE TABLE counter (n INTEGER)")
        conn.execute("INSERT INTO counter VALUES (0)")

    def bump():
        for _ in range(200):
            with database.write() as conn:
                (n,) = conn.execute("SELECT n FROM counter").fetchone()
                conn.execute("UPDATE counter SET n = ?", (n + 1,))

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert database.connection().execute("SELECT n FROM counter").fetchone() == (1600,)


def test_connections_of_finished_threads_are_closed_when_another_thread_connects(database):
    opened = []
    thread = threading.Thread(target=lambda: opened.append(database.connection()))
    thread.start()
    thread.join(10)
    database.connection()  # the main thread's first connection was opened by __init__
    other = threading.Thread(target=database.connection)
    other.start()
    other.join(10)
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        opened[0].execute("SELECT 1")


def test_close_closes_every_threads_connection_and_later_use_is_refused(database):
    opened = []
    thread_started, release = threading.Event(), threading.Event()

    def hold():
        opened.append(database.connection())
        thread_started.set()
        release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert thread_started.wait(10)
    main = database.connection()
    database.close()
    release.set()
    thread.join(10)
    for conn in (main, opened[0]):
        with pytest.raises(sqlite3.ProgrammingError):
            conn.execute("SELECT 1")
    with pytest.raises(MemeshError, match="closed"):
        database.connection()
    database.close()  # idempotent


def test_a_write_on_a_full_database_says_so_reads_go_on_and_the_next_write_after_space_returns_works(tmp_path):
    from memesh.errors import DiskFull
    from memesh.store.graph import KnowledgeGraph

    database = Database(tmp_path / "full.db")
    try:
        graph = KnowledgeGraph(database)
        graph.create_entities([{"name": "Ada", "entityType": "person", "observations": ["before"]}])
        conn = database.connection()   # this thread's connection: the one the writes below use
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")   # SQLite's own "database or disk is full"
        big = [{"name": f"e{i}", "entityType": "t", "observations": ["x" * 2000]} for i in range(50)]
        with pytest.raises(DiskFull, match=r"the disk holding .* is full") as raised:
            graph.create_entities(big)
        assert str(tmp_path) in str(raised.value)
        assert [e["name"] for e in graph.open_nodes(["Ada"])["entities"]] == ["Ada"]   # reads go on
        assert graph.stats()["entities"] == 1                                            # nothing half-written
        conn.execute(f"PRAGMA max_page_count = {2 ** 30}")                               # space is back
        assert len(graph.create_entities(big)) == 50
    finally:
        database.close()
