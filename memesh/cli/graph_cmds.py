"""``memesh graph import FILE`` / ``memesh graph export FILE``: the reference server's JSONL format.

Both work directly on the storage named by ``storage.url`` (the SQLite database, whose WAL
lets them run beside a live daemon and open windows, which see the result at their next
call; or the team's PostgreSQL), so a large file never has to cross the daemon socket. Import is all or nothing: a malformed line is reported with its
line number and the database is left unchanged. A progress bar (tqdm) is shown on a
terminal only.
"""
from __future__ import annotations

import os
import sys
import time

import argh

from memesh.cli.errors import DataError, InputError, OutputError, describe_os_error
from memesh.config import load_settings
from memesh.errors import ValidationError
from memesh.paths import ensure_layout, paths_for


def _graph():
    from memesh.store.storage import open_from_settings

    settings = load_settings()
    paths = paths_for(settings.home)
    ensure_layout(paths)
    storage = open_from_settings(settings, paths.db)
    return storage.graph, storage.db, storage.description


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
    if file == "-":
        source, total = sys.stdin.buffer, 0
    else:
        try:
            source = open(file, "rb")
            total = os.fstat(source.fileno()).st_size
        except OSError as exc:
            raise InputError(f"cannot read {file}: {describe_os_error(exc)}; give the path of a JSONL file ('-' for standard input)") from None
    graph, db, where = _graph()
    started = time.monotonic()
    lines = 0
    try:
        with source:
            counted = []

            def counting(it):
                for line in it:
                    counted.append(None)
                    yield line

            try:
                counts = graph.import_jsonl(counting(_lines_with_progress(source, total, sys.stderr.isatty())))
            except ValidationError as exc:
                raise DataError(f"{file}: {exc}; nothing was imported") from None
            except OSError as exc:
                raise InputError(f"cannot read {file}: {describe_os_error(exc)}; nothing was imported") from None
            lines = len(counted)
    finally:
        db.close()
    elapsed = time.monotonic() - started
    print(f"imported {counts['entities']} entities and {counts['relations']} relations from {lines} lines "
          f"in {elapsed:.1f}s into {where} (items already present were kept as they were)")


@argh.arg("file", help="JSONL file to write ('-' for standard output)")
def export(file: str) -> None:
    """Write the whole graph as JSONL (reference server format, sorted)."""
    graph, db, where = _graph()
    started = time.monotonic()
    try:
        if file == "-":
            counts = graph.export_jsonl(sys.stdout)
            sys.stdout.flush()
        else:
            counts = _export_to(graph, file)
    finally:
        db.close()
    if file != "-":
        print(f"exported {counts['entities']} entities and {counts['relations']} relations to {file} in {time.monotonic() - started:.1f}s")


def _export_to(graph, file: str) -> dict:
    """Write to a temporary file beside ``file``, then rename it: never a half-written export."""
    tmp = f"{file}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            counts = graph.export_jsonl(fh)
        os.replace(tmp, file)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        folder = os.path.dirname(os.path.abspath(file))
        hint = f"the folder {folder} does not exist" if not os.path.isdir(folder) else describe_os_error(exc)
        raise OutputError(f"cannot write {file}: {hint}") from None
    return counts


import_.__name__ = "import"  # the command's name; `import` itself is a keyword
COMMANDS = [import_, export]
