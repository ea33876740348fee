"""Properties of memesh.version: PEP 440 parsing, precedence as a total order, decide().

Validity and precedence of valid versions are checked against ``packaging.version``
itself (the installer's own reading of PEP 440, which memesh must agree with); the
rules memesh adds — invalid values are values that sort below every valid one, by
their text — are spelled out here, and decide() is checked against a decision table
written from the rules in DESIGN.md §6, not by calling back into the module under test.
"""
from __future__ import annotations

import dataclasses
import functools
import re

from hypothesis import given
from hypothesis import strategies as st
from packaging.version import InvalidVersion
from packaging.version import Version as Pep440

from memesh.version import (
    MAX_VERSION_TEXT,
    REFUSE,
    UPGRADE,
    USE,
    PeerVersion,
    Version,
    decide,
    parse_version,
)

# --------------------------------------------------------------------------- reference


def reference_parse(value: object) -> Pep440 | None:
    if not isinstance(value, str) or len(value) > MAX_VERSION_TEXT:
        return None
    try:
        return Pep440(value)
    except (InvalidVersion, ValueError):
        return None


def reference_match(value: object) -> bool:
    """Is ``value`` a valid version? (Kept under the name the decision table uses.)"""
    return reference_parse(value) is not None


def reference_raw(value: object) -> str:
    return value if isinstance(value, str) else repr(value)


def reference_compare(a: object, b: object) -> int:
    """PEP 440 precedence; invalid values below valid ones, among themselves by text."""
    pa, pb = reference_parse(a), reference_parse(b)
    if pa is None or pb is None:
        if pa is not None:
            return 1
        if pb is not None:
            return -1
        ra, rb = reference_raw(a), reference_raw(b)
        return (ra > rb) - (ra < rb)
    return (pa > pb) - (pa < pb)


def sign(x: int) -> int:
    return (x > 0) - (x < 0)


def compare(a: Version, b: Version) -> int:
    return (a > b) - (a < b)


# --------------------------------------------------------------------------- strategies

numbers = st.one_of(st.integers(0, 3), st.integers(0, 10**30)).map(str)
local_ids = st.one_of(st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=5), st.integers(0, 99).map(str))


def _format(release: list[str], pre: tuple[str, str] | None, post: str | None, dev: str | None, local: list[str]) -> str:
    """Normal-form PEP 440 text (what ``str(Version(...))`` prints back)."""
    text = ".".join(release)
    if pre:
        text += pre[0] + pre[1]
    if post is not None:
        text += ".post" + post
    if dev is not None:
        text += ".dev" + dev
    if local:
        text += "+" + ".".join(local)
    return text


pep440_texts = st.builds(
    _format,
    st.lists(numbers, min_size=1, max_size=4),
    st.one_of(st.none(), st.tuples(st.sampled_from(["a", "b", "rc"]), numbers)),
    st.one_of(st.none(), numbers),
    st.one_of(st.none(), numbers),
    st.lists(local_ids, max_size=2),
)
# Few distinct components, so that equal releases and near neighbours are common.
close_pep440_texts = st.builds(
    _format,
    st.lists(st.sampled_from("012"), min_size=1, max_size=3),
    st.one_of(st.none(), st.tuples(st.sampled_from(["a", "rc"]), st.sampled_from("12"))),
    st.one_of(st.none(), st.sampled_from("01")),
    st.one_of(st.none(), st.sampled_from("03")),
    st.lists(st.sampled_from(["b1", "2"]), max_size=1),
)
# Spellings pip accepts that are not the normal form.
variant_spellings = st.sampled_from(
    ["1.0.0-rc.1", "1.0.0RC1", "1.0.0-alpha", "1.0.0.beta2", "1.0-post1", "1.0.0-1", "1.0.0_dev3", "v1.0", "1!2.0", "1.0+Ubuntu-1"]
)
known_garbage = st.sampled_from(
    ["dev", "", "1.2.3-", "1.2.3+", "1..2", "latest", "v", "vv1.2.3", " 1.2.3 x", "١.٢.٣", "1.2.3 4", "1.0.0-rc.1.2", "1" * 300]
)


