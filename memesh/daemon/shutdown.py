"""GracefulShutdownCoordinator: the daemon's lifecycle states, in-flight work and idle timer.

States and transitions (anything else is a bug and raises)::

    STARTING --ready--> RUNNING --stop/upgrade/idle--> DRAINING --drained--> STOPPED
    STARTING/RUNNING/DRAINING --force--> STOPPED

Work is tracked with :meth:`begin`/:meth:`end`; in DRAINING (or STOPPED) ``begin`` raises
:class:`~memesh.errors.DaemonDraining`, the distinct answer clients act on by reconnecting
to the next daemon and resending. The idle decision is the pure :func:`idle_remaining`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Callable

from memesh.errors import DaemonDraining

log = logging.getLogger(__name__)

STARTING = "starting"
RUNNING = "running"
DRAINING = "draining"
STOPPED = "stopped"

TRANSITIONS = {
    STARTING: {RUNNING, DRAINING, STOPPED},
    RUNNING: {DRAINING, STOPPED},
    DRAINING: {STOPPED},
    STOPPED: set(),
}


def idle_remaining(now: float, last_activity: float, timeout: float, clients: int, inflight: int) -> float | None:
    """Seconds until the idle timeout fires, or None while it is not counting.

    It never counts while a client is connected or a call is in flight, and a timeout of
    0 disables it. ``now`` and ``last_activity`` come from a monotonic clock.
    """
    if timeout <= 0 or clients > 0 or inflight > 0:
        return None
    return max(0.0, timeout - (now - last_activity))


class ShutdownCoordinator:
    def __init__(self, idle_timeout: float, clock: Callable[[], float] = time.monotonic):
        self.idle_timeout = idle_timeout
        self._clock = clock
        self._cond = threading.Condition()
        self.state = STARTING
        self.stop_reason = ""
        self.forced = False
        self._inflight = 0
        self._last_activity = clock()
        self._drain_started: float | None = None
        self.metrics: Counter[str] = Counter()
        self.per_client: Counter[str] = Counter()
        self.drain_seconds: float | None = None

    # -- state machine ---------------------------------------------------------------
    def transition(self, new: str, reason: str = "") -> bool:
        with self._cond:
            if new == self.state:
                return False
            if new not in TRANSITIONS[self.state]:
                raise RuntimeError(f"illegal lifecycle transition {self.state} -> {new}")
            log.info("lifecycle %s -> %s%s", self.state, new, f" ({reason})" if reason else "")
            self.state = new
            if new == DRAINING:
                self._drain_started = self._clock()
                self.stop_reason = reason
            if new == STOPPED and self._drain_started is not None:
                self.drain_seconds = self._clock() - self._drain_started
            self._cond.notify_all()
            return True

    def request_stop(self, reason: str, force: bool = False) -> None:
        """Begin draining (or stop at once when forced). Idempotent."""
        with self._cond:
            if force:
                self.forced = True
                self.stop_reason = self.stop_reason or reason
                if self.state != STOPPED:
                    self.transition(STOPPED, reason)
            elif self.state in (STARTING, RUNNING):
                self.transition(DRAINING, reason)

    @property
    def accepting(self) -> bool:
        return self.state in (STARTING, RUNNING)

    # -- in-flight work --------------------------------------------------------------
    def begin(self, client: str = "") -> None:
        with self._cond:
            if not self.accepting:
                self.metrics["refused"] += 1
                raise DaemonDraining(f"the daemon is {self.state} ({self.stop_reason or 'shutting down'}); reconnect and resend")
            self._inflight += 1
            self.metrics["tracked"] += 1
            if client:
                self.per_client[client] += 1
            self._last_activity = self._clock()

    def end(self) -> None:
        with self._cond:
            self._inflight -= 1
            self.metrics["completed"] += 1
            self._last_activity = self._clock()
            if self._inflight == 0:
                self._cond.notify_all()

    def forget_client(self, client: str) -> None:
        """The client left: drop its counter, so per-client metrics never outlive clients."""
        with self._cond:
            self.per_client.pop(client, None)

    @property
    def inflight(self) -> int:
        return self._inflight

    def touch(self) -> None:
        """Any client activity (a call, a connect, a disconnect) restarts the idle clock."""
        with self._cond:
            self._last_activity = self._clock()

    def wait_drained(self, timeout: float) -> bool:
        """Wait (bounded) until no call is in flight; True when drained."""
        deadline = self._clock() + timeout
        with self._cond:
            while self._inflight > 0:
                left = deadline - self._clock()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def idle_left(self, clients: int) -> float | None:
        with self._cond:
            return idle_remaining(self._clock(), self._last_activity, self.idle_timeout, clients, self._inflight)

    def snapshot(self) -> dict:
        with self._cond:
            return {
                "state": self.state,
                "inflight": self._inflight,
                "requestsTracked": self.metrics["tracked"],
                "requestsCompleted": self.metrics["completed"],
                "requestsRefused": self.metrics["refused"],
                "forced": self.forced,
                "stopReason": self.stop_reason,
                "drainSeconds": self.drain_seconds,
                "perClient": dict(self.per_client),
            }
