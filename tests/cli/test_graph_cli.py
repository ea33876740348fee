"""`memesh graph import` / `export`: the reference JSONL format, lossless, all or nothing."""
from __future__ import annotations

import json
import sqlite3
import sys

from tests.mcp.stdio_driver import StdioServer

SAMPLE = [
    {"type": "entity", "name": "Ada", "entityType": "person", "observations": ["wrote the first program", "naïve ünïcode ✓"]},
    {"type": "entity", "name": "Engine", "entityType": "machine", "observations": []},
    {"type": "relation", "from": "Ada", "to": "Engine", "relationType": "programmed"},
]


def write_jsonl(path, items) -> None:
    path.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items), encoding="utf-8")


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def canonical(items: list[dict]) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True, ensure_ascii=False) for item in items)


def test_export_import_export_round_trips_the_graph(memesh_home, tmp_path):
    source = tmp_path / "in.jsonl"
    write_jsonl(source, SAMPLE)
    done = memesh_home.cli("graph", "import", str(source))
    assert done.returncode == 0, done.stderr
    assert "2 entities and 1 relations" in done.stdout
    first = tmp_path / "first.jsonl"
    assert memesh_home.cli("graph", "export", str(first)).returncode == 0
    assert canonical(read_jsonl(first)) == canonical(SAMPLE)

    other = memesh_home.path / "second-home"
    env = {"MEMESH_HOME": str(other)}
    assert memesh_home.cli("graph", "import", str(first), env=env).returncode == 0
    second = tmp_path / "second.jsonl"
    assert memesh_home.cli("graph", "export", str(second), env=env).returncode == 0
    assert second.read_bytes() == first.read_bytes()


def test_a_corrupted_line_is_reported_by_number_and_nothing_is_imported(memesh_home, tmp_path):
    good = tmp_path / "good.jsonl"
    write_jsonl(good, SAMPLE[:1])
    assert memesh_home.cli("graph", "import", str(good)).returncode == 0
    db = memesh_home.paths.db
    before = sqlite3.connect(db).execute("SELECT count(*) FROM entities").fetchone()

    bad = tmp_path / "bad.jsonl"
    lines = [json.dumps(item) for item in SAMPLE[1:]] + ['{"type": "entity", "name": "Broken", "entityType": ', json.dumps({"type": "entity", "name": "Late", "entityType": "x", "observations": []})]
    bad.write_text("\n".join(lines) + "\n")
    done = memesh_home.cli("graph", "import", str(bad))
    assert done.returncode != 0
    assert "line 3" in done.stderr and done.stderr.startswith("memesh:")
    assert sqlite3.connect(db).execute("SELECT count(*) FROM entities").fetchone() == before
    exported = tmp_path / "after.jsonl"
    assert memesh_home.cli("graph", "export", str(exported)).returncode == 0
    assert [item["name"] for item in read_jsonl(exported) if item["type"] == "entity"] == ["Ada"]


def test_an_import_is_seen_by_an_open_window_at_its_next_call(memesh_home, tmp_path):
    window = StdioServer([sys.executable, "-m", "memesh"], memesh_home.env)
    try:
        window.initialize()
        source = tmp_path / "in.jsonl"
        write_jsonl(source, SAMPLE)
        assert memesh_home.cli("graph", "import", str(source)).returncode == 0
        found = window.call("search_nodes", {"query": "first program"})["structuredContent"]
        assert [e["name"] for e in found["entities"]] == ["Ada"]
    finally:
        window.kill()
