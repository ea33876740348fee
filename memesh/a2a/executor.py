"""The a2a-sdk ``AgentExecutor`` of the hub: it hands each task to its window and waits.

The SDK calls :meth:`WindowExecutor.execute` once per incoming message (on the front
door's event loop) and persists every event it publishes through the task store. For a
new task it publishes the ``Task`` (SUBMITTED, addressed to the agent in its metadata),
then ``WORKING`` once a window of that agent is online, then waits for the window's
answer (``a2a_reply``) and publishes it: an artifact and COMPLETED, or INPUT_REQUIRED /
FAILED / REJECTED with the answer as the status message. A follow-up message on an
INPUT_REQUIRED task (multi-turn) publishes WORKING and waits again. A task nobody
answers within its time to live ends FAILED, with that reason.

Waiting happens inside ``execute`` so that the SDK's blocking ``SendMessage`` and its
SSE streams see the whole life of the task. Each waiting task has an ``asyncio.Queue``
in :attr:`WindowExecutor.waiters`; the hub puts ``("online",)``, ``("reply", text,
state)`` or ``("expire",)`` into it. Only tasks whose sender is connected get here: a
new task sent without waiting (``returnImmediately``, ``a2a_send``, the CLI, Python) is
saved by :meth:`memesh.a2a.engine.HubRequestHandler._park` with no worker (a worker with
the SDK's queues costs ~47 KB; a stored task nothing in memory). When nobody waits (such
a parked task, a task found after a daemon restart, one parked in INPUT_REQUIRED), the
hub sends the same instruction as an internal request: a message whose call context
carries ``INTERNAL`` — never settable from HTTP, since the context is built by our code —
and ``execute`` applies it directly.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.types.a2a_pb2 import (
    Artifact,
    Message,
    Part,
    Role,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)

from memesh.a2a import states

log = logging.getLogger(__name__)

INTERNAL = "memesh.internal"   # call-context state key of hub-made requests
AGENT = "agent"                 # call-context state key: the agent a request is for
SENDER = "sender"               # call-context state key: who sends it
EXPIRED_REASON = "nobody answered this task within its time to live ({ttl}); it was not done"


def _status(state: str, text: str | None = None) -> TaskStatus:
    status = TaskStatus(state=TaskState.Value(state))
    status.timestamp.FromDatetime(datetime.now(timezone.utc))
    if text:
        status.message.CopyFrom(Message(message_id=str(uuid.uuid4()), role=Role.ROLE_AGENT, parts=[Part(text=text)]))
    return status


def new_task(context: RequestContext) -> Task:
    """The SUBMITTED task a new message makes, addressed to the agent its call context names."""
    call = context.call_context
    agent = call.state.get(AGENT, "") if call is not None else ""
    sender = call.state.get(SENDER, "") if call is not None else ""
    task = Task(id=context.task_id, context_id=context.context_id, status=_status(states.SUBMITTED),
                history=[context.message] if context.message is not None else [])
    task.metadata.update({"agent": agent, "from": sender})
    return task


def working(task: Task) -> Task:
    """A copy of a SUBMITTED ``task`` moved to WORKING (a window of its agent is online)."""
    moved = Task()
    moved.CopyFrom(task)
    moved.status.CopyFrom(_status(states.WORKING))
    return moved


class WindowExecutor(AgentExecutor):
    def __init__(self, is_online: Callable[[str], bool], ttl_seconds: float) -> None:
        self.is_online = is_online
        self.ttl = ttl_seconds
        self.waiters: dict[str, asyncio.Queue] = {}
        self.waiting_for: dict[str, str] = {}   # task id -> the agent it waits for

    async def execute(self, context: RequestContext, event_queue: Any) -> None:
        call = context.call_context
        internal = call.state.get(INTERNAL) if call is not None else None
        task = context.current_task
        if internal is not None:
            if task is not None and task.status.state not in (TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED,
                                                              TaskState.TASK_STATE_CANCELED, TaskState.TASK_STATE_REJECTED):
                await self._apply(event_queue, task.id, task.context_id, internal)
            return
        if task is None:
            task = new_task(context)
            agent = task.metadata["agent"]
            await event_queue.enqueue_event(task)
            current = states.SUBMITTED
        else:
            agent = task.metadata["agent"] if "agent" in task.metadata else ""
            await event_queue.enqueue_event(TaskStatusUpdateEvent(
                task_id=task.id, context_id=task.context_id, status=_status(states.WORKING)))
            current = states.WORKING
        await self._wait(event_queue, task.id, task.context_id, agent, current)

    async def _wait(self, queue: Any, task_id: str, context_id: str, agent: str, current: str) -> None:
        inbox: asyncio.Queue = asyncio.Queue()
        self.waiters[task_id] = inbox
        self.waiting_for[task_id] = agent
        deadline = time.monotonic() + self.ttl
        try:
            if current == states.SUBMITTED and self.is_online(agent):
                inbox.put_nowait(("online",))
            while True:
                try:
                    instruction = await asyncio.wait_for(inbox.get(), max(0.0, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    instruction = ("expire",)
                if instruction[0] == "online":
                    if current == states.SUBMITTED:
                        current = states.WORKING
                        await queue.enqueue_event(TaskStatusUpdateEvent(
                            task_id=task_id, context_id=context_id, status=_status(states.WORKING)))
                    continue
                await self._apply(queue, task_id, context_id, instruction)
                return
        finally:
            if self.waiters.get(task_id) is inbox:
                del self.waiters[task_id]
                self.waiting_for.pop(task_id, None)

    async def _apply(self, queue: Any, task_id: str, context_id: str, instruction: tuple) -> None:
        if instruction[0] == "expire":
            hours = self.ttl / 3600
            ttl = f"{hours:g} h" if hours >= 1 else f"{self.ttl:g} s"
            await queue.enqueue_event(TaskStatusUpdateEvent(
                task_id=task_id, context_id=context_id, status=_status(states.FAILED, EXPIRED_REASON.format(ttl=ttl))))
            return
        _, text, state = instruction
        if state == states.COMPLETED:
            artifact = Artifact(artifact_id=str(uuid.uuid4()), name="reply", parts=[Part(text=text)])
            await queue.enqueue_event(TaskArtifactUpdateEvent(task_id=task_id, context_id=context_id, artifact=artifact,
                                                              last_chunk=True))
            await queue.enqueue_event(TaskStatusUpdateEvent(task_id=task_id, context_id=context_id, status=_status(state)))
        else:
            await queue.enqueue_event(TaskStatusUpdateEvent(task_id=task_id, context_id=context_id, status=_status(state, text)))

    async def cancel(self, context: RequestContext, event_queue: Any) -> None:
        task = context.current_task
        if task is None:
            return
        await event_queue.enqueue_event(TaskStatusUpdateEvent(
            task_id=task.id, context_id=task.context_id, status=_status(states.CANCELED)))
