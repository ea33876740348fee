"""Properties of memesh.version: SemVer parsing, precedence as a total order, decide().

The expectations are computed by a reference written here from the SemVer 2.0.0 text
(a regex for validity, a spelled-out comparison for precedence) and by a decision table
written from the rules in DESIGN.md §6, not by calling back into the module under test.
"""
from __future__ import annotations

import dataclasses
import functools
import re

from hypothesis import given
from hypothesis import strategies as st

from memesh.version import (
    REFUSE,
    UPGRADE,
    USE,
    PeerVersion,
    Version,
    decide,
    parse_version,
)

# --------------------------------------------------------------------------- reference

_NUM = r"(?:0|[1-9][0-9]*)"
_PRE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD_ID = r"[0-9A-Za-z-]+"
_REFERENCE = re.compile(
    rf"[vV]?({_NUM})\.({_NUM})\.({_NUM})"
    rf"(?:-({_PRE_ID}(?:\.{_PRE_ID})*))?"
    rf"(?:\+({_BUILD_ID}(?:\.{_BUILD_ID})*))?",
    re.ASCII,
)


def reference_match(value: object) -> re.Match | None:
    if not isinstance(value, str):
        return None
    return _REFERENCE.fullmatch(value.strip())


def reference_raw(value: object) -> str:
    return value if isinstance(value, str) else repr(value)


def _compare_identifiers(a: str, b: str) -> int:
    a_num, b_num = a.isdigit(), b.isdigit()
    if a_num and b_num:
        return (int(a) > int(b)) - (int(a) < int(b))
    if a_num != b_num:
        return -1 if a_num else 1  # numeric identifiers have lower precedence
    return (a > b) - (a < b)


def reference_compare(a: object, b: object) -> int:
    """SemVer §11 precedence; invalid values below valid ones, among themselves by text."""
    ma, mb = reference_match(a), reference_match(b)
    if ma is None or mb is None:
        if ma is not None:
            return 1
        if mb is not None:
            return -1
        ra, rb = reference_raw(a), reference_raw(b)
        return (ra > rb) - (ra < rb)
    for x, y in zip(ma.group(1, 2, 3), mb.group(1, 2, 3)):
        if int(x) != int(y):
            return 1 if int(x) > int(y) else -1
    pa, pb = ma.group(4), mb.group(4)
    if pa is None or pb is None:
        if pa is None and pb is None:
            return 0
        return 1 if pa is None else -1  # a release outranks its prereleases
    ids_a, ids_b = pa.split("."), pb.split(".")
    for x, y in zip(ids_a, ids_b):
        result = _compare_identifiers(x, y)
        if result:
            return result
    return (len(ids_a) > len(ids_b)) - (len(ids_a) < len(ids_b))


def sign(x: int) -> int:
    return (x > 0) - (x < 0)


def compare(a: Version, b: Version) -> int:
    return (a > b) - (a < b)


# --------------------------------------------------------------------------- strategies

ALNUM_HYPHEN = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-"

numbers = st.one_of(st.integers(0, 3), st.integers(0, 10**30)).map(str)
alnum_ids = st.text(ALNUM_HYPHEN, min_size=1, max_size=6).filter(lambda s: not s.isdigit())
small_pre_ids = st.sampled_from(["0", "1", "2", "11", "alpha", "beta", "rc", "a-b", "1a", "-"])
pre_ids = st.one_of(numbers, alnum_ids, small_pre_ids)
build_ids = st.text(ALNUM_HYPHEN, min_size=1, max_size=6)


def _format(major: str, minor: str, patch: str, pre: list[str], build: list[str]) -> str:
    text = f"{major}.{minor}.{patch}"
    if pre:
        text += "-" + ".".join(pre)
    if build:
        text += "+" + ".".join(build)
    return text


semver_texts = st.builds(
    _format,
    numbers,
    numbers,
    numbers,
    st.lists(pre_ids, max_size=4),
    st.lists(build_ids, max_size=3),
)
# Few distinct components, so that equal cores and shared prerelease prefixes are common.
close_semver_texts = st.builds(
    _format,
    st.sampled_from("012"),
    st.sampled_from("01"),
    st.sampled_from("01"),
    st.lists(small_pre_ids, max_size=3),
    st.lists(st.sampled_from(["b1", "b2", "001"]), max_size=1),
)
known_garbage = st.sampled_from(
    ["dev", "", "1.2", "1.2.3.4", "01.2.3", "1.02.3", "1.2.3-", "1.2.3+", "1.2.3-01",
     "1.2.3-a..b", "1.2.3+a+b", "v", "vv1.2.3", " 1.2.3 x", "١.٢.٣", "1.2.3 4"]
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
version_texts = st.one_of(semver_texts, close_semver_texts, known_garbage, st.text(max_size=12))
any_inputs = st.one_of(version_texts, garbage_objects)

# --------------------------------------------------------------------------- parsing


@given(semver_texts)
def test_canonical_text_round_trips_through_parse(text):
    version = parse_version(text)
    assert version.valid
    assert str(version) == text


@given(semver_texts)
def test_leading_v_and_surrounding_whitespace_are_tolerated(text):
    assert str(parse_version("v" + text)) == text
    assert str(parse_version(f"  {text}\n")) == text


@given(st.one_of(st.text(), garbage_objects))
def test_parse_never_raises_and_validity_matches_the_reference(value):
    version = parse_version(value)
    assert version.valid == (reference_match(value) is not None)


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


@given(st.lists(st.one_of(close_semver_texts, known_garbage), max_size=8))
def test_sorting_agrees_with_the_reference_order(texts):
    ours = [str(v) for v in sorted(parse_version(t) for t in texts)]
    expected = sorted(texts, key=functools.cmp_to_key(reference_compare))
    ours_versions = [parse_version(t) for t in ours]
    expected_versions = [parse_version(t) for t in expected]
    assert ours_versions == expected_versions


@given(version_texts, semver_texts)
def test_every_invalid_version_sorts_below_every_valid_one(a, b):
    va, vb = parse_version(a), parse_version(b)
    if not va.valid:
        assert va < vb


@given(semver_texts, st.lists(build_ids, min_size=1, max_size=2))
def test_build_metadata_does_not_affect_precedence(text, build):
    plain = text.split("+", 1)[0]
    with_build = plain + "+" + ".".join(build)
    assert parse_version(plain) == parse_version(with_build)
    assert hash(parse_version(plain)) == hash(parse_version(with_build))
    assert not parse_version(plain) < parse_version(with_build)


def test_semver_spec_example_order_holds():
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
    ]
    versions = [parse_version(t) for t in ordered]
    assert all(v.valid for v in versions)
    for earlier, later in zip(versions, versions[1:]):
        assert earlier < later
    assert sorted(reversed(versions)) == versions
    assert parse_version("1.0.0") < parse_version("2.0.0") < parse_version("2.1.0")
    assert parse_version("2.1.0") < parse_version("2.1.1")


# --------------------------------------------------------------------------- decide

DECISION_VERSIONS = st.one_of(
    st.sampled_from(
        ["0.1.0", "0.2.0", "1.0.0", "1.0.0-rc.1", "1.0.0+build.5", "v0.2.0", "dev", "", "1.2"]
    ),
    close_semver_texts,
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
    client_valid = reference_match(client.version) is not None
    daemon_valid = reference_match(daemon.version) is not None
    min_valid = reference_match(daemon.min_client_version) is not None
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
