"""Properties of memesh.backoff: delays stay in their envelope, grow, and fit a deadline."""
from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memesh.backoff import CAP, backoff_delay, deadline_schedule, next_delay

attempts = st.one_of(st.integers(-5, 40), st.integers(-(10**6), 5000))
bases = st.floats(0, 10)
caps = st.floats(0, 100)
jitters = st.floats(0, 1)
rands = st.floats(0, 1, exclude_max=True)


def envelope(attempt: int, base: float, cap: float) -> float:
    """min(cap, base * 2**attempt), computed exactly and rounded once."""
    n = max(attempt, 0)
    return float(min(Fraction(cap), Fraction(base) * 2**n))


@given(attempts, bases, caps, jitters, rands)
def test_delay_lies_in_the_jittered_envelope_within_zero_and_cap(attempt, base, cap, jitter, rand):
    delay = backoff_delay(attempt, base=base, cap=cap, jitter=jitter, rand=rand)
    top = envelope(attempt, base, cap)
    assert 0.0 <= delay <= cap
    assert delay <= top
    assert delay >= top * (1 - jitter) * (1 - 1e-12)
    assert math.isclose(delay, top * (1 - jitter * rand), rel_tol=1e-12, abs_tol=1e-300)


@given(attempts, attempts, bases, caps, jitters, rands)
def test_delay_never_decreases_as_attempts_grow(a, b, base, cap, jitter, rand):
    low, high = sorted((a, b))
    kw = dict(base=base, cap=cap, jitter=jitter, rand=rand)
    assert backoff_delay(low, **kw) <= backoff_delay(high, **kw)


@given(st.integers(2100, 10**30), bases, st.one_of(caps, st.just(1.7e308)))
def test_huge_attempts_saturate_at_the_cap_without_overflow(attempt, base, cap):
    delay = backoff_delay(attempt, base=base, cap=cap, jitter=0.0)
    assert delay == (cap if base > 0 else 0.0)


@pytest.mark.parametrize("attempt", [1000, 1500, 2000, 2099])
def test_a_subnormal_base_keeps_doubling_past_a_thousand_attempts(attempt):
    tiny = 5e-324  # 2**-1074
    delay = backoff_delay(attempt, base=tiny, cap=1.7e308, jitter=0.0)
    assert delay == envelope(attempt, tiny, 1.7e308)


@given(
    st.one_of(
        st.integers(max_value=0),
        st.none(),
        st.text(max_size=3),
        st.sampled_from([math.nan, -math.inf, math.inf, True, False, -0.5]),
    ),
    rands,
)
def test_negative_or_garbage_attempts_count_as_the_first(attempt, rand):
    assert backoff_delay(attempt, rand=rand) == backoff_delay(0, rand=rand)


@given(st.integers(0, 100))
def test_next_delay_stays_within_the_default_bounds(attempt):
    assert 0.0 <= next_delay(attempt) <= CAP


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base": -1.0},
        {"cap": -0.1},
        {"cap": math.inf},
        {"base": math.nan},
        {"jitter": 1.5},
        {"jitter": -0.1},
        {"rand": 1.5},
        {"rand": math.nan},
        {"rand": "0.5"},
    ],
)
def test_nonsense_parameters_are_rejected_with_value_error(kwargs):
    with pytest.raises(ValueError):
        backoff_delay(1, **kwargs)


# --------------------------------------------------------------------------- schedules

totals = st.one_of(
    st.floats(-10, 60),
    st.sampled_from([0.0, 1e-9, math.nan, -math.inf]),
)


def running_sum(delays: list[float]) -> float:
    """The delays added one by one, in order, as a loop that sleeps them adds them up.

    Not ``sum()``: from Python 3.12 on it compensates rounding errors, so its result can
    differ from the in-order sum in the last bit, which is the sum the schedule promises.
    """
    spent = 0.0
    for delay in delays:
        spent += delay
    return spent


@given(
    totals,
    st.floats(0, 1),
    st.floats(0, 5),
    jitters,
    st.lists(rands, min_size=1, max_size=5),
    st.integers(0, 300),
)
def test_schedule_never_exceeds_its_total(total, base, cap, jitter, draws, max_delays):
    source = itertools.cycle(draws)
    delays = list(
        deadline_schedule(
            total,
            base=base,
            cap=cap,
            jitter=jitter,
            rand=lambda: next(source),
            max_delays=max_delays,
        )
    )
    assert len(delays) <= max_delays
    assert all(0.0 <= d <= cap for d in delays)
    if not total > 0:
        assert delays == []
        return
    spent = running_sum(delays)
    assert spent <= total
    if len(delays) < max_delays:
        # It stopped because the budget ran out, and it used the budget up.
        assert math.isclose(spent, total, rel_tol=1e-9)


@given(st.floats(0.001, 30))
def test_deterministic_schedule_is_the_backoff_sequence_until_the_last_delay(total):
    delays = list(deadline_schedule(total))
    for attempt, delay in enumerate(delays[:-1]):
        assert delay == backoff_delay(attempt)
    assert delays[-1] <= backoff_delay(len(delays) - 1)


def test_schedule_ends_with_the_rest_of_the_budget():
    delays = list(deadline_schedule(1.0, base=0.25, cap=1.0, jitter=0.0))
    assert delays == [0.25, 0.5, 0.25]


def test_schedule_with_zero_delays_stops_at_max_delays():
    assert list(deadline_schedule(5.0, base=0.0, max_delays=3)) == [0.0, 0.0, 0.0]
