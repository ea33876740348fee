"""What the hub does on the front door's event loop: the SDK request handler, sending,
replying, cancelling, waiting for a task to settle, and expiring unanswered tasks.

:class:`HubRequestHandler` is the a2a-sdk ``DefaultRequestHandler`` with memesh's rules on
top: every new message names its agent (the ``/agents/<name>/`` URL, or ``tenant``) and
that agent must exist; a blocking ``SendMessage`` waits at most ``a2a.blocking_timeout``
— or until the daemon starts draining — and then answers with the task as it stands
(SUBMITTED or WORKING; ``GetTask`` and ``SubscribeToTask`` follow it from there). A new
message whose sender does not wait (``returnImmediately``) makes a *parked* task: saved,
with no worker (SDK active task, executor coroutine) kept for it; everything that later
happens to it goes through the storage, as for tasks found after a restart.

:class:`Engine` holds the coroutines the hub runs for windows, the CLI and Python (each
submitted from another thread with ``run_coroutine_threadsafe``), and turns every saved
task into deliveries: a task entering an agent's inbox is an *arrival* (channel event),
and any change to an inbox updates the ``memesh://a2a/inbox`` resource. Its periodic sweep
fails tasks whose ``a2a.task_ttl`` ran out and deletes finished tasks older than
``a2a.keep_finished`` (:mod:`memesh.a2a.retention`).
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from a2a.server.agent_execution import SimpleRequestContextBuilder
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers import DefaultRequestHandlerV2
from a2a.server.request_handlers.request_handler import validate_request_params
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    Message,
    Part,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    Task,
    TaskState,
)
from a2a.utils.errors import InternalError, InvalidParamsError, TaskNotFoundError
from a2a.utils.task import apply_history_length, validate_history_length

from memesh.a2a import retention, states
from memesh.a2a.executor import AGENT, INTERNAL, SENDER, WindowExecutor, new_task, working
from memesh.errors import MemeshError, NotFound, StorageUnavailable, ValidationError

log = logging.getLogger(__name__)

OUTSIDE = "outside"          # the sender of tasks that came over HTTP
SETTLE_LIMIT = 10.0          # s a reply waits for its task to be saved in its new state
PARKED_PAGE = 100            # parked tasks moved to WORKING per step when their agent comes online


class HubRequestHandler(DefaultRequestHandlerV2):
    def __init__(self, *args: Any, registry: Any, blocking_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.registry = registry
        self.blocking_timeout = blocking_timeout
        self.draining = asyncio.Event()
        self._contexts = SimpleRequestContextBuilder(should_populate_referred_tasks=False, task_store=None)

    def _route(self, params: SendMessageRequest, context: ServerCallContext) -> None:
        context.state.setdefault(SENDER, OUTSIDE)
        if params.message.task_id:
            return   # a message on an existing task goes to that task's agent
        agent = context.state.get(AGENT) or context.tenant
        if not agent:
            raise InvalidParamsError(message="this message names no agent: post it to /agents/<name>/ (see the agent "
                                             "cards) or set tenant to the agent's name")
        if not self.registry.exists(agent):
            raise InvalidParamsError(message=f"no agent named {agent!r} on this hub; "
                                             f"/.well-known/agent-card.json lists the online ones")
        context.state[AGENT] = agent

    async def on_message_send(self, params: SendMessageRequest, context: ServerCallContext) -> Any:
        self._route(params, context)
        if params.configuration.return_immediately:
            if not params.message.task_id:
                return await self._park(params, context)
            return await super().on_message_send(params, context)
        inner = asyncio.ensure_future(super().on_message_send(params, context))
        drain = asyncio.ensure_future(self.draining.wait())
        try:
            await asyncio.wait({inner, drain}, timeout=self.blocking_timeout, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            inner.cancel()
            raise
        finally:
            drain.cancel()
        if inner.done():
            return inner.result()
        # Timed out, or the daemon is draining: answer with the task as it stands. The SDK's
        # subscription ends on cancel and returns the current task; the work goes on.
        inner.cancel()
        try:
            return await inner
        except asyncio.CancelledError:
            raise InternalError(message="the daemon stopped before this task was created; send it again") from None

    @validate_request_params
    async def _park(self, params: SendMessageRequest, context: ServerCallContext) -> Task:
        """A new task whose sender does not wait for it: saved (SUBMITTED, then WORKING if a
        window of its agent is online) with no worker kept in the daemon. Like a task found
        after a restart, it is finished by an internal request when the window answers, the
        sender cancels it or its time to live ends; SubscribeToTask rebuilds a worker from
        the storage for as long as someone follows it."""
        validate_history_length(params.configuration)
        request = await self._contexts.build(params=params, task_id=None,
                                             context_id=params.message.context_id or None, task=None, context=context)
        task = new_task(request)
        await self.task_store.save(task, context)
        if self.registry.is_online(task.metadata["agent"]):
            await self.task_store.save(working(task), context)
        return apply_history_length(task, params.configuration)

    async def on_message_send_stream(self, params: SendMessageRequest, context: ServerCallContext):
        self._route(params, context)
        async for event in super().on_message_send_stream(params, context):
            yield event

    async def send_internal(self, params: SendMessageRequest, context: ServerCallContext) -> Any:
        """A hub-made request (reply or expiry when no executor waits): no routing, no bound."""
        return await DefaultRequestHandlerV2.on_message_send(self, params, context)


def _is_settled(task: Task | None) -> bool:
    return task is None or TaskState.Name(task.status.state) in (states.TERMINAL | states.INTERRUPTED)


class Engine:
    def __init__(self, hub: Any, store: Any, executor: WindowExecutor, handler: HubRequestHandler,
                 loop: asyncio.AbstractEventLoop, ttl: float, keep_finished: float = 0.0) -> None:
        self.hub, self.store, self.executor, self.handler, self.loop = hub, store, executor, handler, loop
        self.ttl = ttl
        self.keep_finished = keep_finished
        self._states: dict[str, str] = {}
        self._settle: dict[str, list[asyncio.Future]] = {}
        self._background: set[asyncio.Task] = set()
        store.on_saved = self.on_saved

    # -- deliveries ----------------------------------------------------------------------
    def on_saved(self, task_id: str, agent: str, state: str) -> None:
        previous = self._states.get(task_id)
        if state in states.TERMINAL:
            self._states.pop(task_id, None)
        else:
            self._states[task_id] = state
        arrival = state in states.PENDING and previous not in states.PENDING
        if arrival or previous != state and (previous is None or previous in states.PENDING or state in states.PENDING):
            try:
                self.hub.deliver(agent, task_id, arrival)
            except Exception:
                log.exception("delivering task %s to agent %s", task_id, agent)
        if state in states.TERMINAL or state in states.INTERRUPTED:
            for future in self._settle.pop(task_id, []):
                if not future.done():
                    future.set_result(None)

    def agent_online(self, name: str) -> None:
        """A window of ``name`` attached: its waiting tasks are now being worked on."""
        for task_id, agent in list(self.executor.waiting_for.items()):
            inbox = self.executor.waiters.get(task_id)
            if agent == name and inbox is not None:
                inbox.put_nowait(("online",))
        started = self.loop.create_task(self._start_parked(name))
        self._background.add(started)
        started.add_done_callback(self._background.discard)

    async def _start_parked(self, agent: str) -> None:
        """Move ``agent``'s parked SUBMITTED tasks (no worker waits for them) to WORKING."""
        offset = 0
        try:
            while True:
                rows, total = self.hub.store.pending(agent, PARKED_PAGE, offset)
                for row in rows:
                    if row["state"] != states.short_name(states.SUBMITTED) or row["taskId"] in self.executor.waiters:
                        continue
                    task = self.store.get_sync(row["taskId"])
                    if task is not None and TaskState.Name(task.status.state) == states.SUBMITTED:
                        try:
                            self.store.save_sync(working(task))
                        except Exception as exc:   # it moved on meanwhile (answered, cancelled)
                            log.debug("task %s stays as it is: %s", row["taskId"], exc)
                offset += len(rows)
                if not rows or offset >= total:
                    return
                await asyncio.sleep(0)
        except StorageUnavailable as exc:
            log.warning("marking %s's waiting tasks as worked on: %s", agent, exc)

    # -- operations ------------------------------------------------------------------------
    async def wait_settled(self, task_id: str, timeout: float) -> Task | None:
        future = self.loop.create_future()
        self._settle.setdefault(task_id, []).append(future)
        try:
            task = self.store.get_sync(task_id)
            if not _is_settled(task) and timeout > 0 and not self.handler.draining.is_set():
                drain = asyncio.ensure_future(self.handler.draining.wait())
                try:
                    await asyncio.wait({future, drain}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    drain.cancel()
                task = self.store.get_sync(task_id)
            return task
        finally:
            waiting = self._settle.get(task_id)
            if waiting and future in waiting:
                waiting.remove(future)
                if not waiting:
                    del self._settle[task_id]

    async def send(self, sender: str, to: str, text: str, context_id: str = "", task_id: str = "") -> Task:
        message = Message(message_id=str(uuid.uuid4()), role=Role.ROLE_USER, parts=[Part(text=text)],
                          context_id=context_id, task_id=task_id)
        params = SendMessageRequest(message=message, configuration=SendMessageConfiguration(return_immediately=True))
        context = ServerCallContext(state={AGENT: to, SENDER: sender})
        try:
            return await self.handler.on_message_send(params, context)
        except (InvalidParamsError, TaskNotFoundError) as exc:
            raise ValidationError(exc.message) from None

    async def reply(self, task_id: str, text: str, state: str, agent: str | None = None) -> Task:
        task = self.store.get_sync(task_id)
        if task is None:
            raise NotFound(f"no task {task_id!r}; a2a_inbox lists the tasks waiting for you")
        current = TaskState.Name(task.status.state)
        owner = task.metadata["agent"] if "agent" in task.metadata else ""
        if agent is not None and owner != agent:
            raise ValidationError(f"task {task_id} was sent to {owner!r}, not to this window's agent {agent!r}")
        if current not in states.PENDING or not states.can_move(current, state):
            raise ValidationError(f"task {task_id} is {states.short_name(current)}; only submitted or working tasks "
                                  f"take a reply")
        instruction = ("reply", text, state)
        waiter = self.executor.waiters.get(task_id)
        if waiter is not None:
            waiter.put_nowait(instruction)
        else:
            await self._internal(task, instruction)
        settled = await self.wait_settled(task_id, SETTLE_LIMIT)
        return settled if settled is not None else task

    async def _internal(self, task: Task, instruction: tuple) -> None:
        text = instruction[1] if instruction[0] == "reply" else "(expired)"
        message = Message(message_id=str(uuid.uuid4()), role=Role.ROLE_AGENT, parts=[Part(text=text)],
                          task_id=task.id, context_id=task.context_id)
        context = ServerCallContext(state={INTERNAL: instruction})
        try:
            await self.handler.send_internal(SendMessageRequest(message=message), context)
        except Exception as exc:
            raise MemeshError(f"could not update task {task.id}: {getattr(exc, 'message', exc)}") from None

    async def cancel(self, task_id: str) -> Task:
        try:
            return await self.handler.on_cancel_task(CancelTaskRequest(id=task_id), ServerCallContext())
        except TaskNotFoundError:
            raise NotFound(f"no task {task_id!r}") from None
        except Exception as exc:
            raise ValidationError(f"task {task_id} cannot be cancelled: {getattr(exc, 'message', exc)}") from None

    async def sweep_forever(self) -> None:
        """Fail tasks whose time to live ran out (also those no executor waits for), and
        delete finished tasks kept longer than ``a2a.keep_finished``."""
        interval = retention.sweep_interval(self.ttl, self.keep_finished)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("expiring old A2A tasks failed")
            try:
                await self.delete_finished()
            except StorageUnavailable as exc:
                log.warning("deleting finished A2A tasks: %s", exc)
            except Exception:
                log.exception("deleting finished A2A tasks failed")

    async def delete_finished(self) -> int:
        """Delete finished tasks past ``a2a.keep_finished``, in bounded batches; how many."""
        before = retention.cutoff(time.time(), self.keep_finished)
        if before is None:
            return 0
        total, batches = 0, 0
        while True:
            deleted = self.hub.delete_finished(before, retention.BATCH)
            total, batches = total + deleted, batches + 1
            if not retention.another_batch(deleted, batches):
                break
            await asyncio.sleep(0)   # let requests in between two batches
        if total:
            log.info("deleted %d finished A2A task(s) older than a2a.keep_finished", total)
        return total

    async def sweep(self) -> None:
        for task_id, _state in self.hub.expired(time.time() - self.ttl):
            waiter = self.executor.waiters.get(task_id)
            if waiter is not None:
                waiter.put_nowait(("expire",))
                continue
            task = self.store.get_sync(task_id)
            if task is not None and TaskState.Name(task.status.state) not in states.TERMINAL:
                try:
                    await self._internal(task, ("expire",))
                except MemeshError as exc:
                    log.warning("%s", exc)
