"""Which agents exist, and in which window sessions each one is online.

Agents are windows: every MCP session the daemon opens is attached here and becomes (or
joins) an agent — named by the window (``agentName`` in the session context, which a
proxy forwards from ``MEMESH_AGENT_NAME``), else after its project (see
:mod:`memesh.a2a.names`). The ``a2a_register`` tool moves a session to another name. An
agent is online while at least one of its sessions is attached. Every agent is also
remembered by the storage's A2A backend (:class:`~memesh.store.base.A2AStore`: the
``a2a_agents`` table), so a task for an offline agent waits for it and its card outlives
the window.

Thread-safe: sessions attach and detach on manager threads, tools read on tool threads.
The table is written by the registry's one writer thread: the SQLite store keeps a
connection per thread, and a window's manager thread would otherwise keep one (about
200 KB) for as long as the window lives just for its attach.

The registry in memory is what the running hub routes by; the table is what the next
daemon of this home starts from. So a storage that cannot be reached (PostgreSQL down)
never stops a window from attaching: the write is logged as failed and made again with
the agent's next attach or detach, attaching does not wait for writes while the storage
is known to be away, and the agents the table holds are loaded once it answers.
``on_online(name)`` is called (outside the lock) when an agent goes from offline to online.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from memesh.a2a import names
from memesh.errors import StorageUnavailable, ValidationError

log = logging.getLogger(__name__)

AGENT_KEY = "a2aAgent"        # the session context entry naming the session's agent
NAME_KEY = "agentName"        # the name a window asked for (forwarded MEMESH_AGENT_NAME)
MAX_DESCRIPTION = 1000
WRITE_TIMEOUT = 30.0          # seconds a table write may wait for the writer thread (SQLite's busy wait included)
LOAD_WAIT = 2.0               # seconds a caller waits for the agents the table remembers, then goes on without them


class AgentRegistry:
    def __init__(self, store: Any, on_online: Callable[[str], None] | None = None, clock=time.time) -> None:
        self.store = store   # memesh.store.base.A2AStore
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[str, Any]] = {}     # sid -> (agent, session)
        self.on_online = on_online
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="a2a-agents")
        self._known: dict[str, dict] = {}
        self._loaded = False
        # Loaded on the writer thread: the daemon reports ready without waiting for the
        # storage (PostgreSQL may be slow to answer, or away); callers wait for it, bounded.
        self._first_load = self._writer.submit(self._first)

    def _wait_loaded(self) -> None:
        """Let the first load finish before names are judged (at most LOAD_WAIT; it fails soft)."""
        if not self._first_load.done():
            try:
                self._first_load.result(timeout=LOAD_WAIT)
            except TimeoutError:   # go on with what is known; the load still lands later
                pass

    def _first(self) -> None:
        try:
            self._load()
        except Exception:   # the writer thread's top: the hub works on with the agents it meets
            log.exception("loading the A2A agents failed")

    def _load(self) -> None:
        """Learn the agents the table remembers (once; agents already known here win)."""
        try:
            stored = self.store.agents()
        except StorageUnavailable as exc:
            log.warning("A2A agents not loaded yet: %s", exc)
            return
        with self._lock:
            for agent in stored:
                self._known.setdefault(agent["name"], agent)
            self._loaded = True

    # -- sessions ------------------------------------------------------------------
    def attach(self, sid: str, session: Any, context: dict) -> str:
        """Make the window's session an agent (or part of one); returns the agent's name."""
        self._wait_loaded()
        asked = context.get(NAME_KEY)
        if isinstance(asked, str) and asked.strip():
            return self._join(sid, session, names.clean(asked), project=self._project(context), explicit=True)
        project = self._project(context)
        with self._lock:
            known = {name: agent["project"] for name, agent in self._known.items()}
        name = names.unique_name(names.base_name(project), project, known)
        return self._join(sid, session, name, project=project, explicit=False)

    def register(self, sid: str, name: str, description: str | None = None) -> dict:
        """Move the session ``sid`` to the agent ``name`` (the ``a2a_register`` tool)."""
        if not names.is_valid(name):
            raise ValidationError(f"name: {name!r} is not a usable agent name; use 1-64 lower-case letters, "
                                  f"digits, '.', '-' or '_', starting with a letter or digit (e.g. {names.clean(name)!r})")
        if description is not None and len(description) > MAX_DESCRIPTION:
            raise ValidationError(f"description: at most {MAX_DESCRIPTION} characters")
        with self._lock:
            entry = self._sessions.get(sid)
        if entry is None:
            raise ValidationError("this window has no live session in the daemon; reconnect and try again")
        session = entry[1]
        context = getattr(session, "context", {}) or {}
        self._join(sid, session, name, project=self._project(context), explicit=True, description=description)
        return self.agent(name)

    def detach(self, sid: str) -> None:
        with self._lock:
            entry = self._sessions.pop(sid, None)
        if entry is not None:
            self._touch(entry[0])
            log.debug("agent %s: session %s left", entry[0], sid[:8])

    def _project(self, context: dict) -> str:
        from memesh.mcp.memory_tools import window_project

        return window_project(context)

    def _join(self, sid: str, session: Any, name: str, *, project: str, explicit: bool, description: str | None = None) -> str:
        now = self._clock()
        with self._lock:
            previous = self._sessions.get(sid)
            was_online = any(agent == name for agent, _ in self._sessions.values())
            self._sessions[sid] = (name, session)
            agent = self._known.get(name)
            if agent is None:
                agent = {"name": name, "project": "" if explicit else project,
                         "description": description or (f"Claude Code window in {project}" if project else "Claude Code window"),
                         "createdAt": now, "lastSeen": now}
                self._known[name] = agent
            else:
                agent = dict(agent, lastSeen=now)
                if description:
                    agent["description"] = description
                self._known[name] = agent
        if isinstance(getattr(session, "context", None), dict):
            session.context[AGENT_KEY] = name
        self._write(dict(agent))
        if previous is not None and previous[0] != name:
            self._touch(previous[0])
        log.info("agent %s: window session %s joined (project %s)", name, sid[:8], project or "-")
        if not was_online and self.on_online is not None:
            try:
                self.on_online(name)
            except Exception:
                log.exception("on_online(%s) failed", name)
        return name

    def _touch(self, name: str) -> None:
        now = self._clock()
        with self._lock:
            agent = self._known.get(name)
            if agent is None:
                return
            agent = self._known[name] = dict(agent, lastSeen=now)
        self._write(dict(agent))

    def _write(self, agent: dict) -> None:
        """Save ``agent`` on the writer thread; wait for it unless the storage is known to be away.

        Other errors come back here; an unreachable storage is logged (the row is written
        again with the agent's next attach or detach)."""
        def run() -> None:
            try:
                if not self._loaded:
                    self._load()
                self.store.save_agent(agent)
            except StorageUnavailable as exc:
                log.warning("agent %s not saved: %s", agent["name"], exc)

        try:
            future = self._writer.submit(run)
        except RuntimeError:   # closed: the daemon is on its way out, the thread no longer matters
            run()
            return
        if getattr(self.store, "available", True):
            future.result(timeout=WRITE_TIMEOUT)

    def close(self) -> None:
        """Let the writer thread finish what it was given and end (the daemon is stopping)."""
        self._writer.shutdown(wait=True)

    # -- reads ---------------------------------------------------------------------
    def agent_of(self, sid: str) -> str | None:
        with self._lock:
            entry = self._sessions.get(sid)
        return None if entry is None else entry[0]

    def sessions_of(self, name: str) -> list[Any]:
        with self._lock:
            return [session for agent, session in self._sessions.values() if agent == name]

    def is_online(self, name: str) -> bool:
        with self._lock:
            return any(agent == name for agent, _ in self._sessions.values())

    def exists(self, name: str) -> bool:
        self._wait_loaded()
        with self._lock:
            return name in self._known

    def agent(self, name: str) -> dict | None:
        self._wait_loaded()
        with self._lock:
            agent = self._known.get(name)
            if agent is None:
                return None
            count = sum(1 for a, _ in self._sessions.values() if a == name)
        return dict(agent, online=count > 0, sessions=count)

    def agents(self, online_only: bool = False) -> list[dict]:
        if not online_only:   # online agents are sessions of this daemon: known without the table
            self._wait_loaded()
        with self._lock:
            counts: dict[str, int] = {}
            for agent, _ in self._sessions.values():
                counts[agent] = counts.get(agent, 0) + 1
            found = [dict(a, online=counts.get(n, 0) > 0, sessions=counts.get(n, 0)) for n, a in sorted(self._known.items())]
        return [a for a in found if a["online"] or not online_only]

    def version(self) -> tuple:
        """Changes when the set of online agents changes (the root card's ETag follows it)."""
        with self._lock:
            return tuple(sorted({agent for agent, _ in self._sessions.values()}))
