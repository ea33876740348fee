"""A2A tasks in memesh.db: the a2a-sdk ``TaskStore`` and the plain reads around it.

:class:`SqliteTaskStore` is what the SDK's request handler saves tasks through (each save
one short write transaction on the daemon's shared :class:`~memesh.store.db.Database`),
so tasks survive a daemon restart or upgrade. The SDK calls it on the front door's event
loop; the SQL is short, so it runs inline there rather than hopping to a thread.

A task's routing facts live in its ``metadata`` (``agent``: the agent it was sent to,
``from``: who sent it) and are copied into columns on every save, with its state and
the first text of its request (``summary``). Reads for windows (``pending``), the CLI
and the prompt hook use the columns; protobuf is decoded only where a whole task is
returned.

``ListTasks`` is newest first (creation time, then id), paged by an opaque cursor
(``nextPageToken``; ``""`` on the last page); on an agent's own URL it lists only that
agent's tasks.
"""
from __future__ import annotations

import base64
import time
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.server.tasks.task_store import TaskStore
from a2a.types.a2a_pb2 import ListTasksRequest, ListTasksResponse, Role, Task, TaskState
from a2a.utils.constants import DEFAULT_LIST_TASKS_PAGE_SIZE
from a2a.utils.errors import InvalidParamsError, UnsupportedOperationError

from memesh.a2a import states


class IllegalTransition(UnsupportedOperationError):
    """A save that would move a task along a transition the state machine forbids."""


SUMMARY_CHARS = 2000  # the request's text kept beside the task, for inboxes and the hook


def meta(task: Task, key: str) -> str:
    value = task.metadata[key] if key in task.metadata else ""
    return value if isinstance(value, str) else ""


def summary_of(task: Task) -> str:
    """The text of the newest message from the sender (what the window should read)."""
    for message in reversed(task.history):
        if message.role == Role.ROLE_USER:
            texts = [p.text for p in message.parts if p.HasField("text")]
            if texts:
                return "\n".join(texts)[:SUMMARY_CHARS]
    return ""


def state_name(task: Task) -> str:
    return TaskState.Name(task.status.state)


def _encode_cursor(created_at: float, task_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at!r}|{task_id}".encode()).decode().rstrip("=")


def _decode_cursor(token: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        created, task_id = raw.split("|", 1)
        return float(created), task_id
    except (ValueError, UnicodeDecodeError):
        raise InvalidParamsError(message=f"pageToken {token!r} is not a token this server gave out; "
                                         "start again without one") from None


class SqliteTaskStore(TaskStore):
    """Tasks in the ``a2a_tasks`` table of memesh.db."""

    def __init__(self, db: Any, clock=time.time) -> None:
        self.db = db
        self._clock = clock
        self.on_saved = None   # called with (task_id, agent, state) after every save

    # -- the SDK's interface ----------------------------------------------------------
    async def save(self, task: Task, context: ServerCallContext | None = None) -> None:
        self.save_sync(task)

    async def get(self, task_id: str, context: ServerCallContext | None = None) -> Task | None:
        return self.get_sync(task_id)

    async def delete(self, task_id: str, context: ServerCallContext | None = None) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM a2a_tasks WHERE id = ?", (task_id,))

    async def list(self, params: ListTasksRequest, context: ServerCallContext | None = None) -> ListTasksResponse:
        agent = (context.state.get("agent") if context is not None else None) or ""
        return self.list_sync(params, agent)

    # -- the same, for threads --------------------------------------------------------
    def save_sync(self, task: Task) -> None:
        now = self._clock()
        agent, sender, state = meta(task, "agent"), meta(task, "from"), state_name(task)
        with self.db.write() as conn:
            stored = conn.execute("SELECT state FROM a2a_tasks WHERE id = ?", (task.id,)).fetchone()
            if not states.may_save(stored[0] if stored else None, state):
                raise IllegalTransition(f"task {task.id} is {states.short_name(stored[0])}; it cannot become "
                                        f"{states.short_name(state)}")
            conn.execute(
                "INSERT INTO a2a_tasks(id, context_id, agent, sender, state, summary, created_at, updated_at, task) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET state = excluded.state, summary = excluded.summary, "
                "updated_at = excluded.updated_at, task = excluded.task",
                (task.id, task.context_id, agent, sender, state, summary_of(task), now, now, task.SerializeToString()),
            )
        if self.on_saved is not None:
            self.on_saved(task.id, agent, state)

    def get_sync(self, task_id: str) -> Task | None:
        with self.db.read() as conn:
            row = conn.execute("SELECT task FROM a2a_tasks WHERE id = ?", (task_id,)).fetchone()
        return None if row is None else Task.FromString(row[0])

    def list_sync(self, params: ListTasksRequest, agent: str = "") -> ListTasksResponse:
        where, args = [], []
        if agent:
            where.append("agent = ?")
            args.append(agent)
        if params.context_id:
            where.append("context_id = ?")
            args.append(params.context_id)
        if params.status:
            where.append("state = ?")
            args.append(TaskState.Name(params.status))
        if params.HasField("status_timestamp_after"):
            where.append("updated_at > ?")
            args.append(params.status_timestamp_after.ToMicroseconds() / 1e6)
        condition = " AND ".join(where) or "1"
        page_size = params.page_size if params.HasField("page_size") and params.page_size else DEFAULT_LIST_TASKS_PAGE_SIZE
        page_where, page_args = condition, list(args)
        if params.page_token:
            created, last_id = _decode_cursor(params.page_token)
            page_where += " AND (created_at < ? OR (created_at = ? AND id < ?))"
            page_args += [created, created, last_id]
        with self.db.read() as conn:
            total = conn.execute(f"SELECT count(*) FROM a2a_tasks WHERE {condition}", args).fetchone()[0]
            rows = conn.execute(
                f"SELECT created_at, id, task FROM a2a_tasks WHERE {page_where} "
                f"ORDER BY created_at DESC, id DESC LIMIT ?", [*page_args, page_size + 1]).fetchall()
        more = len(rows) > page_size
        rows = rows[:page_size]
        token = _encode_cursor(rows[-1][0], rows[-1][1]) if more else ""
        return ListTasksResponse(tasks=[Task.FromString(r[2]) for r in rows], next_page_token=token,
                                 page_size=page_size, total_size=total)
