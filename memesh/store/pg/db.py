"""A PostgreSQL database as memesh storage: the pool, transactions, migrations, change notices.

This module owns the connection to a team's PostgreSQL server (``storage.url``).

Connections
-----------
A ``psycopg_pool.ConnectionPool`` shared by every thread of the process. A pooled
connection that the server dropped (a restart) fails its first statement; the call is
then run once more on a fresh connection, since nothing of it was committed. The pool opens in the background: a daemon starts while the server
is down and works once it is up. Every failure to reach the server becomes
:class:`~memesh.errors.StorageUnavailable`, whose message names the server and what to
check; the pool keeps reconnecting by itself (with backoff).

Transactions
------------
:meth:`PgDatabase.write` runs a function in one READ COMMITTED transaction and retries
the whole function (with a short backoff) when PostgreSQL reports a serialization
failure or a deadlock, so every multi-statement write is atomic and none is lost to a
race with another daemon. It returns only after COMMIT succeeded: what a tool
acknowledges is stored. :meth:`PgDatabase.read` runs a function in a REPEATABLE READ,
READ ONLY transaction: one snapshot for all its statements.

Migrations
----------
:data:`memesh.store.pg.schema.MIGRATIONS` is an ordered list of ``(version, step)``. They run
on the first successful connection, each in its own transaction holding a
transaction-scoped advisory lock, so several daemons starting at once migrate the
database exactly once; the version is kept in ``memesh_schema``.

Change notices
--------------
A store writes through :meth:`PgDatabase.tracked_write`: each change it reports is sent
with ``pg_notify('memesh_changes', <JSON: topic, project, instance>)`` inside the
transaction, so every listener gets it when (and only if) the transaction commits, and
is passed to the store's ``on_change`` hook after the commit (the contract of
:mod:`memesh.store.changes`). :class:`memesh.store.pg.listen.ChangeListener` turns
notices from other daemons into local events.
"""
from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from memesh.errors import MemeshError, StorageUnavailable, ValidationError
from memesh.store.changes import Change, OnChange, notify
from memesh.store.origin import default_origin
from memesh.store.url import server_name

logger = logging.getLogger(__name__)

T = TypeVar("T")

CHANNEL = "memesh_changes"
CONNECT_TIMEOUT_S = 5       # one connection attempt; an unreachable host fails this fast
POOL_WAIT_S = 5.0           # a call waits this long for a connection before it reports the outage
AWAY_WAIT_S = 0.5           # ... and this long while the server is known to be away (the pool reconnects meanwhile)
REASON_FOR_S = 10.0         # how long the reason found for an outage is given without asking the server again
POOL_MAX_SIZE = 8           # per daemon; a team server serves many daemons
WRITE_ATTEMPTS = 8          # serialization failures and deadlocks are retried this often
_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected
# No answer from the server (None: the connection broke or the pool waited in vain),
# admin/crash shutdown, cannot connect now, and the connection_exception class.
_GONE_SQLSTATES = {None, "57P01", "57P02", "57P03", "08000", "08003", "08006", "08001", "08004"}
_MIGRATION_LOCK = 0x6D656D65  # "meme": the advisory lock key of schema migrations


class Deferred:
    """A result still to be fetched: a read returns it so that COMMIT travels with its queries."""

    def __init__(self, fetch: Callable[[], Any]) -> None:
        self.fetch = fetch


