"""Examples of memesh.version: parsing, ordering, and what decide() tells the user."""
from __future__ import annotations

import pickle

import pytest

from memesh import __version__
from memesh.version import (
    MIN_CLIENT_VERSION,
    PROTOCOL_VERSION,
    REFUSE,
    UPGRADE,
    USE,
    PeerVersion,
    decide,
    parse_version,
    this_peer,
)


def peer(
    version: str = "0.2.0", protocol: object = 1, build: str = "", minimum: str = ""
) -> PeerVersion:
    return PeerVersion(version, protocol, build, minimum)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- parsing


def test_python_prereleases_dev_and_post_releases_are_valid_pep_440_versions():
    for text in ("0.2.0rc1", "0.2.0.dev3", "0.2.0.post1", "0.2.0a1", "1.0.0-rc.1", "1.2"):
        assert parse_version(text).valid, text


def test_pep_440_order_is_the_order_pip_installs_in():
    ordered = ["0.1.0", "0.2.0.dev3", "0.2.0a1", "0.2.0b2", "0.2.0rc1", "0.2.0", "0.2.0.post1", "0.10.0"]
    versions = [parse_version(t) for t in ordered]
    for earlier, later in zip(versions, versions[1:]):
        assert earlier < later, (earlier, later)


def test_a_leading_v_and_spelling_variants_print_in_normal_form():
    assert str(parse_version("v0.3.0")) == "0.3.0"
    assert str(parse_version(" 1.0.0-RC.1 ")) == "1.0.0rc1"
    assert parse_version("1.0.0-rc.1") == parse_version("1.0.0rc1")


@pytest.mark.parametrize("garbage", ["dev", "", "1.2.3-", "1..2", "latest", "1" * 300, None, 42, b"1.2.3"])
def test_garbage_becomes_an_invalid_version_instead_of_an_error(garbage):
    v = parse_version(garbage)
    assert not v.valid
    assert v < parse_version("0.0.0.dev0")


def test_invalid_versions_keep_their_text_for_messages():
    assert str(parse_version("dev")) == "dev"
    assert repr(parse_version("dev")) == "Version(invalid='dev')"
    assert parse_version(None).raw == "None"


def test_a_local_label_sorts_after_its_public_version_as_in_pep_440():
    assert parse_version("1.0.0") < parse_version("1.0.0+linux")
    assert parse_version("1.0.0+linux") == parse_version("1.0.0+LINUX")
    assert len({parse_version("1.0.0+linux"), parse_version("1.0.0+LINUX")}) == 1


def test_numeric_parts_compare_as_numbers():
    assert parse_version("1.0.0rc2") < parse_version("1.0.0rc11")
    assert parse_version("1.10.0") > parse_version("1.9.0")


def test_versions_pickle_and_do_not_order_against_strings():
    v = parse_version("1.2.3rc1")
    assert pickle.loads(pickle.dumps(v)) == v
    assert v != "1.2.3rc1"
    with pytest.raises(TypeError):
        v < "1.2.3"  # noqa: B015


# --------------------------------------------------------------------------- decide


def test_this_process_describes_itself_with_the_package_and_protocol_versions():
    me = this_peer(build="abc")
    assert me == PeerVersion(__version__, PROTOCOL_VERSION, "abc", MIN_CLIENT_VERSION)
    assert parse_version(me.version).valid
    assert parse_version(me.min_client_version) <= parse_version(me.version)


def test_identical_peers_use_the_daemon_with_nothing_to_advise():
    decision = decide(peer(), peer())
    assert decision.action == USE
    assert decision.advice == ""


def test_a_client_with_a_newer_protocol_refuses_and_asks_for_a_daemon_upgrade():
    decision = decide(peer(protocol=2), peer(protocol=1))
    assert decision.action == REFUSE
    assert "`memesh daemon upgrade`" in decision.advice


def test_a_client_with_an_older_protocol_refuses_and_offers_pip_or_stopping_the_daemon():
    decision = decide(peer(protocol=1), peer(protocol=2))
    assert decision.action == REFUSE
    assert "`pip install -U memesh`" in decision.advice
    assert "`memesh daemon stop`" in decision.advice


@pytest.mark.parametrize("protocol", ["1", None, 1.0, True])
def test_an_unreadable_daemon_protocol_is_refused_not_crashed_on(protocol):
    decision = decide(peer(protocol=1), peer(protocol=protocol))
    assert decision.action == REFUSE
    assert "`memesh daemon stop`" in decision.advice


def test_a_client_older_than_the_daemons_minimum_is_told_to_upgrade_memesh():
    decision = decide(peer("0.1.0"), peer("0.3.0", minimum="0.2.0"))
    assert decision.action == REFUSE
    assert "`pip install -U memesh`" in decision.advice
    assert "0.2.0" in decision.advice


def test_a_newer_client_asks_an_older_compatible_daemon_to_upgrade():
    decision = decide(peer("0.3.0"), peer("0.2.0"))
    assert decision.action == UPGRADE
    assert decision.advice == ""


def test_with_auto_upgrade_off_a_newer_client_uses_the_daemon_and_says_how_to_upgrade_it():
    decision = decide(peer("0.3.0"), peer("0.2.0"), auto_upgrade=False)
    assert decision.action == USE
    assert "`memesh daemon upgrade`" in decision.advice


def test_an_older_client_above_the_minimum_uses_the_newer_daemon():
    decision = decide(peer("0.2.0"), peer("0.3.0", minimum="0.1.0"))
    assert decision.action == USE
    assert decision.advice == ""


def test_a_reinstall_with_changed_code_suggests_restarting_the_daemon():
    decision = decide(peer("0.2.0", build="new"), peer("0.2.0", build="old"))
    assert decision.action == USE
    assert "`memesh daemon restart`" in decision.advice


def test_a_dev_version_uses_the_daemon_and_says_versions_could_not_be_compared():
    decision = decide(peer("dev"), peer("0.2.0"))
    assert decision.action == USE
    assert "could not be compared" in decision.reason
    assert decision.advice == ""


def test_an_unknown_build_on_either_side_is_not_a_reason_to_restart():
    assert decide(peer(build="new"), peer(build="")).advice == ""


@pytest.mark.parametrize("newer", ["0.2.0rc1", "0.2.0.dev3", "0.2.0.post1", "0.1.0.post1"])
def test_a_client_with_a_python_pre_dev_or_post_release_newer_than_the_daemon_asks_it_to_upgrade(newer):
    assert decide(peer(newer), peer("0.1.0")).action == UPGRADE


def test_a_release_candidate_client_uses_the_final_release_daemon():
    assert decide(peer("0.2.0rc1"), peer("0.2.0")).action == USE
