"""Capped exponential backoff with jitter, as pure functions.

This module owns the waiting policy of every retry loop in memesh (reconnecting to a
restarted daemon, retrying ``accept`` after EMFILE, waiting for a start lock):

* :func:`backoff_delay` — the delay before retry number ``attempt``. The envelope is
  ``min(cap, base * 2**attempt)``; jitter shortens it by up to ``jitter`` of itself, so
  the result always lies in ``[envelope * (1 - jitter), envelope]``, within ``[0, cap]``.
  The random draw is an argument, which keeps the function pure and testable;
  :func:`next_delay` is the thin helper that draws it.
* :func:`deadline_schedule` — the successive delays of a loop that must give up within
  ``total`` seconds: their running sum never exceeds ``total``.

Shortening rather than lengthening the envelope keeps ``cap`` a hard bound, and the jitter
spreads the reconnects of many clients that lost the same daemon at the same moment.
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing on the proxy's start-up path
if TYPE_CHECKING:
    from typing import Final

__all__ = ["backoff_delay", "deadline_schedule", "next_delay"]

BASE: Final[float] = 0.05
"""First delay, in seconds: a restarted daemon is usually ready within ~0.2 s."""
CAP: Final[float] = 2.0
"""Longest single delay, in seconds: a waiting client notices a new daemon quickly."""
JITTER: Final[float] = 0.5
"""Fraction of the envelope that jitter may take off."""
MAX_DELAYS: Final[int] = 10_000
"""Safety bound on a schedule's length when delays are zero or vanishingly small."""

# Even the smallest positive float (2**-1074) doubled this often exceeds the largest
# float (~2**1024), so past this attempt the envelope is ``cap`` for any base > 0.
_SATURATED_ATTEMPT: Final[int] = 2100


def _attempt_number(attempt: object) -> int:
    """The attempt as a non-negative int; negatives and garbage count as attempt 0."""
    if isinstance(attempt, bool):
        return 0
    if isinstance(attempt, int):
        return max(attempt, 0)
    if isinstance(attempt, float) and math.isfinite(attempt):
        return max(int(attempt), 0)
    return 0


def _check(name: str, value: float, high: float = math.inf) -> float:
    """``value`` as a float if it is a finite number in ``[0, high]``, else ValueError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= high
    ):
        limit = "a finite number >= 0" if high == math.inf else f"a number in [0, {high}]"
        raise ValueError(f"backoff {name} must be {limit}, not {value!r}")
    return float(value)


def backoff_delay(
    attempt: int,
    *,
    base: float = BASE,
    cap: float = CAP,
    jitter: float = JITTER,
    rand: float = 0.5,
) -> float:
    """Seconds to wait before retry number ``attempt`` (counted from 0).

    ``rand`` is a uniform draw in ``[0, 1)`` supplied by the caller (1.0 is accepted too);
    the delay is ``min(cap, base * 2**attempt) * (1 - jitter * rand)``. For a fixed
    ``rand`` the delay never decreases as ``attempt`` grows. A negative or non-numeric
    ``attempt`` counts as 0. Raises ValueError when ``base`` or ``cap`` is negative or
    not finite, or when ``jitter`` or ``rand`` lies outside ``[0, 1]``.
    """
    base = _check("base", base)
    cap = _check("cap", cap)
    jitter = _check("jitter", jitter, 1.0)
    rand = _check("rand", rand, 1.0)
    n = _attempt_number(attempt)
    if base == 0.0:
        envelope = 0.0
    elif n >= _SATURATED_ATTEMPT:
        envelope = cap
    else:
        try:
            envelope = min(cap, math.ldexp(base, n))
        except OverflowError:
            envelope = cap
    return envelope * (1.0 - jitter * rand)


def next_delay(
    attempt: int, *, base: float = BASE, cap: float = CAP, jitter: float = JITTER
) -> float:
    """:func:`backoff_delay` with a fresh ``random.random()`` draw for the jitter."""
    return backoff_delay(attempt, base=base, cap=cap, jitter=jitter, rand=random.random())


def deadline_schedule(
    total: float,
    *,
    base: float = BASE,
    cap: float = CAP,
    jitter: float = JITTER,
    rand: Callable[[], float] | None = None,
    max_delays: int = MAX_DELAYS,
) -> Iterator[float]:
    """Yield backoff delays for attempts 0, 1, 2, … until ``total`` seconds are spent.

    The running sum of the yielded delays (added in order, as a loop that sleeps them
    would) never exceeds ``total``. When the next delay would overshoot, the rest of
    the budget is yielded as a last, shorter delay and the schedule ends, so a loop that
    retries after each delay makes its final attempt right at the deadline. At most
    ``max_delays`` delays are yielded. ``rand`` draws the jitter (for example
    ``random.random``); without it every draw is 0.5, which makes the schedule
    deterministic. A negative or NaN ``total`` gives an empty schedule.
    """
    if not isinstance(total, (int, float)) or not total > 0:
        return
    spent = 0.0
    for attempt in range(max(max_delays, 0)):
        draw = 0.5 if rand is None else rand()
        delay = backoff_delay(attempt, base=base, cap=cap, jitter=jitter, rand=draw)
        if spent + delay <= total:
            spent += delay
            yield delay
            continue
        rest = total - spent
        # total - spent is rounded; step down until adding it back cannot overshoot.
        while rest > 0 and spent + rest > total:
            rest = math.nextafter(rest, 0.0)
        if rest > 0:
            yield rest
        return
