"""The A2A hub's tasks and agents in PostgreSQL: the ``a2a_tasks`` and ``a2a_agents`` tables.

:class:`PgA2AStore` is the PostgreSQL implementation of :class:`memesh.store.base.A2AStore`.
One database serves many daemons (machines, people), and each daemon's hub routes tasks
only to its own windows, so every row carries ``hub``: the identity of the home whose
daemon owns it (:func:`memesh.store.storage.hub_identity`, ``user@host:/real/home``,
the same across restarts and upgrades of that home). Every query is scoped to it: two
homes on one database never see each other's tasks or agents. The tables come with
version 3 of :mod:`memesh.store.pg.schema`.

Writes go through :meth:`PgDatabase.write` (one transaction, retried on serialization
failures). A task save locks the task's row (``SELECT … FOR UPDATE``; a new task is
inserted with ``ON CONFLICT DO NOTHING`` and locked if another process got there first)
before the state-machine check, so two concurrent saves of one task are judged one after
the other. A server that cannot be reached raises :class:`~memesh.errors.StorageUnavailable`.

:func:`hook_pending` is the prompt hook's read: one plain connection (no pool, no
migration), one read-only transaction.
"""
from __future__ import annotations

from typing import Any

from memesh.a2a import states
from memesh.store.a2a import COLUMNS, PENDING, TERMINAL, agent_dict, list_conditions, row_dict
from memesh.store.base import Json, TaskRecord

HOOK_CONNECT_TIMEOUT_S = 2   # the prompt hook must never hold up a prompt for long


def _pending(cur: Any, hub: str, agent: str, limit: int, offset: int) -> tuple[list[Json], int]:
    total = cur.execute("SELECT count(*) FROM a2a_tasks WHERE hub = %s AND agent = %s AND state = ANY(%s)",
                        (hub, agent, list(PENDING))).fetchone()[0]
    rows = cur.execute(f"SELECT {COLUMNS} FROM a2a_tasks WHERE hub = %s AND agent = %s AND state = ANY(%s) "
                       f"ORDER BY created_at, id LIMIT %s OFFSET %s",
                       (hub, agent, list(PENDING), limit, offset)).fetchall()
    return [row_dict(r) for r in rows], total


def _agent_for_project(cur: Any, hub: str, project: str) -> str | None:
    found = cur.execute("SELECT name FROM a2a_agents WHERE hub = %s AND project = %s "
                        "ORDER BY last_seen DESC LIMIT 1", (hub, project)).fetchone()
    return None if found is None else found[0]


