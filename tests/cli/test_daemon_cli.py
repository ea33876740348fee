"""The ``memesh daemon`` commands as a user runs them: exit codes, JSON, logs, config
errors, and a reference page that documents every command."""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from memesh.cli.main import build_parser
from memesh.errors import MemeshError
from tests.support import wait_until

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "cli.md"
STATUS_KEYS = {"pid", "version", "protocol", "clients", "socketPath", "lockPath", "logPath", "inflight", "idleLeftMs", "uptimeMs", "clientCount"}


# --------------------------------------------------------------------------- status


def test_status_of_a_fresh_home_is_not_running_with_exit_3(memesh_home):
    done = memesh_home.cli("daemon", "status")
    assert done.returncode == 3
    assert "not running" in done.stdout
    assert memesh_home.daemons() == []


def test_status_of_a_running_daemon_exits_0_and_shows_pid_paths_and_clients(memesh_home):
    pid = memesh_home.start_daemon()
    mesh = memesh_home.connect(name="status-window")
    done = memesh_home.cli("daemon", "status")
    assert done.returncode == 0, done.stderr
    for text in (str(pid), str(memesh_home.paths.socket), str(memesh_home.paths.record), str(memesh_home.paths.log), "status-window"):
        assert text in done.stdout
    assert mesh.control.ping()


def test_status_json_parses_and_has_every_documented_field(memesh_home):
    pid = memesh_home.start_daemon()
    memesh_home.connect(name="json-window")
    done = memesh_home.cli("daemon", "status", "--json")
    assert done.returncode == 0
    info = json.loads(done.stdout)
    assert STATUS_KEYS <= info.keys()
    assert info["pid"] == pid and info["socketPath"] == str(memesh_home.paths.socket)
    assert info["lockPath"] == str(memesh_home.paths.record) and info["logPath"] == str(memesh_home.paths.log)
    assert info["inflight"] == 0 and info["idleLeftMs"] is None  # a client is connected
    assert "json-window" in [row["name"] for row in info["clients"]]


def test_status_json_counts_the_clients_it_lists_and_gives_every_time_in_milliseconds(memesh_home):
    memesh_home.start_daemon()
    memesh_home.connect(name="counted-window")
    before_ms = time.time() * 1000
    info = json.loads(memesh_home.cli("daemon", "status", "--json").stdout)
    assert info["clientCount"] == len(info["clients"]) == 1
    (row,) = info["clients"]
    assert row["name"] == "counted-window"
    # Points in time are ms since the epoch (like startTime), durations are named …Ms.
    for point in (info["startTime"], row["connectedSince"], row["lastHeartbeat"]):
        assert isinstance(point, int) and point <= time.time() * 1000
    assert info["startTime"] <= row["connectedSince"] <= before_ms
    assert not [key for key in info if "Seconds" in key or key.endswith("Secs")]
    assert "drainSeconds" not in info["metrics"] and isinstance(info["uptimeMs"], int)


def test_status_after_a_crash_is_stale_with_exit_4(memesh_home):
    memesh_home.start_daemon()
    memesh_home.kill_daemon(signal.SIGKILL)
    wait_until(lambda: not memesh_home.lifetime_held(), 5, "the lifetime lock to drop")
    done = memesh_home.cli("daemon", "status", "--json")
    assert done.returncode == 4
    assert json.loads(done.stdout)["mode"] == "stale"


def test_status_of_a_daemon_that_does_not_answer_is_unreachable_with_exit_4(memesh_home):
    memesh_home.env["MEMESH_DAEMON_HEALTH_TIMEOUT"] = "200"
    pid = memesh_home.start_daemon()
    memesh_home.kill_daemon(signal.SIGSTOP)
    done = memesh_home.cli("daemon", "status", "--json")
    assert done.returncode == 4
    info = json.loads(done.stdout)
    assert info["mode"] == "unreachable" and info["pid"] == pid


# --------------------------------------------------------------------------- logs


def test_logs_n_prints_at_most_that_many_lines_the_last_ones(memesh_home):
    memesh_home.start_daemon()
    for _ in range(3):
        memesh_home.cli("daemon", "status")  # each adds log lines
    # Let the lines the daemon writes on its own schedule land first (the front door
    # starting after ready, each status client's goodbye), so the log holds still.
    def settled() -> bool:
        text = memesh_home.log_text()
        return "A2A front door on" in text and text.count("(cli)") == text.count("gone (disconnected): memesh-cli")

    wait_until(settled, 30, "the daemon's log to settle")
    done = memesh_home.cli("daemon", "logs", "-n", "5")
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert 0 < len(lines) <= 5
    assert lines == memesh_home.log_text().splitlines()[-len(lines):]


def test_logs_of_a_home_without_a_log_print_nothing_and_succeed(memesh_home):
    done = memesh_home.cli("daemon", "logs", "-n", "5")
    assert done.returncode == 0 and done.stdout == ""


def test_logs_follow_prints_lines_written_after_it_started(memesh_home):
    memesh_home.start_daemon()
    follower = memesh_home.popen_cli("daemon", "logs", "-f", "-n", "1")
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in follower.stdout], daemon=True).start()
    seen: list[str] = []

    def saw(text: str) -> bool:
        while not lines.empty():
            seen.append(lines.get())
        return any(text in line for line in seen)

    wait_until(lambda: saw(""), 30, "logs -f to print the last line")
    mesh = memesh_home.connect(name="follow-me")  # the daemon logs this client's arrival
    wait_until(lambda: saw("follow-me"), 30, lambda: f"logs -f to show the new line (saw {seen})")
    assert follower.poll() is None, "logs -f exited instead of following"
    os.killpg(follower.pid, signal.SIGKILL)
    follower.wait(timeout=10)
    assert mesh.control.ping()


