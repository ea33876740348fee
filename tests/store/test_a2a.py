"""The A2A store (memesh.store.base.A2AStore) on both backends: tasks saved through the
state machine, paged lists, inboxes, expiry and agents; on PostgreSQL also hub scoping,
saves racing another daemon's transaction, and an unreachable server."""
from __future__ import annotations

import os
import threading

import psycopg
import pytest

from memesh.a2a import states
from memesh.a2a.registry import AgentRegistry
from memesh.errors import StorageUnavailable
from memesh.store.base import A2AStore, TaskRecord
from memesh.store.storage import hub_identity, hub_name
from tests.store.backends import open_backend, run_sql
from tests.support import wait_until

S, W, C, F = states.SUBMITTED, states.WORKING, states.COMPLETED, states.FAILED


def record(task_id: str, state: str, now: float, agent: str = "alpha", context: str = "ctx", text: str = "") -> TaskRecord:
    return TaskRecord(id=task_id, context_id=context, agent=agent, sender="beta", state=state,
                      summary=text or f"do {task_id}", task=f"{task_id}:{state}".encode(), now=now)


@pytest.fixture
def open_a2a(backend, tmp_path):
    """``open_a2a(hub)``: the A2A store of fresh storage of each backend, as hub ``hub``."""
    opened = []

    def open_(hub: str = "tester@machine:/home/one"):
        storage = open_backend(backend, tmp_path, hub=hub)
        opened.append(storage)
        return storage.a2a

    try:
        yield open_
    finally:
        for storage in opened:
            storage.close()


def test_both_backends_implement_the_a2a_store_interface(open_a2a):
    assert isinstance(open_a2a(), A2AStore)


def test_a_saved_task_comes_back_and_its_state_follows_the_state_machine(open_a2a):
    store = open_a2a()
    store.save_task(record("t1", S, 10.0))
    store.save_task(record("t1", W, 11.0))
    store.save_task(record("t1", C, 12.0))
    assert store.get_task("t1") == b"t1:TASK_STATE_COMPLETED"
    with pytest.raises(states.RefusedTransition, match="completed; it cannot become working"):
        store.save_task(record("t1", W, 13.0))
    assert store.get_task("t1") == b"t1:TASK_STATE_COMPLETED"   # nothing of the refused save was stored
    row = store.task_row("t1")
    assert (row["state"], row["createdAt"], row["updatedAt"]) == ("completed", 10.0, 12.0)
    store.delete_task("t1")
    assert store.get_task("t1") is None and store.task_row("t1") is None


def test_tasks_list_newest_first_in_pages_with_the_total_and_filters(open_a2a):
    store = open_a2a()
    for i in range(7):
        store.save_task(record(f"t{i}", S if i % 2 else W, 100.0 + i // 2, agent="alpha" if i < 5 else "beta",
                               context="odd" if i % 2 else "even"))
    seen, after = [], None
    while True:
        rows, total = store.list_tasks(limit=3, after=after)
        assert total == 7
        seen += [r[1] for r in rows]
        if len(rows) < 3:
            break
        after = (rows[-1][0], rows[-1][1])
    assert seen == ["t6", "t5", "t4", "t3", "t2", "t1", "t0"]   # created_at, then id, both descending
    assert store.list_tasks(agent="beta")[1] == 2
    assert [r[1] for r in store.list_tasks(context_id="odd", state=S)[0]] == ["t5", "t3", "t1"]
    assert [r[1] for r in store.list_tasks(updated_after=102.0)[0]] == ["t6"]
    assert [r["taskId"] for r in store.task_rows(agent="alpha", state=W, limit=2)] == ["t4", "t2"]


def test_the_inbox_holds_pending_tasks_oldest_first_and_expiry_finds_the_stale_unfinished_ones(open_a2a):
    store = open_a2a()
    store.save_task(record("old", S, 1.0, text="first job"))
    store.save_task(record("mid", W, 2.0))
    store.save_task(record("done", S, 3.0))
    store.save_task(record("done", C, 4.0))
    store.save_task(record("other", S, 5.0, agent="beta"))
    tasks, total = store.pending("alpha", limit=1, offset=0)
    assert total == 2 and [t["taskId"] for t in tasks] == ["old"]
    assert tasks[0] == {"taskId": "old", "contextId": "ctx", "from": "beta", "to": "alpha", "state": "submitted",
                        "text": "first job", "createdAt": 1.0, "updatedAt": 1.0}
    assert [t["taskId"] for t in store.pending("alpha", limit=5, offset=1)[0]] == ["mid"]
    assert store.expired(4.5) == [("old", S), ("mid", W)]


