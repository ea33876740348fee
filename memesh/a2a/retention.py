"""Which finished A2A tasks the daemon deletes, and how often it looks: pure functions.

A task in a terminal state (:data:`memesh.a2a.states.TERMINAL`) no longer changes; the
daemon keeps it ``a2a.keep_finished`` after it finished (its last update), so the sender
can still fetch the answer, then deletes it. ``0`` keeps finished tasks forever. Unfinished
tasks are never deleted here: they end through an answer, a cancel or ``a2a.task_ttl``.

Deletion happens in the hub's periodic sweep (:meth:`memesh.a2a.engine.Engine.sweep`),
at most :data:`BATCH` rows per storage call and :data:`BATCHES_PER_SWEEP` calls per
sweep, so a large backlog (a first start after an upgrade) is worked off over several
sweeps without holding the storage for long.
"""
from __future__ import annotations

from memesh.a2a import states

BATCH = 500               # tasks one storage call deletes at most
BATCHES_PER_SWEEP = 20    # storage calls one sweep makes at most
MIN_INTERVAL = 0.2        # s between sweeps, at least
MAX_INTERVAL = 5.0        # s between sweeps, at most


def cutoff(now: float, keep_seconds: float) -> float | None:
    """Finished tasks last updated before this time are due; None: keep them forever."""
    if keep_seconds <= 0:
        return None
    return now - keep_seconds


def is_due(state: str, updated_at: float, now: float, keep_seconds: float) -> bool:
    """Whether a task in ``state``, last updated at ``updated_at``, is deleted at ``now``."""
    limit = cutoff(now, keep_seconds)
    return limit is not None and state in states.TERMINAL and updated_at < limit


def sweep_interval(ttl_seconds: float, keep_seconds: float) -> float:
    """Seconds between two sweeps: half the shorter of the two durations, within bounds."""
    shortest = min(ttl_seconds, keep_seconds) if keep_seconds > 0 else ttl_seconds
    return max(MIN_INTERVAL, min(MAX_INTERVAL, shortest / 2))


def another_batch(deleted: int, batches_done: int) -> bool:
    """Whether a sweep makes another deletion call: the last one was full and the sweep has calls left."""
    return deleted >= BATCH and batches_done < BATCHES_PER_SWEEP