class Hostile:
    """A value whose repr and str blow up, as a corrupt peer might send."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")

    __str__ = __repr__


garbage_objects = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.builds(object),
)
# Only for "never raises": the reference cannot print a Hostile value either.
hostile_objects = st.builds(Hostile)
version_texts = st.one_of(pep440_texts, close_pep440_texts, variant_spellings, known_garbage, st.text(max_size=12))
any_inputs = st.one_of(version_texts, garbage_objects)

# --------------------------------------------------------------------------- parsing


@given(pep440_texts)
def test_normal_form_text_round_trips_through_parse(text):
    version = parse_version(text)
    assert version.valid
    assert str(version) == text


@given(pep440_texts)
def test_leading_v_and_surrounding_whitespace_are_tolerated(text):
    assert str(parse_version("v" + text)) == text
    assert str(parse_version(f"  {text}\n")) == text


@given(st.one_of(st.text(), variant_spellings, garbage_objects))
def test_parse_never_raises_and_validity_matches_the_reference(value):
    version = parse_version(value)
    assert version.valid == reference_match(value)


@given(hostile_objects)
def test_parse_survives_a_value_that_cannot_be_printed(value):
    version = parse_version(value)
    assert not version.valid
    assert version.raw


@given(st.one_of(known_garbage, st.text()))
def test_invalid_text_is_kept_raw(text):
    version = parse_version(text)
    if not version.valid:
        assert version.raw == text
        assert str(version) == text


@given(any_inputs)
def test_parsing_the_printed_form_gives_an_equal_version(value):
    version = parse_version(value)
    if version.valid:
        assert parse_version(str(version)) == version
        assert str(parse_version(str(version))) == str(version)


# --------------------------------------------------------------------------- ordering


@given(any_inputs, any_inputs)
def test_comparison_matches_reference_precedence(a, b):
    assert compare(parse_version(a), parse_version(b)) == sign(reference_compare(a, b))


@given(any_inputs, any_inputs)
def test_exactly_one_of_less_equal_greater_holds(a, b):
    va, vb = parse_version(a), parse_version(b)
    assert [va < vb, va == vb, va > vb].count(True) == 1
    assert (va <= vb) == (va < vb or va == vb)
    assert (va >= vb) == (va > vb or va == vb)
    assert (va != vb) == (not va == vb)


@given(any_inputs, any_inputs)
def test_comparison_is_antisymmetric_and_hash_follows_equality(a, b):
    va, vb = parse_version(a), parse_version(b)
    if va <= vb and vb <= va:
        assert va == vb
    if va == vb:
        assert hash(va) == hash(vb)
        assert va.precedence_key() == vb.precedence_key()


@given(any_inputs, any_inputs, any_inputs)
def test_comparison_is_transitive(a, b, c):
    va, vb, vc = parse_version(a), parse_version(b), parse_version(c)
    if va <= vb and vb <= vc:
        assert va <= vc
    if va < vb and vb < vc:
        assert va < vc


@given(st.lists(st.one_of(close_pep440_texts, variant_spellings, known_garbage), max_size=8))
def test_sorting_agrees_with_the_reference_order(texts):
    ours = [str(v) for v in sorted(parse_version(t) for t in texts)]
    expected = sorted(texts, key=functools.cmp_to_key(reference_compare))
    assert [parse_version(t) for t in ours] == [parse_version(t) for t in expected]


@given(version_texts, pep440_texts)
def test_every_invalid_version_sorts_below_every_valid_one(a, b):
    va, vb = parse_version(a), parse_version(b)
    if not va.valid:
        assert va < vb


def test_pre_dev_and_post_releases_order_as_pip_orders_them():
    ordered = ["1.0.0.dev1", "1.0.0a1", "1.0.0a2.dev1", "1.0.0a2", "1.0.0b1", "1.0.0rc1", "1.0.0rc1.post1", "1.0.0",
               "1.0.0+local", "1.0.0.post1.dev1", "1.0.0.post1", "1.0.1", "1.1", "1!0.1"]
    versions = [parse_version(t) for t in ordered]
    assert all(v.valid for v in versions)
    for earlier, later in zip(versions, versions[1:]):
        assert earlier < later, (earlier, later)
    assert sorted(reversed(versions)) == versions


# --------------------------------------------------------------------------- decide

DECISION_VERSIONS = st.one_of(
    st.sampled_from(
        ["0.1.0", "0.2.0", "0.2.0rc1", "0.2.0.dev3", "0.2.0.post1", "1.0.0", "1.0.0-rc.1", "1.0.0+build.5",
         "v0.2.0", "dev", "", "1.2"]
    ),
    close_pep440_texts,
    st.text(max_size=6),
    st.none(),
)
PROTOCOLS = st.one_of(
    st.integers(0, 3), st.sampled_from([1, "1", None, 1.0, True, False, 2**70, -1])
)
BUILDS = st.one_of(st.sampled_from(["", "aaa", "bbb"]), st.none())

peers = st.builds(
    PeerVersion,
    version=DECISION_VERSIONS,
    protocol=PROTOCOLS,
    build=BUILDS,
    min_client_version=st.one_of(st.just(""), DECISION_VERSIONS),
)


@st.composite
def peer_pairs(draw):
    """A (client, daemon) pair, often sharing the protocol or the version so that the
    rules after the protocol check are reached as often as the refusals."""
    client, daemon = draw(peers), draw(peers)
    share = draw(st.sampled_from(["nothing", "protocol", "version", "version, not build"]))
    if share != "nothing":
        daemon = dataclasses.replace(daemon, protocol=client.protocol)
    if share.startswith("version"):
        daemon = dataclasses.replace(daemon, version=client.version)
    if share == "version, not build":
        client = dataclasses.replace(client, build="aaa")
        daemon = dataclasses.replace(daemon, build="bbb")
    return client, daemon


garbage_values = st.one_of(any_inputs, hostile_objects)
garbage_peers = st.builds(
    PeerVersion,
    version=garbage_values,
    protocol=st.one_of(PROTOCOLS, garbage_objects, hostile_objects),
    build=st.one_of(BUILDS, garbage_values),
    min_client_version=garbage_values,
)


def is_protocol(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def build_text(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else repr(value)


def expected_decision(client: PeerVersion, daemon: PeerVersion, auto_upgrade: bool):
    """(action, commands the advice must name) per the rules of DESIGN.md §6."""
    cp, dp = client.protocol, daemon.protocol
    if not (is_protocol(cp) and is_protocol(dp)) or cp != dp:
        if is_protocol(cp) and is_protocol(dp) and cp > dp:
            return REFUSE, ["memesh daemon upgrade"]
        if is_protocol(cp) and is_protocol(dp):
            return REFUSE, ["pip install -U memesh", "memesh daemon stop"]
        return REFUSE, ["memesh daemon stop"]
    client_valid = reference_match(client.version)
    daemon_valid = reference_match(daemon.version)
    min_valid = reference_match(daemon.min_client_version)
    too_old = client_valid and reference_compare(client.version, daemon.min_client_version) < 0
    if min_valid and too_old:
        return REFUSE, ["pip install -U memesh"]
    if client_valid and daemon_valid and reference_compare(client.version, daemon.version) > 0:
        return (UPGRADE, []) if auto_upgrade else (USE, ["memesh daemon upgrade"])
    cb, db = build_text(client.build), build_text(daemon.build)
    if reference_compare(client.version, daemon.version) == 0 and cb and db and cb != db:
        return USE, ["memesh daemon restart"]
    return USE, []


COMMAND = re.compile(r"`(?:memesh|pip) [^`]+`")


@given(peer_pairs(), st.booleans())
def test_decision_follows_the_table(pair, auto_upgrade):
    client, daemon = pair
    decision = decide(client, daemon, auto_upgrade=auto_upgrade)
    action, commands = expected_decision(client, daemon, auto_upgrade)
    assert decision.action == action
    assert decision.reason
    for command in commands:
        assert f"`{command}`" in decision.advice
    if commands:
        assert decision.advice[0].isupper() and decision.advice.endswith(".")
    else:
        assert decision.advice == ""


@given(st.one_of(peers, garbage_peers), st.one_of(peers, garbage_peers), st.booleans())
def test_decide_never_raises_and_a_refusal_always_says_what_to_run(client, daemon, auto_upgrade):
    decision = decide(client, daemon, auto_upgrade=auto_upgrade)
    assert decision.action in (USE, UPGRADE, REFUSE)
    assert isinstance(decision.reason, str) and decision.reason
    assert isinstance(decision.advice, str)
    if decision.action == REFUSE:
        assert COMMAND.search(decision.advice), decision.advice


@given(peers, st.booleans())
def test_a_peer_always_uses_an_identical_daemon(peer, auto_upgrade):
    if is_protocol(peer.protocol):
        same = PeerVersion(peer.version, peer.protocol, peer.build, "")
        decision = decide(same, same, auto_upgrade=auto_upgrade)
        assert decision.action == USE
        assert decision.advice == ""
