"""A small in-process publish/subscribe bus for change topics.

Topics are short strings naming what changed: ``"graph"`` (entities, relations or
observations), ``"tools"`` (the tool list). Publishers say *that* something changed,
never what: subscribers re-read what they need. MCP sessions use it to send
``notifications/resources/updated`` and ``notifications/tools/list_changed``; in the
daemon one bus is shared by every window's session, so a write from one window reaches
the subscribers of all of them.

Callbacks run synchronously in the publisher's thread and must be quick and
non-blocking (sessions only queue a line). A callback that raises is logged and does not
stop delivery to the others.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

logger = logging.getLogger(__name__)

Callback = Callable[[str], None]

GRAPH = "graph"
TOOLS = "tools"


class EventBus:
    """Thread-safe topic fan-out: :meth:`subscribe` a callback, :meth:`publish` a topic."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callback] = {}
        self._next = 0

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(topic)`` on every publish; returns a function that unsubscribes (idempotent)."""
        with self._lock:
            token = self._next
            self._next += 1
            self._callbacks[token] = callback

        def unsubscribe() -> None:
            with self._lock:
                self._callbacks.pop(token, None)

        return unsubscribe

    def publish(self, topic: str) -> None:
        """Deliver ``topic`` to every current subscriber, in subscription order."""
        with self._lock:
            callbacks = list(self._callbacks.values())
        for callback in callbacks:
            try:
                callback(topic)
            except Exception:
                logger.exception("event subscriber %r failed on topic %r", callback, topic)

    def subscriber_count(self) -> int:
        """How many callbacks are subscribed (for status displays and leak tests)."""
        with self._lock:
            return len(self._callbacks)
