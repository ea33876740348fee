"""How a client decides whether to use the daemon it reached (the proxy's fast path included)."""
from memesh.daemon.spawn import version_action

ME = {"version": "1.4.0", "protocol": 3, "build": "abc"}


def test_same_version_and_protocol_is_used_without_further_checks():
    assert version_action(ME, {"version": "1.4.0", "protocol": 3, "build": "other"}, True) == ("use", "")


def test_a_daemon_speaking_another_protocol_is_refused_with_the_command_to_run():
    action, message = version_action(ME, {"version": "1.2.0", "protocol": 2, "minClientVersion": "1.0.0"}, True)
    assert action == "refuse" and "memesh daemon upgrade" in message


def test_an_older_compatible_daemon_is_asked_to_hand_over_unless_auto_upgrade_is_off():
    older = {"version": "1.3.9", "protocol": 3, "minClientVersion": "1.0.0"}
    assert version_action(ME, older, True)[0] == "upgrade"
    assert version_action(ME, older, False)[0] == "use"


def test_a_client_older_than_the_daemons_minimum_is_refused():
    action, message = version_action(ME, {"version": "2.0.0", "protocol": 3, "minClientVersion": "1.5.0"}, True)
    assert action == "refuse" and "pip install -U memesh" in message


def test_garbage_in_the_hello_is_a_value_not_a_crash():
    action, _ = version_action(ME, {"version": None, "protocol": "x"}, True)
    assert action == "refuse"