def test_finished_tasks_last_updated_before_the_cutoff_are_deleted_oldest_first_in_bounded_batches(open_a2a):
    store = open_a2a()
    store.save_task(record("waiting", S, 0.5))
    store.save_task(record("busy", W, 1.0))
    store.save_task(record("done", S, 0.0))
    store.save_task(record("done", C, 1.0))
    store.save_task(record("broke", F, 2.0))
    store.save_task(record("stopped", states.CANCELED, 3.0))
    store.save_task(record("refused", states.REJECTED, 4.0))
    store.save_task(record("recent", C, 10.0))
    assert store.delete_finished(5.0, limit=3) == 3
    assert [store.get_task(t) for t in ("done", "broke", "stopped")] == [None, None, None]
    assert store.get_task("refused") is not None
    assert store.delete_finished(5.0, limit=3) == 1
    assert store.delete_finished(5.0, limit=3) == 0
    assert {r[1] for r in store.list_tasks()[0]} == {"waiting", "busy", "recent"}
    assert store.task_row("refused") is None and store.pending("alpha")[1] == 2


def test_agents_are_remembered_with_their_first_project_and_found_by_project(open_a2a):
    store = open_a2a()
    store.save_agent({"name": "alpha", "project": "/p/a", "description": "A", "createdAt": 1.0, "lastSeen": 1.0})
    store.save_agent({"name": "alpha-2", "project": "/p/a", "description": "A2", "createdAt": 2.0, "lastSeen": 2.0})
    store.save_agent({"name": "alpha", "project": "/p/other", "description": "A again", "createdAt": 9.0, "lastSeen": 3.0})
    assert store.agents() == [
        {"name": "alpha", "project": "/p/a", "description": "A again", "createdAt": 1.0, "lastSeen": 3.0},
        {"name": "alpha-2", "project": "/p/a", "description": "A2", "createdAt": 2.0, "lastSeen": 2.0}]
    assert store.agent_for_project("/p/a") == "alpha"
    assert store.agent_for_project("/p/none") is None


