"""The shared objects a daemon serves besides ``control``, opened once at start-up.

``open_services`` returns ``(objects, closers, thread_hooks)``: objects keyed by their
typeid in ``server.TYPEIDS``, the functions that release them at exit (run in reverse
order), and the functions each client connection thread runs as it ends (releasing its
SQLite connection).
``open_local_services`` builds the same services in-process for standalone mode.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover
    from memesh.config import Settings
    from memesh.daemon.process import Daemon


@dataclasses.dataclass
class Services:
    """What an MCP session works with: the stores and the change bus.

    The stores publish every committed write on ``events`` themselves; ``feed`` publishes
    there what other processes write to the same file (see :mod:`memesh.store.changes`).
    """

    graph: Any
    events: Any
    db: Any = None
    memory: Any = None
    feed: Any = None
    a2a: Any = None   # the A2A hub (daemon only; see memesh.a2a.hub)

    def close(self) -> None:
        """Stop the change feed, then close the database."""
        if self.feed is not None:
            self.feed.stop()
        if self.db is not None:
            self.db.close()


def build_services(db_path) -> Services:
    from memesh.mcp.events import EventBus
    from memesh.store.changes import ChangeFeed
    from memesh.store.db import Database
    from memesh.store.graph import KnowledgeGraph
    from memesh.store.memory import MemoryStore

    db = Database(db_path)
    events = EventBus()
    feed = ChangeFeed(db, events.on_change).start()
    return Services(graph=KnowledgeGraph(db, on_change=events.on_change), events=events, db=db,
                    memory=MemoryStore(db, on_change=events.on_change), feed=feed)


def open_local_services(settings: "Settings") -> Services:
    from memesh.paths import ensure_layout, paths_for

    paths = paths_for(settings.home)
    ensure_layout(paths)
    return build_services(paths.db)


def open_services(daemon: "Daemon") -> tuple[dict, list[Callable[[], None]], list[Callable[[], None]]]:
    from memesh.daemon.mcp_host import McpHost

    services = build_services(daemon.paths.db)
    host = McpHost(services, daemon.coordinator, daemon.clients)
    objects: dict = {"graph": services.graph, "memory": services.memory, "mcp": host}
    if daemon.settings["a2a.enabled"]:
        from memesh.a2a.hub import A2AHub

        services.a2a = objects["a2a"] = A2AHub(services.db, daemon.settings)
    closers: list[Callable[[], None]] = [services.close, host.shutdown]
    return objects, closers, [services.db.release_thread]
