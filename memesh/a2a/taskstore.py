"""The a2a-sdk ``TaskStore`` of the hub, over the storage's A2A backend.

:class:`HubTaskStore` is what the SDK's request handler saves tasks through. It knows
no SQL: it turns a task into a :class:`~memesh.store.base.TaskRecord` and hands it to
the storage's :class:`~memesh.store.base.A2AStore` (SQLite: memesh.db; PostgreSQL: the
team database, scoped to this hub), which checks the state machine and saves in one
transaction, so tasks survive a daemon restart or upgrade. The SDK calls it on the front
door's event loop; a save is one short transaction, so it runs inline there rather than
hopping to a thread. A storage that cannot be reached (PostgreSQL down) answers the A2A
call with an internal error carrying the :class:`~memesh.errors.StorageUnavailable`
message; the daemon keeps running.

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
from a2a.utils.errors import InternalError, InvalidParamsError, UnsupportedOperationError

from memesh.a2a import states
from memesh.errors import StorageUnavailable
from memesh.store.base import TaskRecord


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


class HubTaskStore(TaskStore):
    """The SDK's task store, delegating to an :class:`~memesh.store.base.A2AStore`."""

    def __init__(self, backend: Any, clock=time.time) -> None:
        self.backend = backend
        self._clock = clock
        self.on_saved = None   # called with (task_id, agent, state) after every save

    # -- the SDK's interface ----------------------------------------------------------
    async def save(self, task: Task, context: ServerCallContext | None = None) -> None:
        self.save_sync(task)

    async def get(self, task_id: str, context: ServerCallContext | None = None) -> Task | None:
        try:
            return self.get_sync(task_id)
        except StorageUnavailable as exc:
            raise InternalError(message=str(exc)) from None

    async def delete(self, task_id: str, context: ServerCallContext | None = None) -> None:
        try:
            self.backend.delete_task(task_id)
        except StorageUnavailable as exc:
            raise InternalError(message=str(exc)) from None

    async def list(self, params: ListTasksRequest, context: ServerCallContext | None = None) -> ListTasksResponse:
        agent = (context.state.get("agent") if context is not None else None) or ""
        return self.list_sync(params, agent)

    # -- the same, synchronous (save and list answer with the SDK's errors) -----------
    def save_sync(self, task: Task) -> None:
        agent, state = meta(task, "agent"), state_name(task)
        record = TaskRecord(id=task.id, context_id=task.context_id, agent=agent, sender=meta(task, "from"),
                            state=state, summary=summary_of(task), task=task.SerializeToString(), now=self._clock())
        try:
            self.backend.save_task(record)
        except states.RefusedTransition as exc:
            raise IllegalTransition(str(exc)) from None
        except StorageUnavailable as exc:
            raise InternalError(message=str(exc)) from None
        if self.on_saved is not None:
            self.on_saved(task.id, agent, state)

    def get_sync(self, task_id: str) -> Task | None:
        """The stored task (None if unknown); StorageUnavailable as it is (for the hub's own callers)."""
        raw = self.backend.get_task(task_id)
        return None if raw is None else Task.FromString(raw)

    def list_sync(self, params: ListTasksRequest, agent: str = "") -> ListTasksResponse:
        page_size = params.page_size if params.HasField("page_size") and params.page_size else DEFAULT_LIST_TASKS_PAGE_SIZE
        after = _decode_cursor(params.page_token) if params.page_token else None
        updated_after = (params.status_timestamp_after.ToMicroseconds() / 1e6
                         if params.HasField("status_timestamp_after") else None)
        try:
            rows, total = self.backend.list_tasks(
                agent=agent, context_id=params.context_id,
                state=TaskState.Name(params.status) if params.status else "",
                updated_after=updated_after, after=after, limit=page_size + 1)
        except StorageUnavailable as exc:
            raise InternalError(message=str(exc)) from None
        more = len(rows) > page_size
        rows = rows[:page_size]
        token = _encode_cursor(rows[-1][0], rows[-1][1]) if more else ""
        return ListTasksResponse(tasks=[Task.FromString(r[2]) for r in rows], next_page_token=token,
                                 page_size=page_size, total_size=total)
