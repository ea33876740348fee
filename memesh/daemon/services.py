"""The shared objects a daemon serves besides ``control``, opened once at start-up.

Returns ``(objects, closers)``: objects keyed by their typeid in ``server.TYPEIDS``, and
the functions that release them at exit (in reverse order).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pragma: no cover
    from memesh.daemon.process import Daemon


def open_services(daemon: "Daemon") -> tuple[dict, list[Callable[[], None]]]:
    from memesh.store.db import Database
    from memesh.store.graph import KnowledgeGraph

    db = Database(daemon.paths.db)
    objects: dict = {"graph": KnowledgeGraph(db)}
    closers: list[Callable[[], None]] = [db.close]
    return objects, closers
