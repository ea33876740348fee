"""The A2A hub's tasks and agents in SQLite: the ``a2a_tasks`` and ``a2a_agents`` tables of memesh.db.

:class:`SqliteA2AStore` is the SQLite implementation of :class:`memesh.store.base.A2AStore`
on the daemon's shared :class:`~memesh.store.db.Database` (each call one short
transaction). A SQLite file belongs to one home, so its rows carry no hub identity.

The module-level functions take an open ``sqlite3`` connection inside a read transaction:
the store uses them, and so does ``memesh hook prompt``, which runs on every prompt and
reads memesh.db read-only without opening a :class:`Database` (see :mod:`memesh.a2a.hook`).
No a2a-sdk import here: the stored task is protobuf bytes the store never decodes.
The tables themselves are created by a migration of :mod:`memesh.store.db`
(:mod:`memesh.a2a.tables`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memesh.a2a import states

if TYPE_CHECKING:  # pragma: no cover - the prompt hook imports this module and must stay lean
    from memesh.store.base import TaskRecord

Json = dict[str, Any]

PENDING = tuple(sorted(states.PENDING))
TERMINAL = tuple(sorted(states.TERMINAL))
COLUMNS = "id, context_id, sender, state, summary, created_at, agent, updated_at"


def row_dict(row) -> Json:
    """A task row (the :data:`COLUMNS`) as the plain dict windows, the CLI and the hook show."""
    task_id, context_id, sender, state, summary, created, agent, updated = row
    return {"taskId": task_id, "contextId": context_id, "from": sender, "to": agent,
            "state": states.short_name(state), "text": summary, "createdAt": created, "updatedAt": updated}


def agent_dict(row) -> Json:
    name, project, description, created, seen = row
    return {"name": name, "project": project, "description": description, "createdAt": created, "lastSeen": seen}


def pending(conn, agent: str, limit: int = 20, offset: int = 0) -> tuple[list[Json], int]:
    """The tasks waiting for ``agent``'s answer, oldest first, and how many there are."""
    marks = ",".join("?" * len(PENDING))
    total = conn.execute(f"SELECT count(*) FROM a2a_tasks WHERE agent = ? AND state IN ({marks})",
                         (agent, *PENDING)).fetchone()[0]
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM a2a_tasks WHERE agent = ? AND state IN ({marks}) "
        f"ORDER BY created_at, id LIMIT ? OFFSET ?", (agent, *PENDING, limit, offset)).fetchall()
    return [row_dict(r) for r in rows], total


def agent_for_project(conn, project: str) -> str | None:
    """The agent most recently seen working in ``project`` (for the prompt hook)."""
    found = conn.execute("SELECT name FROM a2a_agents WHERE project = ? ORDER BY last_seen DESC LIMIT 1",
                         (project,)).fetchone()
    return None if found is None else found[0]



def list_conditions(mark: str, where: list[str], args: list, *, agent: str = "", context_id: str = "",
                    state: str = "", updated_after: float | None = None,
                    after: tuple[float, str] | None = None) -> tuple[str, list, str, list]:
    """The WHERE text and parameters of a tasks list, and of its page past ``after``.

    ``mark`` is the backend's parameter placeholder; ``where``/``args`` are conditions
    every query of the backend carries (PostgreSQL: the hub). Returns ``(condition,
    args, page_condition, page_args)``: the first pair counts the matching tasks, the
    second lists the page (newest first, after the cursor's ``(created_at, id)``).
    """
    where, args = list(where), list(args)
    for column, value in (("agent", agent), ("context_id", context_id), ("state", state)):
        if value:
            where.append(f"{column} = {mark}")
            args.append(value)
    if updated_after is not None:
        where.append(f"updated_at > {mark}")
        args.append(updated_after)
    condition = " AND ".join(where) or "1 = 1"
    page_where, page_args = condition, list(args)
    if after is not None:
        page_where += f" AND (created_at < {mark} OR (created_at = {mark} AND id < {mark}))"
        page_args += [after[0], after[0], after[1]]
    return condition, args, page_where, page_args


