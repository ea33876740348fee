"""Every CLI failure a user can provoke ends in ONE ``memesh:`` line on stderr, no
traceback, and the exit code that docs/cli.md documents for it."""
from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def documented_codes() -> set[int]:
    return {int(code) for code in re.findall(r"^\| (\d+) \|", DOCS.read_text(encoding="utf-8"), re.M)}


def assert_one_line_failure(done: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1 and lines[0].startswith("memesh: "), done.stderr
    assert done.returncode == code, (done.returncode, done.stderr)
    assert code in documented_codes()
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_importing_a_missing_file_exits_66_naming_it(memesh_home):
    missing = memesh_home.path / "nowhere.jsonl"
    assert_one_line_failure(memesh_home.cli("graph", "import", str(missing)), 66, str(missing), "No such file")


def test_importing_a_directory_exits_66(memesh_home):
    assert_one_line_failure(memesh_home.cli("graph", "import", str(memesh_home.path)), 66, "Is a directory")


def test_a_malformed_import_line_is_a_data_error_65_not_a_usage_error(memesh_home):
    bad = memesh_home.path / "bad.jsonl"
    bad.write_text('{"type": "entity", "name": "ok", "entityType": "t", "observations": []}\n{"type": "entity"\n')
    assert_one_line_failure(memesh_home.cli("graph", "import", str(bad)), 65, "line 2", "nothing was imported")
    assert memesh_home.cli("graph", "export", "-").stdout == ""  # all or nothing


def test_exporting_into_a_missing_folder_exits_73_naming_the_folder(memesh_home):
    target = memesh_home.path / "no" / "such" / "out.jsonl"
    assert_one_line_failure(memesh_home.cli("graph", "export", str(target)), 73, str(target.parent), "does not exist")
    assert not target.parent.exists()


@pytest.mark.parametrize("layout", ["a file", "a path under a file"])
def test_status_with_memesh_home_not_a_directory_exits_77(memesh_home, layout):
    blocker = memesh_home.path / "plain-file"
    blocker.write_text("")
    home = blocker if layout == "a file" else blocker / "home"
    done = memesh_home.cli("daemon", "status", env={"MEMESH_HOME": str(home)})
    assert_one_line_failure(done, 77, str(home))


def test_logs_with_a_negative_line_count_is_refused_as_a_usage_error(memesh_home):
    assert_one_line_failure(memesh_home.cli("daemon", "logs", "-n", "-5"), 2, "-n", "-5")


def test_an_option_value_of_the_wrong_type_is_one_usage_line(memesh_home):
    assert_one_line_failure(memesh_home.cli("daemon", "logs", "-n", "many"), 2, "many", "memesh daemon logs --help")


def test_logs_help_names_the_documented_option_and_no_other_spelling(memesh_home):
    done = memesh_home.cli("daemon", "logs", "--help")
    assert done.returncode == 0
    assert re.search(r"(?<![\w-])-n(?![\w-])", done.stdout)
    assert not re.search(r"(?<![\w-])-l(?![\w-])", done.stdout)
    assert "-a" not in memesh_home.cli("daemon", "status", "--help").stdout.split()


@pytest.mark.parametrize("group, command", [("daemon", "status"), ("graph", "import"), ("config", "show")])
def test_a_group_without_a_command_shows_the_groups_help_and_exits_2(memesh_home, group, command):
    done = memesh_home.cli(group)
    assert done.returncode == 2
    assert f"usage: memesh {group}" in done.stderr and command in done.stderr
    assert done.stdout == ""


def test_a_second_daemon_run_is_refused_with_exit_6_naming_the_running_pid(memesh_home):
    pid = memesh_home.start_daemon()
    done = memesh_home.cli("daemon", "run")
    assert_one_line_failure(done, 6, f"pid {pid}", "memesh daemon stop")
    assert [p.pid for p in memesh_home.daemons()] == [pid]


def test_output_piped_into_a_reader_that_stops_early_ends_quietly(memesh_home):
    lines = "".join(json.dumps({"type": "entity", "name": f"e{i:05}", "entityType": "t", "observations": ["x" * 200]}) + "\n"
                    for i in range(3000))
    source = memesh_home.path / "many.jsonl"
    source.write_text(lines)
    assert memesh_home.cli("graph", "import", str(source)).returncode == 0
    export = memesh_home.popen_cli("graph", "export", "-", stderr=subprocess.PIPE)
    first = export.stdout.readline()  # like `| head -1`: read one line, then close the pipe
    export.stdout.close()
    err = export.stderr.read()
    export.wait(timeout=30)
    assert json.loads(first)["name"] == "e00000"
    assert err == "", err
    assert export.returncode == 141 and 141 in documented_codes()


def test_every_documented_failure_code_is_explained_in_main():
    from memesh.cli import main

    for code in documented_codes():
        assert re.search(rf"^{code}\s", main.__doc__, re.M), f"exit code {code} missing from memesh.cli.main's docstring"
