"""Change events: how every writer of the stores tells the windows that something changed.

A :class:`Change` names a topic (``"graph"`` or ``"memory"``) and, for memories, the
project it happened in (``""`` for memories without a project; ``None`` when the change
is not tied to one project). Changes say *that* something changed, never what: readers
re-read what they need.

Two paths, so that every writer notifies:

* **In the process.** A store takes an optional ``on_change(change)`` hook at
  construction and calls it once per change after its write transaction commits (never
  for a write that changed nothing, never for one that was rolled back). The daemon
  passes its event bus's :meth:`~memesh.mcp.events.EventBus.on_change`, so a write from
  one window, from ``memesh.connect()`` or from a shared object reaches every window's
  session at once.
* **Across processes.** The same write records its changes in the ``changes`` table, in
  the same transaction, tagged with the writing :class:`~memesh.store.db.Database`'s
  ``origin``. A :class:`ChangeFeed` in the daemon (and in a standalone window) polls that
  table and publishes the rows other processes wrote: ``memesh graph import``,
  ``memesh.connect()`` without a daemon, a standalone window beside the daemon. The table
  keeps the newest :data:`KEEP` rows.

A store for another database (PostgreSQL) keeps the same contract: take ``on_change``,
call it after commit with :class:`Change` values; it may carry changes between
processes its own way (LISTEN/NOTIFY) instead of the table.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

logger = logging.getLogger(__name__)

GRAPH = "graph"
MEMORY = "memory"
KEEP = 1000             # rows of the changes table kept for other processes to read
POLL_INTERVAL = 0.25    # seconds between two looks at the table by a ChangeFeed


@dataclasses.dataclass(frozen=True)
class Change:
    """Something in ``topic`` changed (in ``project``, for memories)."""

    topic: str
    project: str | None = None


OnChange = Callable[[Change], None]


class Pending:
    """The changes a write transaction is making; the store adds projects as it learns them."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.projects: set[str] = set()

    def changes(self) -> list[Change]:
        if not self.projects:
            return [Change(self.topic)]
        return [Change(self.topic, project) for project in sorted(self.projects)]


def record(conn: Any, origin: str, changes: list[Change]) -> None:
    """Write ``changes`` into the changes table, inside the caller's write transaction."""
    conn.executemany("INSERT INTO changes(topic, project, origin) VALUES (?, ?, ?)",
                     [(c.topic, c.project, origin) for c in changes])
    conn.execute("DELETE FROM changes WHERE seq <= (SELECT max(seq) FROM changes) - ?", (KEEP,))


def notify(on_change: OnChange | None, changes: list[Change]) -> None:
    """Call the hook for each change; a hook that fails is logged (the write stands)."""
    if on_change is None:
        return
    for change in changes:
        try:
            on_change(change)
        except Exception:
            logger.exception("change hook %r failed on %r", on_change, change)


@contextlib.contextmanager
def tracked_write(db: Any, on_change: OnChange | None, topic: str) -> Iterator[tuple[Any, Pending]]:
    """``db.write()`` that records the changes it made and publishes them after commit.

    Yields ``(conn, pending)``; add the projects touched to ``pending.projects``.
    """
    pending = Pending(topic)
    changes: list[Change] = []
    with db.write() as conn:
        before = conn.total_changes
        yield conn, pending
        if conn.total_changes != before:
            changes = pending.changes()
            if getattr(db, "records_changes", False):
                record(conn, db.origin, changes)
    notify(on_change, changes)


class ChangeFeed:
    """Publishes the changes other processes recorded in the database (see the module doc)."""

    def __init__(self, db: Any, on_change: OnChange, interval: float = POLL_INTERVAL) -> None:
        self._db = db
        self._on_change = on_change
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last = 0

    def start(self) -> "ChangeFeed":
        if not getattr(self._db, "records_changes", False):
            logger.info("%s records no change events; writes of other processes go unannounced", self._db.path)
            return self
        with self._db.read() as conn:
            self._last = conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]
        self._thread = threading.Thread(target=self._run, name="memesh-change-feed", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5 * self._interval + 1)

    def poll(self) -> list[Change]:
        """Read the rows recorded since the last poll; return the ones other processes wrote."""
        with self._db.read() as conn:
            rows = conn.execute("SELECT seq, topic, project, origin FROM changes WHERE seq > ? ORDER BY seq",
                                (self._last,)).fetchall()
        if rows:
            self._last = rows[-1][0]
        return [Change(topic, project) for _, topic, project, origin in rows if origin != self._db.origin]

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._interval):
                try:
                    changes = self.poll()
                except Exception as exc:   # a busy or briefly unreadable file: look again later
                    logger.debug("change feed: could not read the changes table: %s", exc)
                    continue
                notify(self._on_change, list(dict.fromkeys(changes)))
        finally:
            self._db.release_thread()
