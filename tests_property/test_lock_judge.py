"""Properties of the lock judgement and the lock record parser (memesh.daemon.lock)."""
from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st

from memesh.daemon.lock import (
    BUSY,
    DEAF,
    HELLO_OK,
    HELLO_REFUSED,
    HELLO_REJECTED,
    HELLO_SLOW,
    HELLO_TIMEOUT,
    HUNG,
    HUNG_TIMEOUTS,
    LIVE,
    SEED_FIELDS,
    STALE,
    STARTING,
    UNKNOWN,
    Facts,
    LockRecord,
    create_times_match,
    judge,
    parse_record,
)

VERDICTS = {LIVE, STARTING, STALE, HUNG, UNKNOWN, BUSY, DEAF}

facts = st.builds(
    Facts,
    lifetime_held=st.booleans(),
    holder_alive=st.booleans(),
    holder_verified=st.booleans(),
    hello=st.sampled_from([HELLO_OK, HELLO_TIMEOUT, HELLO_SLOW, HELLO_REFUSED, HELLO_REJECTED]),
    overdue=st.booleans(),
    answered=st.booleans(),
    timeouts=st.integers(0, 5),
)


@given(facts)
def test_judge_always_returns_a_known_verdict(f):
    assert judge(f) in VERDICTS


@given(facts)
def test_judge_never_says_hung_unless_the_holder_is_alive_and_verified(f):
    if judge(f) == HUNG:
        assert f.lifetime_held and f.holder_alive and f.holder_verified


@given(facts)
def test_judge_never_says_live_without_the_lifetime_lock_and_a_successful_hello(f):
    if judge(f) == LIVE:
        assert f.lifetime_held and f.hello == HELLO_OK


@given(facts)
def test_judge_says_stale_exactly_when_nobody_holds_the_lifetime_lock(f):
    assert (judge(f) == STALE) == (not f.lifetime_held)


@given(facts)
def test_a_daemon_that_answers_its_hello_is_never_replaced(f):
    if f.lifetime_held and f.hello == HELLO_OK:
        assert judge(f) == LIVE


@given(facts)
def test_a_daemon_that_replied_in_any_way_is_alive_and_never_killed(f):
    """A completed handshake, a refusal at the connection cap, an earlier reply: alive."""
    if f.hello in (HELLO_REJECTED, HELLO_SLOW) or (f.answered and f.hello != HELLO_OK):
        assert judge(f) in ({STALE} if not f.lifetime_held else {STARTING, BUSY})


@given(facts)
def test_hung_needs_repeated_silence_past_the_threshold(f):
    """One slow hello is never enough: only several timeouts with no reply at all, overdue."""
    if judge(f) == HUNG:
        assert f.hello == HELLO_TIMEOUT and f.timeouts >= HUNG_TIMEOUTS and f.overdue and not f.answered


@given(facts)
def test_a_verified_daemon_that_is_not_listening_is_reported_not_killed(f):
    if f.lifetime_held and f.hello == HELLO_REFUSED and not f.answered:
        assert judge(f) != HUNG
        if f.overdue and f.holder_alive and f.holder_verified:
            assert judge(f) == DEAF


@given(facts)
def test_waiting_longer_never_turns_a_kill_into_a_wait(f):
    """Once HUNG, becoming overdue or timing out again keeps it HUNG (the deadline only moves towards acting)."""
    if judge(f) == HUNG:
        assert judge(f._replace(overdue=True)) == HUNG
        assert judge(f._replace(timeouts=f.timeouts + 1)) == HUNG


# --------------------------------------------------------------------------- records

finite = st.floats(allow_nan=False, allow_infinity=False)
records = st.builds(
    LockRecord,
    pid=st.integers(1, 2**31),
    instanceId=st.text(min_size=1),
    socketPath=st.text(min_size=1),
    startTime=st.one_of(st.integers(-(2**53), 2**53), finite),
    version=st.text(),
    clientCount=st.integers(0, 2**31),
    protocolVersion=st.integers(-(2**31), 2**31),
    minClientVersion=st.text(),
    processCreateTime=finite,
    buildId=st.text(),
    pythonVersion=st.text(),
    a2aPort=st.integers(0, 65535),
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(st.binary())
@example(b"[" * 100_000)  # deeper than the JSON parser's recursion limit
@example(b"1" * 5_000)  # more digits than int() converts by default
@example(b"\xff\xfe{\x00}\x00")
@example(b'{"pid": 1e999}')
def test_parse_record_never_raises_on_arbitrary_bytes(data):
    assert parse_record(data) is None or isinstance(parse_record(data), LockRecord)


@given(st.text())
def test_parse_record_never_raises_on_arbitrary_text(text):
    parse_record(text)


@given(json_values)
def test_parse_record_never_raises_on_arbitrary_json(value):
    parse_record(json.dumps(value))


@given(records)
def test_a_valid_record_round_trips(record):
    assert parse_record(record.to_json()) == record


@given(records, st.dictionaries(st.text().filter(lambda k: k not in set(LockRecord._fields)), json_values))
def test_unknown_extra_fields_are_ignored(record, extra):
    raw = {**extra, **record._asdict()}
    assert parse_record(json.dumps(raw)) == record


@given(records, st.sampled_from(SEED_FIELDS))
def test_a_record_missing_any_seed_field_is_rejected(record, field):
    raw = record._asdict()
    del raw[field]
    assert parse_record(json.dumps(raw)) is None


@given(records, st.sampled_from(SEED_FIELDS), json_values)
def test_a_seed_field_of_the_wrong_type_is_rejected_or_parsed_as_a_valid_record(record, field, value):
    raw = {**record._asdict(), field: value}
    parsed = parse_record(json.dumps(raw))
    assert parsed is None or parsed == LockRecord(**{**record._asdict(), field: value})


@given(finite, st.one_of(st.none(), finite))
def test_create_times_match_only_within_the_tolerance_and_never_for_unknowns(recorded, actual):
    matched = create_times_match(recorded, actual)
    if actual is None or recorded <= 0:
        assert not matched
    else:
        assert matched == (abs(recorded - actual) <= 1.0)
