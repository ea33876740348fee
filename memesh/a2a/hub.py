"""The shared ``a2a`` object of the daemon: the hub windows, the CLI and Python talk to.

Opened with the other services at start-up (cheap: no a2a-sdk import); the front door
attaches its :class:`~memesh.a2a.engine.Engine` once it serves. Methods take and return
plain data and are safe from any thread: reads go straight to the storage's A2A backend
(:class:`~memesh.store.base.A2AStore`: memesh.db, or this hub's rows in PostgreSQL),
operations that change tasks run as coroutines on the front door's loop and are waited
for (bounded).

Delivery into windows (:meth:`deliver`, called when a task is saved): every session of
the task's agent that subscribed to ``memesh://a2a/inbox`` is told the resource changed;
on an *arrival*, sessions also get a ``notifications/claude/channel`` event when
``a2a.channel`` is on.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from memesh.a2a import states
from memesh.a2a.registry import AgentRegistry
from memesh.errors import A2AUnavailable, MemeshError, NotFound, ValidationError

log = logging.getLogger(__name__)

INBOX_URI = "memesh://a2a/inbox"
ENGINE_WAIT = 10.0      # s a call waits for the front door to come up (it starts after ready)
CALL_LIMIT = 30.0       # s a call may take on the loop besides the time it asked to wait
MAX_WAIT = 300.0        # s the longest wait_seconds a sender may ask for
CHANNEL_TEXT_CHARS = 4000


class A2AHub:
    def __init__(self, store: Any, settings: Any) -> None:
        self.store = store   # memesh.store.base.A2AStore
        self.settings = settings
        self.channel = bool(settings["a2a.channel"])
        self.registry = AgentRegistry(store, on_online=self._agent_online)
        self.engine: Any = None
        self.port = 0
        self._engine_ready = threading.Event()

    # -- the front door ------------------------------------------------------------------
    def attach_engine(self, engine: Any, port: int) -> None:
        self.engine, self.port = engine, port
        self._engine_ready.set()

    def detach_engine(self) -> None:
        self._engine_ready.clear()
        self.engine = None

    def _run(self, make, wait: float = 0.0):
        """Run ``make(engine)`` (a coroutine) on the front door's loop and wait for it."""
        if not self._engine_ready.wait(ENGINE_WAIT) or self.engine is None:
            raise A2AUnavailable("the A2A front door is not running in this daemon (a2a.enabled is false, or it "
                                 "failed to start: see `memesh daemon logs`)")
        engine = self.engine
        future = asyncio.run_coroutine_threadsafe(make(engine), engine.loop)
        try:
            return future.result(CALL_LIMIT + wait)
        except TimeoutError:
            future.cancel()
            raise MemeshError("the A2A hub did not answer in time; try again") from None

    # -- windows -------------------------------------------------------------------------
    def attach(self, sid: str, session: Any, context: dict) -> str:
        return self.registry.attach(sid, session, context)

    def detach(self, sid: str) -> None:
        self.registry.detach(sid)

    def close(self) -> None:
        """Release the hub's own threads (the daemon is stopping; the database closes after)."""
        self.registry.close()

    def _agent_online(self, name: str) -> None:
        engine = self.engine
        if engine is not None:
            engine.loop.call_soon_threadsafe(engine.agent_online, name)

    def deliver(self, agent: str, task_id: str, arrival: bool) -> None:
        sessions = self.registry.sessions_of(agent)
        if not sessions:
            return
        row = self.task_row(task_id) if arrival and self.channel else None
        for session in sessions:
            if INBOX_URI in getattr(session, "subscriptions", ()):
                session.notify("notifications/resources/updated", {"uri": INBOX_URI})
            if row is not None:
                session.notify("notifications/claude/channel", channel_event(row))

    # -- reads (any thread) -----------------------------------------------------------------
    def agents(self, online_only: bool = False) -> list[dict]:
        return self.registry.agents(online_only)

    def inbox(self, agent: str, limit: int = 20, offset: int = 0) -> dict:
        """The tasks waiting for ``agent``'s answer, oldest first."""
        limit = max(1, min(int(limit), 100))
        offset = max(0, int(offset))
        tasks, total = self.store.pending(agent, limit, offset)
        page: dict = {"agent": agent, "tasks": tasks, "total": total}
        if offset + len(tasks) < total:
            page["nextOffset"] = offset + len(tasks)
        return page

    def tasks(self, agent: str = "", state: str = "", limit: int = 50) -> list[dict]:
        full = states.from_short(state) if state else ""
        return self.store.task_rows(agent, full, max(1, min(int(limit), 1000)))

    def task_row(self, task_id: str) -> dict | None:
        return self.store.task_row(task_id)

    def expired(self, before: float) -> list[tuple[str, str]]:
        return self.store.expired(before)

    def delete_finished(self, before: float, limit: int) -> int:
        return self.store.delete_finished(before, limit)

    def get_task(self, task_id: str, history: bool = True) -> dict:
        from memesh.a2a.views import task_view

        engine = self.engine
        if engine is None:
            raise A2AUnavailable("the A2A front door is not running in this daemon")
        task = engine.store.get_sync(task_id)
        if task is None:
            raise NotFound(f"no task {task_id!r}")
        return task_view(task, history=history)

    # -- operations ------------------------------------------------------------------------
    def send(self, to: str, text: str, wait_seconds: float = 0.0, sender: str = "python",
             context_id: str = "", task_id: str = "") -> dict:
        """Send ``text`` to the agent ``to`` as ``sender``; wait up to ``wait_seconds`` for its answer.

        Returns the task (``state``, ``reply``, …): completed or input-required if the answer
        came in time, else submitted/working (follow it with ``wait`` or ``get_task``).
        """
        from memesh.a2a.views import task_view

        if not isinstance(text, str) or not text.strip():
            raise ValidationError("text: say what you want the other agent to do")
        wait = max(0.0, min(float(wait_seconds or 0), MAX_WAIT))

        async def go(engine):
            task = await engine.send(sender, to, text, context_id, task_id)
            if wait > 0:
                task = await engine.wait_settled(task.id, wait) or task
            return task_view(task, history=True)

        return self._run(go, wait)

    def reply(self, task_id: str, text: str, state: str = "completed", agent: str | None = None) -> dict:
        """Answer a task in your inbox: completed (the answer), input-required (a question), failed, rejected."""
        from memesh.a2a.views import task_view

        if state not in states.REPLY_STATES:
            raise ValidationError(f"state: expected one of {', '.join(states.REPLY_STATES)}, got {state!r}")
        if not isinstance(text, str) or not text.strip():
            raise ValidationError("text: the answer (or question, or reason) must not be empty")

        async def go(engine):
            return task_view(await engine.reply(task_id, text, states.REPLY_STATES[state], agent), history=True)

        return self._run(go)

    def cancel(self, task_id: str) -> dict:
        from memesh.a2a.views import task_view

        async def go(engine):
            return task_view(await engine.cancel(task_id))

        return self._run(go)

    def wait(self, task_id: str, wait_seconds: float) -> dict:
        """The task once it needs the sender or is finished, or as it stands after ``wait_seconds``."""
        from memesh.a2a.views import task_view

        wait = max(0.0, min(float(wait_seconds), MAX_WAIT))

        async def go(engine):
            task = await engine.wait_settled(task_id, wait)
            if task is None:
                raise NotFound(f"no task {task_id!r}")
            return task_view(task, history=True)

        return self._run(go, wait)

    def status(self) -> dict:
        """``waitingWorkers``: tasks a worker waits for in the daemon (their sender is connected:
        a blocking SendMessage or a stream); other waiting tasks are only in the storage."""
        engine = self.engine
        return {"port": self.port, "running": engine is not None, "channel": self.channel,
                "agentsOnline": len(self.registry.agents(online_only=True)),
                "waitingWorkers": len(engine.executor.waiters) if engine is not None else 0}


def channel_event(row: dict) -> dict:
    """The ``notifications/claude/channel`` params for a task that arrived in a window."""
    text = row["text"]
    if len(text) > CHANNEL_TEXT_CHARS:
        text = text[:CHANNEL_TEXT_CHARS] + " …(cut; a2a_get_task has all of it)"
    return {"content": text, "meta": {"task_id": row["taskId"], "sender": row["from"] or "unknown",
                                      "context_id": row["contextId"]}}
