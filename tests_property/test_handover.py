"""Properties of the handover decision (memesh.daemon.handover): who starts the next daemon."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from packaging.version import InvalidVersion
from packaging.version import Version as Pep440

from memesh.daemon.handover import CLOCK_SLACK, EXPIRED, SPAWN, WAIT, newer_request, verdict

VERSIONS = st.sampled_from(["0.1.0", "0.2.0", "0.2.0rc1", "0.2.0.post1", "0.3.0.dev1", "1.0", "dev", "", "garbage!"])
NOW = 1_000_000.0
MAX_AGE = 60.0

markers = st.one_of(
    st.none(),
    st.builds(lambda v, age, pid: {"version": v, "requestedAt": NOW - age, "pid": pid},
              VERSIONS, st.floats(-2 * CLOCK_SLACK, 3 * MAX_AGE, allow_nan=False), st.integers(1, 10**6)),
    st.dictionaries(st.text(max_size=5), st.one_of(st.none(), st.integers(), st.text(max_size=5)), max_size=3),
    st.integers(),
    st.text(max_size=5),
)


def pep440(text):
    try:
        return Pep440(text)
    except (InvalidVersion, TypeError):
        return None


@given(VERSIONS, markers, st.booleans())
def test_a_contender_waits_only_for_a_live_fresh_strictly_newer_asker(mine, marker, alive):
    result = verdict(mine, marker, now=NOW, asker_alive=alive, max_age=MAX_AGE)
    assert result in (SPAWN, WAIT, EXPIRED)
    if result == WAIT:
        wanted, have = pep440(marker["version"]), pep440(mine)
        assert alive and wanted is not None and have is not None and wanted > have
        assert -CLOCK_SLACK <= NOW - marker["requestedAt"] <= MAX_AGE


@given(VERSIONS, markers)
def test_a_marker_whose_asker_died_never_holds_anyone_back(mine, marker):
    assert verdict(mine, marker, now=NOW, asker_alive=False, max_age=MAX_AGE) != WAIT


@given(VERSIONS, VERSIONS)
def test_the_asker_itself_and_anyone_as_new_start_the_daemon(mine, asked):
    marker = {"version": asked, "requestedAt": NOW, "pid": 1}
    if pep440(mine) is not None and pep440(asked) is not None and pep440(mine) >= pep440(asked):
        assert verdict(mine, marker, now=NOW, asker_alive=True, max_age=MAX_AGE) == SPAWN


@given(VERSIONS, VERSIONS, st.booleans())
def test_only_a_newer_request_replaces_a_live_one(held, asked, alive):
    replaced = newer_request({"version": held}, asked, current_alive=alive)
    if not alive:
        assert replaced
    elif replaced:
        assert pep440(asked) is not None and (pep440(held) is None or pep440(asked) > pep440(held))


def test_examples():
    fresh = {"version": "0.2.0", "requestedAt": NOW - 1, "pid": 5}
    assert verdict("0.1.0", fresh, now=NOW, asker_alive=True, max_age=MAX_AGE) == WAIT
    assert verdict("0.2.0", fresh, now=NOW, asker_alive=True, max_age=MAX_AGE) == SPAWN
    assert verdict("0.3.0", fresh, now=NOW, asker_alive=True, max_age=MAX_AGE) == SPAWN
    assert verdict("0.2.0rc1", fresh, now=NOW, asker_alive=True, max_age=MAX_AGE) == WAIT
    assert verdict("0.1.0", fresh, now=NOW + MAX_AGE + 5, asker_alive=True, max_age=MAX_AGE) == EXPIRED
    assert verdict("0.1.0", None, now=NOW, asker_alive=True, max_age=MAX_AGE) == SPAWN
