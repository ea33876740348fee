"""A small in-process publish/subscribe bus for change topics.

Topics are short strings naming what changed: ``"graph"`` (entities, relations or
observations), ``"memory"`` (memories), ``"tools"`` (the tool list), with the project a
change happened in where it has one (memories; ``None`` otherwise). Publishers say
*that* something changed, never what: subscribers re-read what they need. MCP sessions
use it to send ``notifications/resources/updated`` and
``notifications/tools/list_changed``; in the daemon one bus is shared by every window's
session, and the stores publish on it after every committed write
(:meth:`EventBus.on_change` is their hook, see :mod:`memesh.store.changes`), so a write
from any window, from ``memesh.connect()`` or from another process reaches the
subscribers of all of them.

Callbacks run synchronously in the publisher's thread and must be quick and
non-blocking (sessions only queue a line). A callback that raises is logged and does not
stop delivery to the others.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable

logger = logging.getLogger(__name__)

Callback = Callable[[str, "str | None"], None]

from memesh.store.changes import GRAPH, MEMORY  # noqa: E402  (the stores' topics)

TOOLS = "tools"


class EventBus:
    """Thread-safe topic fan-out: :meth:`subscribe` a callback, :meth:`publish` a topic."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callback] = {}
        self._next = 0

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(topic, project)`` on every publish; returns a function that unsubscribes (idempotent)."""
        with self._lock:
            token = self._next
            self._next += 1
            self._callbacks[token] = callback

        def unsubscribe() -> None:
            with self._lock:
                self._callbacks.pop(token, None)

        return unsubscribe

    def publish(self, topic: str, project: str | None = None) -> None:
        """Deliver ``topic`` (changed in ``project``, if it has one) to every current subscriber, in order."""
        with self._lock:
            callbacks = list(self._callbacks.values())
        for callback in callbacks:
            try:
                callback(topic, project)
            except Exception:
                logger.exception("event subscriber %r failed on topic %r", callback, topic)

    def on_change(self, change: Any) -> None:
        """The stores' ``on_change`` hook: publish a :class:`memesh.store.changes.Change`."""
        self.publish(change.topic, change.project)

    def subscriber_count(self) -> int:
        """How many callbacks are subscribed (for status displays and leak tests)."""
        with self._lock:
            return len(self._callbacks)
