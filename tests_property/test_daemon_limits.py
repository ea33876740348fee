"""Pure decisions of the daemon's socket side: who is alive, who is idle, the descriptor
limit to ask for, restarts of a dead thread, and the full-daemon frame."""
from __future__ import annotations

import resource

from hypothesis import given, strategies as st

from memesh.daemon import wire
from memesh.daemon.clients import MISSED_BEATS, idle_too_long, missed_heartbeat
from memesh.daemon.server import fd_limit_target, restart_allowed, slots_short

times = st.floats(min_value=0, max_value=1e6, allow_nan=False)
intervals = st.floats(min_value=0.01, max_value=1e3, allow_nan=False)


@given(times, times, intervals, st.integers(min_value=1, max_value=100))
def test_a_client_with_a_call_in_flight_never_misses_a_heartbeat(now, last_seen, interval, busy):
    assert not missed_heartbeat(now, last_seen, interval, busy=busy)


@given(times, times, intervals)
def test_an_idle_client_misses_exactly_when_silent_longer_than_three_intervals(now, last_seen, interval):
    assert missed_heartbeat(now, last_seen, interval) == (now - last_seen > MISSED_BEATS * interval)


@given(times, times, st.floats(min_value=0, max_value=1e4, allow_nan=False), st.booleans(), st.integers(0, 3), st.booleans())
def test_only_silent_connections_without_hello_or_running_calls_give_way_and_only_when_slots_are_short(
        now, last, limit, hello, busy, pressure):
    idle = idle_too_long(now, last, limit, hello, busy, pressure)
    assert idle == (pressure and not hello and busy == 0 and limit > 0 and now - last > limit)


@given(st.integers(1, 1 << 16), st.integers(0, 1 << 16))
def test_slots_are_short_only_within_a_tenth_of_the_cap_and_always_at_the_cap(cap, open_slots):
    short = slots_short(open_slots, cap)
    assert short == (cap - open_slots <= max(1, cap // 10))
    assert slots_short(cap, cap) and (cap < 2 or not slots_short(0, cap))


limits = st.integers(min_value=16, max_value=1 << 20)


@given(limits, limits, st.integers(min_value=1, max_value=1 << 20))
def test_the_descriptor_limit_asked_for_is_never_lower_and_never_above_the_hard_limit(soft, extra, wanted):
    hard = soft + extra
    target = fd_limit_target(soft, hard, wanted)
    assert soft <= target <= hard
    assert target == max(soft, min(wanted, hard))


@given(limits, st.integers(min_value=1, max_value=1 << 20))
def test_an_unlimited_hard_limit_gives_what_is_wanted(soft, wanted):
    assert fd_limit_target(soft, resource.RLIM_INFINITY, wanted) == max(soft, wanted)


@given(st.lists(times, max_size=10), times)
def test_a_thread_is_restarted_only_while_few_restarts_fall_in_the_window(restarts, now):
    recent = [t for t in restarts if now - 60.0 < t <= now]
    earlier = [t for t in restarts if t <= now]
    assert restart_allowed(earlier, now, allowed=3, window=60.0) == (len(recent) < 3)


@given(st.integers(0, 1 << 30), st.integers(1, 1 << 16))
def test_the_full_frame_carries_its_figures_and_a_challenge_is_never_read_as_one(open_connections, limit):
    assert wire.parse_full(wire.full_frame(open_connections, limit)) == (open_connections, limit)
    challenge = b"\x00\x00\x00\x2c#CHALLENGE#" + bytes(32)
    assert wire.parse_full(challenge) is None
    assert wire.parse_full(b"") is None