def test_the_hub_identity_names_user_host_and_the_real_home_so_a_symlink_to_a_home_is_the_same_hub(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    os.symlink(tmp_path / "one", tmp_path / "link")
    assert hub_identity(tmp_path / "link") == hub_identity(tmp_path / "one") != hub_identity(tmp_path / "two")
    assert hub_identity(tmp_path / "one").endswith("@" + os.uname().nodename + ":" + str((tmp_path / "one").resolve()))
    assert hub_name("ann", "box", "/h") != hub_name("bob", "box", "/h") != hub_name("bob", "pc", "/h")


# -- PostgreSQL: one database, many hubs ------------------------------------------------

def test_two_hubs_on_one_postgresql_database_never_see_each_others_tasks_or_agents(pg_url, tmp_path):
    one = open_backend(pg_url, tmp_path, hub="ann@laptop:/home/ann/.memesh")
    two = open_backend(pg_url, tmp_path, hub="bob@server:/home/bob/.memesh")
    try:
        a, b = one.a2a, two.a2a
        a.save_task(record("same-id", C, 1.0))
        b.save_task(record("same-id", S, 2.0))   # the same task id in another hub is another task
        a.save_task(record("only-a", S, 3.0))
        a.save_agent({"name": "alpha", "project": "/p", "description": "ann's", "createdAt": 1.0, "lastSeen": 1.0})
        assert b.get_task("same-id") == b"same-id:TASK_STATE_SUBMITTED"
        assert b.get_task("only-a") is None and b.task_row("only-a") is None
        assert [r[1] for r in b.list_tasks()[0]] == ["same-id"] and b.list_tasks()[1] == 1
        assert [t["taskId"] for t in b.pending("alpha")[0]] == ["same-id"]
        assert [t["taskId"] for t in a.pending("alpha")[0]] == ["only-a"]
        assert b.expired(100.0) == [("same-id", S)]
        assert b.agents() == [] and b.agent_for_project("/p") is None
        b.delete_task("only-a")
        assert a.get_task("only-a") is not None
        hubs = run_sql(pg_url, "SELECT hub, count(*) FROM a2a_tasks GROUP BY hub ORDER BY hub")
        assert hubs == [("ann@laptop:/home/ann/.memesh", 2), ("bob@server:/home/bob/.memesh", 1)]
    finally:
        one.close()
        two.close()


def test_deleting_finished_tasks_on_postgresql_deletes_only_this_hubs_rows(pg_url, tmp_path):
    one = open_backend(pg_url, tmp_path, hub="ann@laptop:/home/ann/.memesh")
    two = open_backend(pg_url, tmp_path, hub="bob@server:/home/bob/.memesh")
    try:
        a, b = one.a2a, two.a2a
        a.save_task(record("same-id", C, 1.0))
        a.save_task(record("ann-only", F, 2.0))
        b.save_task(record("same-id", C, 1.0))
        assert b.delete_finished(100.0) == 1
        assert b.get_task("same-id") is None
        assert a.get_task("same-id") == b"same-id:TASK_STATE_COMPLETED" and a.get_task("ann-only") is not None
        assert run_sql(pg_url, "SELECT hub, count(*) FROM a2a_tasks GROUP BY hub") == [("ann@laptop:/home/ann/.memesh", 2)]
    finally:
        one.close()
        two.close()


def _held_by_other_daemon(pg_url: str, sql: str, params: tuple):
    """An open transaction of "another daemon" that ran ``sql``; the caller commits it."""
    conn = psycopg.connect(pg_url, application_name="other-daemon")
    conn.execute(sql, params)
    return conn


def _save_in_thread(store, rec: TaskRecord) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run() -> None:
        try:
            store.save_task(rec)
            outcome.append("saved")
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def _waiting_on_a_lock(pg_url: str) -> bool:
    return bool(run_sql(pg_url, "SELECT 1 FROM pg_stat_activity WHERE application_name = 'memesh' "
                                "AND wait_event_type = 'Lock'"))


@pytest.mark.parametrize("existing", [True, False], ids=["update", "insert"])
def test_a_save_racing_another_daemons_save_of_the_same_task_is_judged_after_it(pg_url, tmp_path, existing):
    storage = open_backend(pg_url, tmp_path, hub="h")
    store = storage.a2a
    try:
        if existing:
            store.save_task(record("t", W, 1.0))
            other = _held_by_other_daemon(pg_url, "UPDATE a2a_tasks SET state = %s WHERE hub = 'h' AND id = 't'", (C,))
        else:
            store.get_task("t")   # migrated
            other = _held_by_other_daemon(
                pg_url, "INSERT INTO a2a_tasks VALUES ('h', 't', 'c', 'alpha', 'x', %s, '', 1, 1, '\\x00')", (C,))
        try:
            thread, outcome = _save_in_thread(store, record("t", F if existing else S, 2.0))
            wait_until(lambda: _waiting_on_a_lock(pg_url), 30, "the save to wait for the other daemon's row lock")
            other.commit()
        finally:
            other.close()
        thread.join(30)
        assert len(outcome) == 1 and isinstance(outcome[0], states.RefusedTransition), outcome
        assert run_sql(pg_url, "SELECT state FROM a2a_tasks WHERE hub = 'h' AND id = 't'") == [(C,)]
    finally:
        storage.close()


def test_an_unreachable_postgresql_server_gives_storage_unavailable_and_agents_still_attach(tmp_path):
    url = f"postgresql://nobody@/memesh?host={tmp_path}/no-server"
    storage = open_backend(url, tmp_path, hub="h")
    try:
        with pytest.raises(StorageUnavailable, match="unavailable"):
            storage.a2a.pending("alpha")
        registry = AgentRegistry(storage.a2a)   # loading the agents failed: logged, not raised

        class Session:
            context: dict = {}

        assert registry.attach("sid", Session(), {"agentName": "alpha"}) == "alpha"
        assert registry.is_online("alpha")
        registry.close()
    finally:
        storage.close()
