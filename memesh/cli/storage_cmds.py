"""``memesh storage copy --to URL [--from URL]`` and ``memesh storage show``.

Copy moves an existing store into another one: SQLite into a team's PostgreSQL, or back
(``--to sqlite:`` or ``--to sqlite:/path/file.db``). All or nothing, idempotent (see
:mod:`memesh.store.copy`); a progress bar on a terminal. URLs are printed without
passwords.
"""
from __future__ import annotations

import sys
import time

import argh

from memesh.config import load_settings
from memesh.errors import ConfigError
from memesh.paths import ensure_layout, paths_for
from memesh.store.url import describe, parse_storage_url


def _parse(url: str, option: str):
    try:
        return parse_storage_url(url)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None


@argh.arg("--to", dest="to", help="destination storage URL: postgresql://... or sqlite:[/path/file.db]")
@argh.arg("--from", dest="source", help="source storage URL (default: the storage.url setting)")
def copy(*, to: str = "", source: str = "") -> None:
    """Copy the graph and memories into another storage; all or nothing, idempotent."""
    from tqdm import tqdm

    from memesh.store.copy import copy_storage, item_count
    from memesh.store.storage import open_storage

    if not to:
        raise ConfigError("--to: give the destination, e.g. --to postgresql://user@host/dbname or --to sqlite:")
    settings = load_settings()
    paths = paths_for(settings.home)
    ensure_layout(paths)
    source_url = _parse(source or settings["storage.url"], "--from")
    target_url = _parse(to, "--to")
    names = describe(source_url, str(paths.db)), describe(target_url, str(paths.db))
    if names[0] == names[1]:
        raise ConfigError(f"--to names the source itself ({names[0]}); nothing to copy")
    password_file = settings["storage.password_file"]
    started = time.monotonic()
    src = open_storage(source_url, paths.db, password_file=password_file)
    try:
        dst = open_storage(target_url, paths.db, password_file=password_file)
        try:
            total = 2 * item_count(src)
            with tqdm(total=total, unit=" items", desc="copying", disable=not sys.stderr.isatty(), file=sys.stderr) as bar:
                added = copy_storage(src, dst, bar.update)
        finally:
            dst.close()
    finally:
        src.close()
    print(f"copied from {names[0]} to {names[1]} in {time.monotonic() - started:.1f}s: added "
          f"{added['entities']} entities, {added['relations']} relations, {added['memories']} memories "
          f"(items already present were kept as they were)")


def show() -> None:
    """Print which storage this memesh uses (no password)."""
    settings = load_settings()
    print(describe(parse_storage_url(settings["storage.url"]), str(paths_for(settings.home).db)))


COMMANDS = [copy, show]
