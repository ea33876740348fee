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
    there what other processes write to the same storage (see :mod:`memesh.store.changes`;
    on PostgreSQL, the other daemons' writes, see :mod:`memesh.store.pg.listen`).
    """

    graph: Any
    events: Any
    db: Any = None
    memory: Any = None
    feed: Any = None  # carries other processes' writes to ``events`` (SQLite: ChangeFeed; PostgreSQL: ChangeListener)
    a2a: Any = None   # the A2A hub (daemon only; see memesh.a2a.hub)
    storage: Any = None  # memesh.store.storage.Storage: which backend, for status displays

    def close(self) -> None:
        """Stop the change feed, then close the database."""
        if self.feed is not None:
            self.feed.stop()
        if self.db is not None:
            self.db.close()


def build_services(db_path, settings: "Settings | None" = None) -> Services:
    """The stores named by ``storage.url`` (SQLite at ``db_path`` by default) and a change bus."""
    from memesh.mcp.events import EventBus
    from memesh.store.storage import open_from_settings, open_storage

    events = EventBus()
    storage = (open_storage("sqlite:", db_path, on_change=events.on_change) if settings is None
               else open_from_settings(settings, db_path, on_change=events.on_change))
    feed = storage.start_feed(events.on_change)
    return Services(graph=storage.graph, events=events, db=storage.db, memory=storage.memory, feed=feed,
                    storage=storage)


def storage_status(services: Services) -> dict:
    """What status displays say about the storage: ``{"storage": str, "storageAvailable": bool}``."""
    return {"storage": services.storage.description if services.storage else "",
            "storageAvailable": services.storage.available(services.feed) if services.storage else True}


def open_local_services(settings: "Settings") -> Services:
    from memesh.paths import ensure_layout, paths_for

    paths = paths_for(settings.home)
    ensure_layout(paths)
    return build_services(paths.db, settings)


def open_services(daemon: "Daemon") -> tuple[dict, list[Callable[[], None]], list[Callable[[], None]]]:
    from memesh.daemon.mcp_host import McpHost

    services = build_services(daemon.paths.db, daemon.settings)
    daemon.storage_status = lambda: storage_status(services)
    host = McpHost(services, daemon.coordinator, daemon.clients)
    objects: dict = {"graph": services.graph, "memory": services.memory, "mcp": host}
    closers: list[Callable[[], None]] = [services.close, host.shutdown]
    thread_hooks: list[Callable[[], None]] = [services.db.release_thread]
    if daemon.settings["a2a.enabled"]:
        from memesh.a2a.hub import A2AHub

        # Tasks and agents live where the graph does: the storage's A2A backend (on PostgreSQL,
        # scoped to this home's hub; see memesh.store.storage.hub_identity).
        services.a2a = objects["a2a"] = A2AHub(services.storage.a2a, daemon.settings)
        closers.insert(1, services.a2a.close)   # closers run last first: after the sessions, before the database
    return objects, closers, thread_hooks
