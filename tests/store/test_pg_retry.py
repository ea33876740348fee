"""PostgreSQL writes are retried as a whole when the server aborts them for a deadlock."""
from __future__ import annotations

import threading

from memesh.store.pg.db import PgDatabase


def test_two_writes_that_deadlock_both_complete_once_the_loser_is_retried(pg_url):
    db = PgDatabase(pg_url)
    try:
        db.write(lambda cur: (cur.execute("CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL)"),
                              cur.execute("INSERT INTO counters VALUES (1, 0), (2, 0)")))
        both_hold_one = threading.Barrier(2, timeout=30)
        attempts = {"a": 0, "b": 0}
        errors: list[BaseException] = []

        def transfer(key: str, first: int, second: int) -> None:
            def work(cur):
                attempts[key] += 1
                # RETURNING, fetched: the row lock is held before the other thread is awaited.
                cur.execute("UPDATE counters SET n = n + 1 WHERE id = %s RETURNING n", (first,)).fetchone()
                if attempts[key] == 1:
                    both_hold_one.wait()  # each holds one row and wants the other's: a deadlock
                cur.execute("UPDATE counters SET n = n + 1 WHERE id = %s", (second,))
            try:
                db.write(work)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=transfer, args=("a", 1, 2)), threading.Thread(target=transfer, args=("b", 2, 1))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert sorted(attempts.values()) == [1, 2]  # the server's victim ran again
        assert db.read(lambda cur: cur.execute("SELECT n FROM counters ORDER BY id").fetchall()) == [(2,), (2,)]
    finally:
        db.close()


def test_calls_during_an_outage_give_its_reason_without_asking_the_server_again_each_time(own_server, monkeypatch):
    import pytest

    from memesh.errors import StorageUnavailable
    from tests.support import wait_until

    asked: list[int] = []
    why = PgDatabase._why_no_connection
    monkeypatch.setattr(PgDatabase, "_why_no_connection", lambda self, exc: asked.append(1) or why(self, exc))
    db = PgDatabase(own_server.url())  # the server was never started
    try:
        for _ in range(3):
            with pytest.raises(StorageUnavailable, match="unavailable"):
                db.read(lambda cur: cur.execute("SELECT 1").fetchone())
        assert not db.available
        assert len(asked) == 1
        own_server.start()

        def answers() -> bool:
            try:
                return db.read(lambda cur: cur.execute("SELECT 1").fetchone()) == (1,)
            except StorageUnavailable:
                return False

        wait_until(answers, 60.0, "the pool to reconnect once the server is up")
        assert db.available
    finally:
        db.close()
