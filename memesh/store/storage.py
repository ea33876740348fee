"""Opening the storage named by ``storage.url``: one function for the daemon, standalone mode and the CLI.

:func:`open_storage` returns a :class:`Storage`: the graph, the memory store and the A2A
hub's tasks and agents (see :mod:`memesh.store.base`), the database object behind them,
and a description without secrets for status displays.

A2A rows in a shared PostgreSQL database belong to one hub, named by
:func:`hub_identity`: ``user@host:/real/path/of/the/home``. It is the same for every
daemon of one home (restarts, upgrades, a renamed symlink to it) and differs between
homes, users and machines; a SQLite file belongs to one home and needs no such name. A PostgreSQL URL needs the ``postgres`` extra
(``pip install 'memesh[postgres]'``); the password comes from the URL, ``PGPASSWORD``,
``~/.pgpass`` (libpq reads those itself) or the ``storage.password_file`` setting.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any

from memesh.errors import ConfigError
from memesh.store.url import StorageUrl, describe, parse_storage_url


@dataclasses.dataclass
class Storage:
    graph: Any
    memory: Any
    db: Any
    description: str
    kind: str
    a2a: Any = None   # memesh.store.base.A2AStore: the A2A hub's tasks and agents

    def close(self) -> None:
        self.db.close()

    def start_feed(self, on_change: Any) -> Any:
        """Start publishing other processes' writes to ``on_change``; returns what to ``stop()``.

        SQLite: a :class:`~memesh.store.changes.ChangeFeed` on the changes table; PostgreSQL:
        a :class:`~memesh.store.pg.listen.ChangeListener` on LISTEN/NOTIFY.
        """
        if self.kind == "postgresql":
            from memesh.store.pg.listen import ChangeListener

            return ChangeListener(self.db, on_change).start()
        from memesh.store.changes import ChangeFeed

        return ChangeFeed(self.db, on_change).start()

    def available(self, feed: Any = None) -> bool:
        """Whether the storage answered lately (always, for a local SQLite file)."""
        if self.kind != "postgresql":
            return True
        return bool(self.db.available and (feed is None or feed.connected))


def hub_name(user: str, host: str, home: str) -> str:
    """The identity of a hub (pure): who runs it, where, and which home it serves."""
    return f"{user}@{host}:{home}"


def hub_identity(home: str | os.PathLike[str]) -> str:
    """This process's hub identity for ``home`` (its real path: symlinks resolved)."""
    from memesh.store.origin import default_origin

    user, host = default_origin()
    return hub_name(user, host, os.path.realpath(os.fspath(home)))


def read_password_file(path: str) -> str:
    """The first line of a password file (which should be private: 0600)."""
    expanded = os.path.expanduser(path)
    try:
        with open(expanded, encoding="utf-8") as fh:
            return fh.readline().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"storage.password_file: cannot read {expanded}: {exc.strerror}") from None


def open_storage(url: str | StorageUrl, default_path: str | os.PathLike[str], *, password_file: str = "",
                 origin: tuple[str, str] | None = None, on_change: Any = None, hub: str = "") -> Storage:
    """Open the graph, memories and A2A tables at ``url`` (``sqlite:`` means ``default_path``).

    ``origin`` (user, host): whom the writes record (memesh.store.origin); by default this
    process's login name and host name. ``on_change`` is the stores' hook, called after
    each committed write (memesh.store.changes). ``hub`` scopes the A2A rows on PostgreSQL
    (default: :func:`hub_identity` of the directory holding ``default_path``, the home).
    """
    storage = url if isinstance(url, StorageUrl) else parse_storage_url(url)
    description = describe(storage, os.fspath(default_path))
    if storage.is_postgresql:
        try:
            from memesh.store.pg.db import PgDatabase
            from memesh.store.pg.graph import PgKnowledgeGraph
            from memesh.store.pg.memory import PgMemoryStore
        except ImportError as exc:
            raise ConfigError(f"storage.url names PostgreSQL but psycopg is not installed ({exc}); "
                              f"install it with: pip install 'memesh[postgres]'") from None
        password = read_password_file(password_file) if password_file else None
        from memesh.store.pg.a2a import PgA2AStore

        pg = PgDatabase(storage.url or "", password=password, origin=origin)
        a2a = PgA2AStore(pg, hub or hub_identity(os.path.dirname(os.path.abspath(default_path))))
        return Storage(PgKnowledgeGraph(pg, on_change=on_change), PgMemoryStore(pg, on_change=on_change), pg,
                       description, "postgresql", a2a)
    from memesh.store.a2a import SqliteA2AStore
    from memesh.store.db import Database
    from memesh.store.graph import KnowledgeGraph
    from memesh.store.memory import MemoryStore

    db = Database(storage.path or default_path, writer=origin)
    return Storage(KnowledgeGraph(db, on_change=on_change), MemoryStore(db, on_change=on_change), db,
                   description, "sqlite", SqliteA2AStore(db))


def open_from_settings(settings: Any, default_path: str | os.PathLike[str], *, on_change: Any = None) -> Storage:
    """:func:`open_storage` with the ``storage.*`` settings (A2A rows scoped to the settings' home)."""
    return open_storage(settings["storage.url"], default_path, password_file=settings["storage.password_file"],
                        on_change=on_change, hub=hub_identity(settings.home))
