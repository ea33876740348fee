"""Change notices from other daemons: LISTEN on the shared database, publish locally.

Every write on PostgreSQL sends a notice of each change (topic, and project for memories)
in its transaction (:meth:`PgDatabase.tracked_write`), delivered when it commits. Each daemon
keeps one extra connection that LISTENs to that channel; a notice from another daemon
(another instance id) goes to the daemon's ``on_change`` (its event bus), so subscribed
windows hear about it through the same path as about local writes. Notices of this daemon's own
writes are dropped: those were published locally already.

The connection is re-made with capped backoff when it breaks (the server restarted, the
network went away); :attr:`ChangeListener.connected` tells the status display whether
the server is reachable. A write missed while disconnected produces no notice; the
first notice after reconnecting is a generic one for every topic, so windows re-read.
"""
from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterable

from memesh.backoff import backoff_delay
from memesh.store.changes import GRAPH, MEMORY, Change, OnChange, notify
from memesh.store.pg.db import CHANNEL, PgDatabase, decode_notice

logger = logging.getLogger(__name__)

POLL_S = 0.5  # how often the listening thread checks whether it should stop
RECONNECT_CAP_S = 5.0


class ChangeListener:
    """A thread relaying other daemons' change notices to ``on_change(Change)``."""

    def __init__(self, db: PgDatabase, on_change: OnChange, topics: Iterable[str] = (GRAPH, MEMORY)) -> None:
        self._db = db
        self._on_change = on_change
        self._topics = tuple(topics)
        self._stop = threading.Event()
        self._conn = None
        self.connected = False
        self._thread = threading.Thread(target=self._run, name="memesh-pg-listen", daemon=True)

    def start(self) -> "ChangeListener":
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        attempt, was_connected = 0, True
        while not self._stop.is_set():
            try:
                conn = self._db.connect(autocommit=True)
            except Exception as exc:
                self.connected = False
                if attempt == 0 or was_connected:
                    logger.warning("change notices paused: %s", exc)
                was_connected = False
                self._stop.wait(backoff_delay(attempt, cap=RECONNECT_CAP_S, rand=random.random()))
                attempt += 1
                continue
            try:
                conn.execute(f"LISTEN {CHANNEL}")
                self.connected = True
                if attempt:
                    logger.info("change notices from %s resumed", self._db.server)
                    # writes made while we were away: have every window re-read
                    notify(self._on_change, [Change(topic) for topic in self._topics])
                attempt, was_connected = 0, True
                while not self._stop.is_set():
                    for notice in conn.notifies(timeout=POLL_S):
                        decoded = decode_notice(notice.payload)
                        if decoded is not None and decoded[1] != self._db.instance:
                            notify(self._on_change, [decoded[0]])
            except Exception as exc:
                if not self._stop.is_set():
                    logger.warning("lost the change-notice connection to %s (%s); reconnecting", self._db.server, exc)
                self.connected = False
                attempt = max(attempt, 1)
            finally:
                try:
                    conn.close()
                except Exception:
                    pass
        self.connected = False