class SqliteA2AStore:
    """Tasks and agents in memesh.db (see :class:`memesh.store.base.A2AStore`)."""

    def __init__(self, db: Any) -> None:
        self.db = db

    available = True   # a local file (its errors are raised as they come)

    # -- tasks -------------------------------------------------------------------------
    def save_task(self, record: TaskRecord) -> None:
        with self.db.write() as conn:
            stored = conn.execute("SELECT state FROM a2a_tasks WHERE id = ?", (record.id,)).fetchone()
            states.check_save(record.id, stored[0] if stored else None, record.state)
            conn.execute(
                "INSERT INTO a2a_tasks(id, context_id, agent, sender, state, summary, created_at, updated_at, task) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET state = excluded.state, summary = excluded.summary, "
                "updated_at = excluded.updated_at, task = excluded.task",
                (record.id, record.context_id, record.agent, record.sender, record.state, record.summary,
                 record.now, record.now, record.task))

    def get_task(self, task_id: str) -> bytes | None:
        with self.db.read() as conn:
            row = conn.execute("SELECT task FROM a2a_tasks WHERE id = ?", (task_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def delete_task(self, task_id: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM a2a_tasks WHERE id = ?", (task_id,))

    def list_tasks(self, *, agent: str = "", context_id: str = "", state: str = "",
                   updated_after: float | None = None, after: tuple[float, str] | None = None,
                   limit: int = 50) -> tuple[list[tuple[float, str, bytes]], int]:
        condition, args, page_where, page_args = list_conditions("?", [], [], agent=agent, context_id=context_id,
                                                                 state=state, updated_after=updated_after, after=after)
        with self.db.read() as conn:
            total = conn.execute(f"SELECT count(*) FROM a2a_tasks WHERE {condition}", args).fetchone()[0]
            rows = conn.execute(f"SELECT created_at, id, task FROM a2a_tasks WHERE {page_where} "
                                f"ORDER BY created_at DESC, id DESC LIMIT ?", [*page_args, limit]).fetchall()
        return [(r[0], r[1], bytes(r[2])) for r in rows], total

    def pending(self, agent: str, limit: int = 20, offset: int = 0) -> tuple[list[Json], int]:
        with self.db.read() as conn:
            return pending(conn, agent, limit, offset)

    def task_rows(self, agent: str = "", state: str = "", limit: int = 50) -> list[Json]:
        condition, args, _, _ = list_conditions("?", [], [], agent=agent, state=state)
        with self.db.read() as conn:
            found = conn.execute(f"SELECT {COLUMNS} FROM a2a_tasks WHERE {condition} "
                                 f"ORDER BY created_at DESC, id DESC LIMIT ?", (*args, limit)).fetchall()
        return [row_dict(r) for r in found]

    def task_row(self, task_id: str) -> Json | None:
        with self.db.read() as conn:
            found = conn.execute(f"SELECT {COLUMNS} FROM a2a_tasks WHERE id = ?", (task_id,)).fetchone()
        return None if found is None else row_dict(found)

    def expired(self, before: float, limit: int = 100) -> list[tuple[str, str]]:
        marks = ",".join("?" * len(TERMINAL))
        with self.db.read() as conn:
            found = conn.execute(
                f"SELECT id, state FROM a2a_tasks WHERE state NOT IN ({marks}) AND updated_at < ? "
                f"ORDER BY updated_at LIMIT ?", (*TERMINAL, before, limit)).fetchall()
        return [(r[0], r[1]) for r in found]

    def delete_finished(self, before: float, limit: int = 500) -> int:
        marks = ",".join("?" * len(TERMINAL))
        with self.db.write() as conn:
            return conn.execute(
                f"DELETE FROM a2a_tasks WHERE id IN (SELECT id FROM a2a_tasks WHERE state IN ({marks}) "
                f"AND updated_at < ? ORDER BY updated_at LIMIT ?)", (*TERMINAL, before, limit)).rowcount

    # -- agents ------------------------------------------------------------------------
    def agents(self) -> list[Json]:
        with self.db.read() as conn:
            found = conn.execute("SELECT name, project, description, created_at, last_seen FROM a2a_agents "
                                 "ORDER BY name").fetchall()
        return [agent_dict(r) for r in found]

    def agent_for_project(self, project: str) -> str | None:
        with self.db.read() as conn:
            return agent_for_project(conn, project)

    def save_agent(self, agent: Json) -> None:
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO a2a_agents(name, project, description, created_at, last_seen) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET description = excluded.description, last_seen = excluded.last_seen",
                (agent["name"], agent["project"], agent["description"], agent["createdAt"], agent["lastSeen"]))