class PgDatabase:
    """A PostgreSQL database holding memesh's tables; thread-safe, shared by all threads.

    ``PgDatabase(url)`` starts opening the pool and returns at once; migrations run on
    the first call that reaches the server (:meth:`ensure_ready`).
    """

    def __init__(self, url: str, *, password: str | None = None, origin: tuple[str, str] | None = None,
                 max_size: int = POOL_MAX_SIZE, migrations: list | None = None) -> None:
        from psycopg_pool import ConnectionPool

        from memesh.store.pg.schema import MIGRATIONS

        self.url = url
        self.server = server_name(url)
        self.origin = origin or default_origin()
        self.instance = uuid.uuid4().hex[:12]  # tells this process's change notices from others'
        self._migrations = MIGRATIONS if migrations is None else migrations
        self._ready = False
        self._ready_lock = threading.Lock()
        self.has_trigram = False
        kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S,
                                  "application_name": "memesh"}
        if password is not None:
            kwargs["password"] = password
        self._connect_kwargs = kwargs
        self._last_error: str | None = None
        self._outages = 0   # calls that found the server unreachable (ensure_ready's waiters share the news)
        self._last_outage: StorageUnavailable | None = None
        self._reason_at = 0.0   # time.monotonic() when _last_outage's reason was found
        self.pool = ConnectionPool(url, kwargs=kwargs, min_size=1, max_size=max_size, open=False,
                                   timeout=POOL_WAIT_S,
                                   reconnect_timeout=float("inf"), name="memesh")
        self.pool.open(wait=False)

    def __repr__(self) -> str:
        return f"<memesh PgDatabase {self.server}>"

    @property
    def path(self) -> str:  # what SQLite's Database calls its location, for messages
        return f"postgresql {self.server}"

    def close(self) -> None:
        """Close every connection. Idempotent."""
        self.pool.close()

    def release_thread(self) -> None:
        """Nothing to release: connections belong to the pool, not to threads."""

    # -- errors ------------------------------------------------------------------------
    def unavailable(self, exc: BaseException) -> StorageUnavailable:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return StorageUnavailable(
            f"the PostgreSQL server {self.server} is unavailable ({reason}); check that it is running and "
            f"reachable from this machine and that storage.url is right; memesh reconnects by itself")

    def _why_no_connection(self, exc: BaseException) -> BaseException:
        """The pool only says that it waited in vain; one direct attempt says why (refused, bad password)."""
        from psycopg_pool import PoolTimeout

        if not isinstance(exc, PoolTimeout):
            return exc
        import psycopg

        try:
            psycopg.connect(self.url, **self._connect_kwargs).close()
        except psycopg.OperationalError as reason:
            return reason
        return exc

    def connect(self, **extra: Any):
        """A new connection outside the pool (for LISTEN); raises StorageUnavailable."""
        import psycopg

        try:
            return psycopg.connect(self.url, **{**self._connect_kwargs, **extra})
        except psycopg.OperationalError as exc:
            raise self.unavailable(exc) from None

    # -- readiness and migrations --------------------------------------------------------
    def ensure_ready(self) -> None:
        """Migrate the schema once the server is reachable (idempotent; cheap once done)."""
        if self._ready:
            return
        outages = self._outages
        with self._ready_lock:
            if self._ready:
                return
            if self._outages != outages and self._last_outage is not None:
                # The call that held the lock has just found the server unreachable: answer
                # with that instead of waiting for a connection all over again.
                raise StorageUnavailable(str(self._last_outage))
            for version, step in self._migrations:
                self._run(lambda cur, v=version, s=step: self._migrate_one(cur, v, s), retry=True, pipeline=False)
            self.has_trigram = self._run(lambda cur: cur.execute(
                "SELECT 1 FROM pg_indexes WHERE indexname = 'entities_folded_trgm' AND schemaname = current_schema()").fetchone() is not None, retry=True)
            self._ready = True

    def _migrate_one(self, cur: Any, version: int, step: Callable[[Any], None] | str) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        # Checked first: a role without CREATE on the schema (docs/team.md) fails even on IF NOT EXISTS.
        # In the schema memesh creates its tables in (the first usable one of the search path),
        # not wherever the path would find a table of that name.
        if cur.execute("SELECT to_regclass(quote_ident(current_schema()) || '.memesh_schema')").fetchone()[0] is None:
            cur.execute("CREATE TABLE memesh_schema (version integer NOT NULL)")
        row = cur.execute("SELECT max(version) FROM memesh_schema").fetchone()
        current = row[0] or 0
        latest = len(self._migrations)
        if current > latest:
            raise MemeshError(f"the database {self.server} has memesh schema version {current}, newer than "
                              f"this memesh understands ({latest}); upgrade memesh")
        if version <= current:
            return
        if callable(step):
            step(cur)
        else:
            cur.execute(step)
        cur.execute("INSERT INTO memesh_schema(version) VALUES (%s)", (version,))
        logger.info("migrated %s to memesh schema version %d", self.server, version)

    @property
    def available(self) -> bool:
        """False after a call failed to reach the server, until one succeeds again."""
        return self._last_error is None

    @property
    def user_version(self) -> int:
        return self.read(lambda cur: cur.execute("SELECT coalesce(max(version), 0) FROM memesh_schema").fetchone()[0])

    # -- transactions --------------------------------------------------------------------
    def write(self, fn: Callable[[Any], T], *, bulk: bool = False) -> T:
        """``fn(cursor)`` in one transaction, retried on serialization failures; its result.

        ``bulk``: ``fn`` uses COPY (which pipeline mode does not allow).
        """
        self.ensure_ready()
        return self._run(fn, retry=True, pipeline=not bulk)

    def read(self, fn: Callable[[Any], T]) -> T:
        """``fn(cursor)`` in one read-only snapshot; its result."""
        self.ensure_ready()
        return self._run(fn, retry=False, begin="BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def _run(self, fn: Callable[[Any], T], *, retry: bool, begin: str = "BEGIN", pipeline: bool = True) -> T:
        import psycopg

        attempt = 0
        while True:
            attempt += 1
            stage = "connect"
            # While the server is known to be away, a call only briefly waits for the pool's
            # own reconnection, so that every tool call of an outage does not cost seconds.
            wait = POOL_WAIT_S if self._last_error is None else AWAY_WAIT_S
            try:
                with self.pool.connection(timeout=wait) as conn:
                    stage = "work"
                    with conn.cursor() as cur:
                        try:
                            # Pipeline mode sends BEGIN with the first query instead of waiting
                            # for it: one round trip less per call. (COPY cannot run in it.)
                            with conn.pipeline() if pipeline else contextlib.nullcontext():
                                cur.execute(begin)
                                result = fn(cur)
                                stage = "commit"
                                cur.execute("COMMIT")
                                if isinstance(result, Deferred):  # its answers arrive with COMMIT's
                                    result = result.fetch()
                        except BaseException:
                            if conn.info.transaction_status in (psycopg.pq.TransactionStatus.INTRANS,
                                                                psycopg.pq.TransactionStatus.INERROR):
                                try:
                                    conn.execute("ROLLBACK")
                                except psycopg.Error:
                                    pass
                            raise
                self._last_error = None
                return result
            except psycopg.DataError as exc:
                if "NUL" in str(exc):
                    raise ValidationError("text contains a NUL character (\\x00), which PostgreSQL cannot store; "
                                          "remove it and try again") from None
                raise
            except psycopg.errors.Error as exc:
                if exc.sqlstate in _RETRY_SQLSTATES and retry and attempt < WRITE_ATTEMPTS:
                    time.sleep(random.uniform(0, 0.005 * 2 ** attempt))
                    continue
                if isinstance(exc, psycopg.OperationalError) and exc.sqlstate in _GONE_SQLSTATES:
                    # A pooled connection that the server dropped (a restart): nothing was
                    # committed unless COMMIT itself was under way, so try once more afresh.
                    if stage == "work" and attempt == 1:
                        continue
                    # During an outage the reason found lately stands for a while: asking the
                    # server why can take connect_timeout, and every call would pay it.
                    known = self._last_outage if self._last_error is not None else None
                    self._last_error = str(exc)
                    if known is not None and time.monotonic() - self._reason_at < REASON_FOR_S:
                        outage = self._last_outage = StorageUnavailable(str(known))
                    else:
                        outage = self._last_outage = self.unavailable(self._why_no_connection(exc))
                        self._reason_at = time.monotonic()
                    self._outages += 1
                    raise outage from None
                raise

    def tracked_write(self, fn: Callable[[Any, Callable[[Change], None]], T], on_change: OnChange | None,
                      *, bulk: bool = False) -> T:
        """:meth:`write` for a store: ``fn(cursor, changed)`` calls ``changed(Change(...))`` for
        what it changed. Each change is announced to every daemon on this database at commit
        (NOTIFY), and to ``on_change`` in this process after commit (memesh.store.changes)."""
        changes: list[Change] = []

        def attempt(cur: Any) -> T:
            changes.clear()  # a retried transaction starts over

            def changed(change: Change) -> None:
                if change not in changes:
                    changes.append(change)
                    cur.execute("SELECT pg_notify(%s, %s)", (CHANNEL, encode_notice(change, self.instance)))

            return fn(cur, changed)

        result = self.write(attempt, bulk=bulk)
        notify(on_change, changes)
        return result


def encode_notice(change: Change, instance: str) -> str:
    """The NOTIFY payload of a change (JSON: topic, project, writing instance)."""
    return json.dumps({"t": change.topic, "p": change.project, "i": instance}, separators=(",", ":"))


def decode_notice(payload: str) -> tuple[Change, str] | None:
    """``(change, instance)`` from a payload, or None if it is not one of ours."""
    try:
        data = json.loads(payload)
        if isinstance(data.get("t"), str) and isinstance(data.get("i"), str) and \
                (data.get("p") is None or isinstance(data["p"], str)):
            return Change(data["t"], data.get("p")), data["i"]
    except (ValueError, AttributeError):
        pass
    return None
