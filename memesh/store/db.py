"""Opening the memesh SQLite database, its schema migrations, and its concurrency policy.

This module owns the database file: how it is created (mode 0600, WAL journal, foreign
keys on, a busy timeout), the ordered registry of schema migrations, and the rules by which
many threads and several processes share it.

Concurrency policy
------------------
* One ``sqlite3`` connection per thread (``threading.local``). A :class:`Database` object
  can therefore be shared by every thread of the daemon; a connection is never used by a
  thread other than the one that opened it (except by :meth:`Database.close` at shutdown,
  and to close the connections of threads that have ended).
* Every write runs inside :meth:`Database.write`, which starts with ``BEGIN IMMEDIATE``:
  the write lock is taken up front, so two writers never both read and then both try to
  upgrade (the classic SQLite deadlock), and no write is lost. Threads of one process
  queue on a ``threading.Lock`` first (cheap and fair); other processes on the same file
  (a standalone memesh beside the daemon) wait in SQLite's busy handler for up to
  :data:`BUSY_TIMEOUT_S`.
* Reads run inside :meth:`Database.read`, a deferred transaction: in WAL mode it sees one
  consistent snapshot and never blocks writers nor waits for them.

A full disk
-----------
A write that fails because the disk is full (SQLITE_FULL, or ENOSPC) is rolled back and
raised as :class:`~memesh.errors.DiskFull`, whose message names the directory; the
connection stays usable. Reads go on working (WAL readers need no new space), and the
first write after space is freed succeeds: nothing has to restart.

Migrations
----------
:data:`MIGRATIONS` is an ordered list of ``(version, step)``; a step is SQL text (one or
more statements) or a callable taking the connection. Each step runs in its own
``BEGIN IMMEDIATE`` transaction together with ``PRAGMA user_version = version``, so a
crash leaves the schema at a version boundary, and two processes opening a fresh file at
once migrate it exactly once. To extend the schema, append ``(next_version, step)``.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from memesh.a2a.tables import SCHEMA as _SCHEMA_V5_A2A
from memesh.errors import DiskFull, MemeshError
from memesh.store.origin import default_origin

logger = logging.getLogger(__name__)

# A standalone process may hold the write lock through a large import (seconds); the
# daemon's writers must wait that out rather than fail with "database is locked".
BUSY_TIMEOUT_S = 15.0

FILE_MODE = 0o600  # the graph holds whatever users told their assistants: owner only

MigrationStep = str | Callable[[sqlite3.Connection], None]

_SCHEMA_V1 = """
-- entity_type IS NULL marks a stub: a name only used as a relation endpoint so far.
-- Stubs let relations to not-yet-created entities exist (as the reference server allows)
-- while relations still reference entities through cascading foreign keys.
CREATE TABLE entities (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    entity_type TEXT,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE INDEX entities_stubs ON entities(id) WHERE entity_type IS NULL;

CREATE TABLE observations (
    id        INTEGER PRIMARY KEY,
    entity_id INTEGER NOT NULL REFERENCES entities(id) ON DELETE CASCADE,
    content   TEXT NOT NULL,
    UNIQUE (entity_id, content)
);

CREATE TABLE relations (
    id            INTEGER PRIMARY KEY,
    from_id       INTEGER NOT NULL REFERENCES entities(id) ON DELETE CASCADE,
    to_id         INTEGER NOT NULL REFERENCES entities(id) ON DELETE CASCADE,
    relation_type TEXT NOT NULL,
    UNIQUE (from_id, to_id, relation_type)
);
-- from_id is covered by the UNIQUE index; cascades and lookups by target need this one.
CREATE INDEX relations_to ON relations(to_id);

-- Ranked word search; rowid = entities.id, maintained by memesh.store.graph.
CREATE VIRTUAL TABLE entity_fts USING fts5(
    name, entity_type, observations,
    tokenize = 'porter unicode61 remove_diacritics 2'
);
"""


def fold_case(text: str | None) -> str | None:
    """Case-fold text for substring search, as the reference server lower-cases both sides."""
    return None if text is None else text.lower()


_OBSERVATIONS_TEXT = "(SELECT group_concat(content, char(10)) FROM observations WHERE entity_id = e.id)"
# What each search index holds for an entity (rowid = entities.id): (columns, values).
# The trigram index stores one case-folded text so that GLOB on it is a Unicode-aware,
# case-insensitive substring match that the index can answer.
SEARCH_INDEXES = {
    "entity_fts": ("name, entity_type, observations",
                   f"e.name, e.entity_type, {_OBSERVATIONS_TEXT}"),
    "entity_trigram": ("text", "memesh_fold(e.name || char(10) || e.entity_type || char(10) || "
                               f"coalesce({_OBSERVATIONS_TEXT}, ''))"),
}


def search_index_insert(table: str, where: str) -> str:
    """SQL that (re)fills ``table`` for the real entities (not stubs) selected by ``where``."""
    columns, values = SEARCH_INDEXES[table]
    return (f"INSERT INTO {table}(rowid, {columns}) SELECT e.id, {values} FROM entities e "
            f"WHERE e.entity_type IS NOT NULL AND ({where})")


def _add_trigram_index(conn: sqlite3.Connection) -> None:
    """Add the substring index (SQLite >= 3.34); older libraries fall back to a scan."""
    try:
        # detail=none: a third of the build time of detail=full; GLOB re-checks each row.
        # case_sensitive: the text is folded already, by memesh_fold.
        conn.execute("CREATE VIRTUAL TABLE entity_trigram USING fts5("
                     "text, tokenize = 'trigram case_sensitive 1', detail = none)")
    except sqlite3.OperationalError as exc:
        logger.warning("SQLite %s has no trigram tokenizer (%s): substring search will scan",
                       sqlite3.sqlite_version, exc)
        return
    conn.execute(search_index_insert("entity_trigram", "1"))


# Memories (memesh.store.memory). A memory belongs to one project (a normalised directory
# path; "" = no project); identical content within a project is one row, found through
# its hash. memory_fts (rowid = memories.id) is maintained by memesh.store.memory.
_SCHEMA_V3_MEMORY = """
CREATE TABLE memories (
    id           INTEGER PRIMARY KEY,
    project      TEXT NOT NULL,
    content      TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    kind         TEXT NOT NULL,
    importance   REAL,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    UNIQUE (project, content_hash)
);
CREATE INDEX memories_project_recent ON memories(project, updated_at, id);
CREATE INDEX memories_recent ON memories(updated_at, id);

CREATE TABLE memory_tags (
    memory_id INTEGER NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
    tag       TEXT NOT NULL,
    PRIMARY KEY (memory_id, tag)
) WITHOUT ROWID;
CREATE INDEX memory_tags_tag ON memory_tags(tag);

CREATE VIRTUAL TABLE memory_fts USING fts5(
    content, tags,
    tokenize = 'porter unicode61 remove_diacritics 2'
);
"""

# Change events recorded by every writer for the other processes on this file
# (memesh.store.changes); origin names the writing Database object.
_SCHEMA_V4_CHANGES = """
CREATE TABLE changes (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    topic   TEXT NOT NULL,
    project TEXT,
    origin  TEXT NOT NULL
);
"""


def _rekey_projects_by_remote(conn: sqlite3.Connection) -> None:
    """Memories of a git work tree with a network remote move to the remote's key.

    Projects used to be keyed by directory alone; now a repository is one project
    wherever it is checked out (memesh.store.project). A memory whose text the remote's
    project holds already stays where it was (still found with all_projects).
    """
    from memesh.store.project import git_remote_url, has_git_entry, normalise_remote

    for (path,) in conn.execute("SELECT DISTINCT project FROM memories WHERE project LIKE '/%'").fetchall():
        key = normalise_remote(git_remote_url(path)) if has_git_entry(path) else None
        if key:
            conn.execute("UPDATE OR IGNORE memories SET project = ? WHERE project = ?", (key, path))
            logger.info("memories of %s are now kept under its git remote %s", path, key)


def _record_origins(conn: sqlite3.Connection) -> None:
    """Every entity, observation and memory records who wrote it and when, as on PostgreSQL.

    A SQLite store had one writer, its owner, so rows written before this step are stamped
    with the (user, host) migrating it: the same facts PostgreSQL holds, and an origin
    filter is then the same plain column comparison on both backends. Stubs (names only
    used by relations) keep no origin, as there. An observation's time was not kept
    before: it takes its entity's creation time, the earliest it can have been written.
    """
    for table, columns in (("entities", ("origin_user", "origin_host")),
                           ("observations", ("created_at", "origin_user", "origin_host")),
                           ("memories", ("origin_user", "origin_host"))):
        for column in columns:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {'REAL' if column == 'created_at' else 'TEXT'}")
    user, host = default_origin()
    conn.execute("UPDATE entities SET origin_user = ?, origin_host = ? WHERE entity_type IS NOT NULL", (user, host))
    conn.execute("UPDATE observations SET origin_user = ?, origin_host = ?, created_at = "
                 "(SELECT created_at FROM entities WHERE id = observations.entity_id)", (user, host))
    conn.execute("UPDATE memories SET origin_user = ?, origin_host = ?", (user, host))


MIGRATIONS: list[tuple[int, MigrationStep]] = [
    (1, _SCHEMA_V1),
    (2, _add_trigram_index),
    (3, _SCHEMA_V3_MEMORY),
    (4, _SCHEMA_V4_CHANGES),
    (5, _SCHEMA_V5_A2A),
    (6, _rekey_projects_by_remote),
    (7, _record_origins),
]


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the database's page limit) is full."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return (code or 0) & 0xFF == sqlite3.SQLITE_FULL or "database or disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


def _statements(sql: str) -> Iterator[str]:
    """Split SQL text into statements (``executescript`` would commit our transaction)."""
    buffer = ""
    for piece in sql.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                yield buffer
            buffer = ""
    if buffer.strip(" \t\r\n;"):
        raise ValueError(f"incomplete SQL statement in migration: {buffer.strip()[:80]!r}")


def _check_registry(migrations: list[tuple[int, MigrationStep]]) -> int:
    versions = [version for version, _ in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must be 1, 2, 3, … in order; got {versions}")
    return len(versions)


def _tighten_mode(path: str) -> None:
    """Make a file we own private, whatever the umask was when it was created."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if st.st_uid == os.getuid() and st.st_mode & 0o777 != FILE_MODE:
        os.chmod(path, FILE_MODE)


class Database:
    """The memesh database file, shared by all threads of a process.

    ``Database(path)`` creates the file if needed (0600), switches it to WAL and runs
    pending migrations. Use :meth:`write` / :meth:`read` for transactions; both yield this
    thread's connection.
    """

    def __init__(self, path: str | os.PathLike[str],
                 migrations: list[tuple[int, MigrationStep]] | None = None, *,
                 writer: tuple[str, str] | None = None) -> None:
        """``writer``: the (user, host) this object's writes record (memesh.store.origin);
        by default this process's login name and host name."""
        self.path = os.fspath(Path(path))
        self.origin = uuid.uuid4().hex   # tags the change events this object's writes record
        self.writer = writer or default_origin()
        self._migrations = MIGRATIONS if migrations is None else migrations
        self._latest = _check_registry(self._migrations)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._registry_lock = threading.Lock()
        self._connections: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._closed = False
        self._create_file()
        try:
            self._migrate(self.connection())
            # Whether writes record change events for other processes (memesh.store.changes);
            # only a test's own migration list leaves the table out.
            self.records_changes = self.connection().execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'changes'").fetchone() is not None
        except BaseException:
            self.close()
            raise
        for suffix in ("", "-wal", "-shm"):
            _tighten_mode(self.path + suffix)

    # -- connections ---------------------------------------------------------------
    def _create_file(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            return
        try:
            os.fchmod(fd, FILE_MODE)  # the umask may have removed bits we asked for
        finally:
            os.close(fd)

    def connection(self) -> sqlite3.Connection:
        """Return this thread's connection, opening it on first use."""
        if self._closed:
            raise MemeshError(f"the database {self.path} is closed; open a new Database")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open_connection()
            self._local.conn = conn
        return conn

    def _open_connection(self) -> sqlite3.Connection:
        # check_same_thread=False only so close() may close other threads' connections;
        # each connection is otherwise used by its own thread alone.
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL stays consistent after a crash; only the last commits
            # before a power loss can be lost, and commits avoid an fsync each.
            conn.execute("PRAGMA synchronous = NORMAL")
            # A large import grows the WAL to its size; truncate it after checkpoints.
            conn.execute("PRAGMA journal_size_limit = 67108864")
            conn.create_function("memesh_fold", 1, fold_case, deterministic=True)
        except BaseException:
            conn.close()
            raise
        with self._registry_lock:
            self._close_dead_threads_connections()
            self._connections.append((threading.current_thread(), conn))
        return conn

    def _close_dead_threads_connections(self) -> None:
        # The daemon runs a thread per client connection; without this, every client
        # that ever connected would leave an open SQLite connection behind.
        alive = []
        for thread, conn in self._connections:
            if thread.is_alive():
                alive.append((thread, conn))
            else:
                conn.close()
        self._connections = alive

    def release_thread(self) -> None:
        """Close the calling thread's connection now (a thread that is about to end).

        The daemon calls this when a client's connection thread finishes, so a client
        that vanished holds no SQLite connection or file descriptors afterwards.
        """
        conn = getattr(self._local, "conn", None)
        if conn is None:
            return
        self._local.conn = None
        with self._registry_lock:
            self._connections = [(t, c) for t, c in self._connections if c is not conn]
        conn.close()

    def close(self) -> None:
        """Close every connection this object opened, in all threads. Idempotent.

        Call it only once no thread uses the database any more (at shutdown).
        """
        with self._registry_lock:
            self._closed = True
            for _, conn in self._connections:
                conn.close()
            self._connections = []

    # -- transactions --------------------------------------------------------------
    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): committed on success, else rolled back."""
        conn = self.connection()
        if conn.in_transaction:
            if getattr(self._local, "mode", None) != "write":
                raise MemeshError("a write was started inside a read transaction (a bug in memesh)")
            yield conn  # nested in our own write: part of the outer transaction
            return
        if not self._write_lock.acquire(timeout=BUSY_TIMEOUT_S):
            raise MemeshError(f"another thread held the write lock on {self.path} for "
                              f"{BUSY_TIMEOUT_S:g} s; try again")
        try:
            self._begin(conn, "BEGIN IMMEDIATE")
            self._local.mode = "write"
            try:
                yield conn
                conn.commit()
            except BaseException as exc:
                self._rollback(conn)  # also when COMMIT itself failed: never leave it open
                if is_disk_full(exc):
                    raise DiskFull(
                        f"the disk holding {os.path.dirname(self.path) or '.'} is full ({exc}); nothing was "
                        f"written. Free some space there: memesh resumes writing by itself, reads go on "
                        f"working meanwhile") from exc
                raise
            finally:
                self._local.mode = None
        finally:
            self._write_lock.release()

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        try:
            conn.rollback()
        except sqlite3.Error as exc:   # SQLite may have rolled back already (e.g. after SQLITE_FULL)
            logger.debug("rollback after a failed write: %s", exc)

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: one consistent snapshot for every statement inside."""
        conn = self.connection()
        if conn.in_transaction:
            yield conn  # nested: the outer transaction already gives a snapshot
            return
        self._begin(conn, "BEGIN")
        self._local.mode = "read"
        try:
            yield conn
        finally:
            self._local.mode = None
            conn.rollback()  # a read has nothing to commit; this ends the snapshot

    def _begin(self, conn: sqlite3.Connection, statement: str) -> None:
        try:
            conn.execute(statement)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise MemeshError(
                    f"{self.path} stayed locked by another process for {BUSY_TIMEOUT_S:g} s "
                    f"({exc}); try again, or find the process holding it") from exc
            raise

    # -- migrations ----------------------------------------------------------------
    @property
    def user_version(self) -> int:
        """The schema version recorded in the file."""
        return self.connection().execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self, conn: sqlite3.Connection) -> None:
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current > self._latest:
            raise MemeshError(
                f"{self.path} has schema version {current}, newer than this memesh "
                f"understands ({self._latest}); upgrade memesh")
        for version, step in self._migrations:
            if version <= current:
                continue
            with self.write():
                # Re-read under the write lock: another process may have migrated meanwhile.
                current = conn.execute("PRAGMA user_version").fetchone()[0]
                if version <= current:
                    continue
                if callable(step):
                    step(conn)
                else:
                    for statement in _statements(step):
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {int(version)}")
            logger.info("migrated %s to schema version %d", self.path, version)
            current = version
