"""Plain reads of the A2A tables (no a2a-sdk import): inboxes, task rows, agents.

Windows' tools, the CLI, ``mesh.a2a`` and the ``memesh hook prompt`` command (which runs
on every prompt and must stay fast) read through these functions; each takes an open
``sqlite3`` connection inside a read transaction.
"""
from __future__ import annotations

from memesh.a2a import states

_PENDING = tuple(sorted(states.PENDING))
_TERMINAL = tuple(sorted(states.TERMINAL))
_COLUMNS = "id, context_id, sender, state, summary, created_at, agent, updated_at"


def row_dict(row) -> dict:
    task_id, context_id, sender, state, summary, created, agent, updated = row
    return {"taskId": task_id, "contextId": context_id, "from": sender, "to": agent,
            "state": states.short_name(state), "text": summary, "createdAt": created, "updatedAt": updated}


def pending(conn, agent: str, limit: int = 20, offset: int = 0) -> tuple[list[dict], int]:
    """The tasks waiting for ``agent``'s answer, oldest first, and how many there are."""
    marks = ",".join("?" * len(_PENDING))
    total = conn.execute(f"SELECT count(*) FROM a2a_tasks WHERE agent = ? AND state IN ({marks})",
                         (agent, *_PENDING)).fetchone()[0]
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM a2a_tasks WHERE agent = ? AND state IN ({marks}) "
        f"ORDER BY created_at, id LIMIT ? OFFSET ?", (agent, *_PENDING, limit, offset)).fetchall()
    return [row_dict(r) for r in rows], total


def expired(conn, before: float, limit: int = 100) -> list[tuple[str, str]]:
    """``(id, state)`` of unfinished tasks not updated since ``before`` (their time to live ran out)."""
    marks = ",".join("?" * len(_TERMINAL))
    return conn.execute(
        f"SELECT id, state FROM a2a_tasks WHERE state NOT IN ({marks}) AND updated_at < ? "
        f"ORDER BY updated_at LIMIT ?", (*_TERMINAL, before, limit)).fetchall()


def rows(conn, agent: str = "", state: str = "", limit: int = 50) -> list[dict]:
    """The newest tasks as plain rows, optionally of one agent and/or in one state."""
    where, args = [], []
    if agent:
        where.append("agent = ?")
        args.append(agent)
    if state:
        where.append("state = ?")
        args.append(state)
    condition = " AND ".join(where) or "1"
    found = conn.execute(f"SELECT {_COLUMNS} FROM a2a_tasks WHERE {condition} "
                         f"ORDER BY created_at DESC, id DESC LIMIT ?", (*args, limit)).fetchall()
    return [row_dict(r) for r in found]


def task_row(conn, task_id: str) -> dict | None:
    found = conn.execute(f"SELECT {_COLUMNS} FROM a2a_tasks WHERE id = ?", (task_id,)).fetchone()
    return None if found is None else row_dict(found)


def agents(conn) -> list[dict]:
    """Every agent that ever registered: name, project, description, times."""
    found = conn.execute("SELECT name, project, description, created_at, last_seen FROM a2a_agents ORDER BY name").fetchall()
    return [{"name": n, "project": p, "description": d, "createdAt": c, "lastSeen": s} for n, p, d, c, s in found]


def agent_for_project(conn, project: str) -> str | None:
    """The agent most recently seen working in ``project`` (for the prompt hook)."""
    found = conn.execute("SELECT name FROM a2a_agents WHERE project = ? ORDER BY last_seen DESC LIMIT 1",
                         (project,)).fetchone()
    return None if found is None else found[0]