def test_the_troubleshooting_grep_for_clients_finds_a_clients_arrival(memesh_home):
    docs = (DOCS.parent / "troubleshooting.md").read_text(encoding="utf-8")
    (command,) = [line.split("#")[0].strip() for line in docs.splitlines() if line.startswith("memesh daemon logs") and "grep" in line]
    memesh_home.start_daemon()
    memesh_home.connect(name="grep-me")
    shell = command.replace("memesh ", f"{sys.executable} -m memesh ", 1)
    done = subprocess.run(["bash", "-c", shell], env=memesh_home.env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "grep-me" in done.stdout, (shell, done.stdout, done.stderr)


# --------------------------------------------------------------------------- config errors


def test_a_bad_value_in_the_config_file_exits_78_naming_file_key_and_allowed_values(memesh_home):
    config = memesh_home.path / "config.yaml"
    config.write_text("daemon:\n  idle_timeout: soon\n")
    done = memesh_home.cli("daemon", "status")
    assert done.returncode == 78
    message = done.stderr.strip()
    assert len(message.splitlines()) == 1
    assert str(config) in message and "daemon.idle_timeout" in message and "whole number from 0 to" in message


def test_an_unknown_key_in_the_config_file_exits_78_listing_the_known_ones(memesh_home):
    config = memesh_home.path / "config.yaml"
    config.write_text("daemon:\n  idle_timout: 1000\n")
    done = memesh_home.cli("daemon", "start")
    assert done.returncode == 78
    assert str(config) in done.stderr and "daemon.idle_timout" in done.stderr and "daemon.idle_timeout" in done.stderr
    assert memesh_home.daemons() == []


def test_a_config_file_that_is_not_yaml_exits_78_naming_the_file_and_line(memesh_home):
    config = memesh_home.path / "config.yaml"
    config.write_text("daemon:\n  idle_timeout: [1000\n")
    done = memesh_home.cli("daemon", "status")
    assert done.returncode == 78
    assert str(config) in done.stderr and "line" in done.stderr


def test_a_bad_environment_value_exits_78_naming_the_variable_key_and_allowed_values(memesh_home):
    done = memesh_home.cli("daemon", "start", env={"MEMESH_DAEMON_LOG_LEVEL": "loud"})
    assert done.returncode == 78
    message = done.stderr.strip()
    assert "MEMESH_DAEMON_LOG_LEVEL" in message and "daemon.log_level" in message and "debug, info, warn, error" in message
    assert memesh_home.daemons() == []


def test_a_bad_disable_daemon_value_exits_78(memesh_home):
    done = memesh_home.cli("daemon", "status", env={"MEMESH_DISABLE_DAEMON": "perhaps"})
    assert done.returncode == 78
    assert "MEMESH_DISABLE_DAEMON" in done.stderr and "1/true" in done.stderr


# --------------------------------------------------------------------------- documentation


def daemon_commands() -> dict[str, list[list[str]]]:
    """{command: [option strings of each option]} for every ``memesh daemon`` subcommand."""

    def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices

    commands = subparsers(subparsers(build_parser())["daemon"])
    return {
        name: [action.option_strings for action in parser._actions if action.option_strings and "--help" not in action.option_strings]
        for name, parser in commands.items()
    }


def doc_section(text: str, command: str) -> str | None:
    match = re.search(rf"^## `memesh daemon {command}\b.*?(?=^## |\Z)", text, re.M | re.S)
    return match.group(0) if match else None


def test_every_daemon_command_and_option_is_documented_in_the_cli_reference():
    assert DOCS.is_file(), f"{DOCS} is missing"
    text = DOCS.read_text(encoding="utf-8")
    commands = daemon_commands()
    assert {"start", "status", "logs", "stop", "restart", "upgrade"} <= commands.keys()
    undocumented = []
    for command, options in commands.items():
        section = doc_section(text, command)
        if section is None:
            undocumented.append(f"memesh daemon {command}")
            continue
        for strings in options:
            if not any(re.search(rf"(?<![\w-]){re.escape(s)}(?![\w-])", section) for s in strings):
                undocumented.append(f"memesh daemon {command} {'/'.join(strings)}")
    assert undocumented == [], f"not in {DOCS.name}: {undocumented}"


def test_every_exit_code_memesh_can_return_is_in_the_documented_table():
    text = DOCS.read_text(encoding="utf-8")
    table = set(int(code) for code in re.findall(r"^\| (\d+) \|", text, re.M))

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    codes = {MemeshError.exit_code, 2} | {cls.exit_code for cls in subclasses(MemeshError)}
    assert codes <= table, f"exit codes missing from {DOCS.name}: {sorted(codes - table)}"


def all_commands() -> dict[str, list[list[str]]]:
    """{"memesh <group> <command>": [option strings…]} for every command the parser knows."""
    found: dict[str, list[list[str]]] = {}

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found[path] = [a.option_strings for a in parser._actions if a.option_strings and "--help" not in a.option_strings]
            return
        for name, sub in subs[0].choices.items():
            walk(sub, f"{path} {name}")

    walk(build_parser(), "memesh")
    return found


def test_every_command_of_every_group_and_its_options_are_in_the_cli_reference():
    text = DOCS.read_text(encoding="utf-8")
    commands = all_commands()
    assert {"memesh shell", "memesh graph import", "memesh graph export", "memesh config show"} <= commands.keys()
    missing = [path for path in commands if f"`{path}" not in text]
    missing += [f"{path} {'/'.join(opts)}" for path, options in commands.items() for opts in options
                if not any(f"`{path}" in text and re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text) for o in opts)]
    assert missing == [], f"not in {DOCS.name}: {missing}"