class PgA2AStore:
    """One hub's tasks and agents in a shared PostgreSQL database (see the module docstring)."""

    def __init__(self, pg: Any, hub: str) -> None:
        if not hub:
            raise ValueError("a PostgreSQL A2A store needs the hub's identity")
        self.pg = pg
        self.hub = hub

    @property
    def available(self) -> bool:
        """False after a call failed to reach the server, until one succeeds again."""
        return self.pg.available

    # -- tasks -------------------------------------------------------------------------
    def save_task(self, record: TaskRecord) -> None:
        hub = self.hub
        lock = "SELECT state FROM a2a_tasks WHERE hub = %s AND id = %s FOR UPDATE"

        def save(cur: Any) -> None:
            stored = cur.execute(lock, (hub, record.id)).fetchone()
            if stored is None:
                inserted = cur.execute(
                    "INSERT INTO a2a_tasks(hub, id, context_id, agent, sender, state, summary, created_at, "
                    "updated_at, task) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (hub, id) DO NOTHING RETURNING 1",
                    (hub, record.id, record.context_id, record.agent, record.sender, record.state, record.summary,
                     record.now, record.now, record.task)).fetchone()
                if inserted is not None:
                    return
                stored = cur.execute(lock, (hub, record.id)).fetchone()   # another process inserted it first
            states.check_save(record.id, stored[0], record.state)
            cur.execute("UPDATE a2a_tasks SET state = %s, summary = %s, updated_at = %s, task = %s "
                        "WHERE hub = %s AND id = %s",
                        (record.state, record.summary, record.now, record.task, hub, record.id))

        self.pg.write(save)

    def get_task(self, task_id: str) -> bytes | None:
        row = self.pg.read(lambda cur: cur.execute("SELECT task FROM a2a_tasks WHERE hub = %s AND id = %s",
                                                   (self.hub, task_id)).fetchone())
        return None if row is None else bytes(row[0])

    def delete_task(self, task_id: str) -> None:
        self.pg.write(lambda cur: cur.execute("DELETE FROM a2a_tasks WHERE hub = %s AND id = %s", (self.hub, task_id)))

    def list_tasks(self, *, agent: str = "", context_id: str = "", state: str = "",
                   updated_after: float | None = None, after: tuple[float, str] | None = None,
                   limit: int = 50) -> tuple[list[tuple[float, str, bytes]], int]:
        condition, args, page_where, page_args = list_conditions(
            "%s", ["hub = %s"], [self.hub], agent=agent, context_id=context_id, state=state,
            updated_after=updated_after, after=after)

        def read(cur: Any):
            total = cur.execute(f"SELECT count(*) FROM a2a_tasks WHERE {condition}", args).fetchone()[0]
            rows = cur.execute(f"SELECT created_at, id, task FROM a2a_tasks WHERE {page_where} "
                               f"ORDER BY created_at DESC, id DESC LIMIT %s", [*page_args, limit]).fetchall()
            return [(r[0], r[1], bytes(r[2])) for r in rows], total

        return self.pg.read(read)

    def pending(self, agent: str, limit: int = 20, offset: int = 0) -> tuple[list[Json], int]:
        return self.pg.read(lambda cur: _pending(cur, self.hub, agent, limit, offset))

    def task_rows(self, agent: str = "", state: str = "", limit: int = 50) -> list[Json]:
        condition, args, _, _ = list_conditions("%s", ["hub = %s"], [self.hub], agent=agent, state=state)
        query = (f"SELECT {COLUMNS} FROM a2a_tasks WHERE {condition} "
                 f"ORDER BY created_at DESC, id DESC LIMIT %s")
        found = self.pg.read(lambda cur: cur.execute(query, (*args, limit)).fetchall())
        return [row_dict(r) for r in found]

    def task_row(self, task_id: str) -> Json | None:
        found = self.pg.read(lambda cur: cur.execute(f"SELECT {COLUMNS} FROM a2a_tasks WHERE hub = %s AND id = %s",
                                                     (self.hub, task_id)).fetchone())
        return None if found is None else row_dict(found)

    def expired(self, before: float, limit: int = 100) -> list[tuple[str, str]]:
        found = self.pg.read(lambda cur: cur.execute(
            "SELECT id, state FROM a2a_tasks WHERE hub = %s AND NOT (state = ANY(%s)) AND updated_at < %s "
            "ORDER BY updated_at LIMIT %s", (self.hub, list(TERMINAL), before, limit)).fetchall())
        return [(r[0], r[1]) for r in found]

    def delete_finished(self, before: float, limit: int = 500) -> int:
        hub = self.hub

        def delete(cur: Any) -> int:
            return len(cur.execute(
                "DELETE FROM a2a_tasks WHERE hub = %s AND id IN (SELECT id FROM a2a_tasks WHERE hub = %s "
                "AND state = ANY(%s) AND updated_at < %s ORDER BY updated_at LIMIT %s) RETURNING 1",
                (hub, hub, list(TERMINAL), before, limit)).fetchall())

        return self.pg.write(delete)

    # -- agents ------------------------------------------------------------------------
    def agents(self) -> list[Json]:
        found = self.pg.read(lambda cur: cur.execute(
            "SELECT name, project, description, created_at, last_seen FROM a2a_agents WHERE hub = %s ORDER BY name",
            (self.hub,)).fetchall())
        return [agent_dict(r) for r in found]

    def agent_for_project(self, project: str) -> str | None:
        return self.pg.read(lambda cur: _agent_for_project(cur, self.hub, project))

    def save_agent(self, agent: Json) -> None:
        self.pg.write(lambda cur: cur.execute(
            "INSERT INTO a2a_agents(hub, name, project, description, created_at, last_seen) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (hub, name) DO UPDATE SET "
            "description = excluded.description, last_seen = excluded.last_seen",
            (self.hub, agent["name"], agent["project"], agent["description"], agent["createdAt"], agent["lastSeen"])))


def hook_pending(url: str, *, hub: str, agent: str | None, project: str, limit: int,
                 password: str | None = None) -> tuple[str, list[Json], int] | None:
    """``(agent, pending tasks, total)`` for the prompt hook, or None (no such agent, no tables yet).

    ``agent`` None: the agent last seen in ``project``. Raises ``psycopg.Error`` when the
    server cannot be reached (the hook reports it on stderr and prints nothing).
    """
    import psycopg

    kwargs: dict[str, Any] = {"connect_timeout": HOOK_CONNECT_TIMEOUT_S, "application_name": "memesh-hook"}
    if password is not None:
        kwargs["password"] = password
    with psycopg.connect(url, **kwargs) as conn:
        conn.read_only = True
        with conn.cursor() as cur:
            if cur.execute("SELECT to_regclass('a2a_tasks') IS NOT NULL").fetchone()[0] is not True:
                return None
            name = agent if agent else _agent_for_project(cur, hub, project)
            if name is None:
                return None
            tasks, total = _pending(cur, hub, name, limit, 0)
            return name, tasks, total
