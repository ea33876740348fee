"""``memesh graph import FILE`` / ``memesh graph export FILE``: the reference server's JSONL format.

Both work directly on the SQLite database (WAL lets them run beside a live daemon and
open windows, which see the result at their next call), so a large file never has to
cross the daemon socket. Import is all or nothing: a malformed line is reported with its
line number and the database is left unchanged. A progress bar (tqdm) is shown on a
terminal only.
"""
from __future__ import annotations

import os
import sys
import time

import argh

from memesh.config import load_settings
from memesh.paths import ensure_layout, paths_for


def _graph():
    from memesh.store.db import Database
    from memesh.store.graph import KnowledgeGraph

    paths = paths_for(load_settings().home)
    ensure_layout(paths)
    db = Database(paths.db)
    return KnowledgeGraph(db), db, paths


def _lines_with_progress(fh, total: int, enabled: bool):
    """Yield the file's lines, advancing a byte-based progress bar as they are read."""
    from tqdm import tqdm

    with tqdm(total=total, unit="B", unit_scale=True, desc="importing", disable=not enabled, file=sys.stderr) as bar:
        for line in fh:
            bar.update(len(line))
            yield line


@argh.arg("file", help="JSONL file to read ('-' for standard input)")
def import_(file: str) -> None:
    """Add the entities and relations of a JSONL export (reference server format); all or nothing."""
    graph, db, paths = _graph()
    started = time.monotonic()
    lines = 0
    try:
        if file == "-":
            source, total = sys.stdin.buffer, 0
        else:
            source = open(file, "rb")
            total = os.fstat(source.fileno()).st_size
        with source:
            counted = []

            def counting(it):
                for line in it:
                    counted.append(None)
                    yield line

            counts = graph.import_jsonl(counting(_lines_with_progress(source, total, sys.stderr.isatty())))
            lines = len(counted)
    finally:
        db.close()
    elapsed = time.monotonic() - started
    print(f"imported {counts['entities']} entities and {counts['relations']} relations from {lines} lines "
          f"in {elapsed:.1f}s into {paths.db} (items already present were kept as they were)")


@argh.arg("file", help="JSONL file to write ('-' for standard output)")
def export(file: str) -> None:
    """Write the whole graph as JSONL (reference server format, sorted)."""
    graph, db, paths = _graph()
    started = time.monotonic()
    try:
        if file == "-":
            counts = graph.export_jsonl(sys.stdout)
            sys.stdout.flush()
        else:
            tmp = f"{file}.tmp-{os.getpid()}"
            with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
                counts = graph.export_jsonl(fh)
            os.replace(tmp, file)  # never leave a half-written export under the real name
    finally:
        db.close()
    if file != "-":
        print(f"exported {counts['entities']} entities and {counts['relations']} relations to {file} in {time.monotonic() - started:.1f}s")


import_.__name__ = "import"  # the command's name; `import` itself is a keyword
COMMANDS = [import_, export]
