"""The storage URL (setting ``storage.url``): which backend holds the graph and the memories.

Pure functions of strings, so they are cheap to import and Hypothesis-testable.

Accepted forms::

    sqlite:                       the memesh.db file in MEMESH_HOME (the default)
    sqlite:/abs/path/to/file.db   another SQLite file
    postgresql://user[:password]@host[:port]/dbname[?param=value&...]
    postgres://...                (the same; libpq accepts both spellings)

A PostgreSQL URL is handed to libpq unchanged, so every libpq parameter works
(``sslmode``, ``sslrootcert``, ``host=/run/postgresql`` for a Unix socket, ...), and so
do libpq's own password sources: the URL, ``PGPASSWORD``, ``~/.pgpass``. memesh adds
``storage.password_file``. A password never leaves this process in anything memesh
prints or logs: :func:`redact` is applied to every URL that is shown.
"""
from __future__ import annotations

import dataclasses
import re
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
_PG_SCHEMES = ("postgresql", "postgres")
_SECRET_PARAMS = {"password", "sslpassword"}
_HIDDEN = "***"


@dataclasses.dataclass(frozen=True)
class StorageUrl:
    """A parsed storage URL. ``path`` for SQLite (None: the home's memesh.db); ``url`` for PostgreSQL."""

    kind: str
    path: str | None = None
    url: str | None = None

    @property
    def is_postgresql(self) -> bool:
        return self.kind == POSTGRESQL


def parse_storage_url(text: object) -> StorageUrl:
    """Parse a storage URL; ValueError says what is allowed."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("expected 'sqlite:' or a 'postgresql://...' URL")
    value = text.strip()
    scheme = value.split(":", 1)[0].lower()
    if scheme == SQLITE:
        path = value[len("sqlite:"):]
        if path.startswith("//"):
            path = path[2:]
        if path and not path.startswith("/"):
            raise ValueError("a SQLite path must be absolute ('sqlite:/path/to/memesh.db'), or empty for the home's database")
        return StorageUrl(SQLITE, path=path or None)
    if scheme in _PG_SCHEMES and value[len(scheme):].startswith("://"):
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise ValueError(f"not a valid PostgreSQL URL ({exc})") from None
        return StorageUrl(POSTGRESQL, url=value)
    raise ValueError("expected 'sqlite:', 'sqlite:/absolute/file.db' or 'postgresql://user@host/dbname'")


def redact(text: str) -> str:
    """``text`` with any password in a PostgreSQL URL replaced by ``***`` (other URLs unchanged)."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return re.sub(r"(?i)(password=)[^&\s]*", r"\1" + _HIDDEN, text)
    if parts.scheme.lower() not in _PG_SCHEMES:
        return text
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hostinfo = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":" + _HIDDEN
        netloc = f"{userinfo}@{hostinfo}"
    query = parts.query
    if query:
        pairs = [(k, _HIDDEN if k.lower() in _SECRET_PARAMS else v) for k, v in parse_qsl(query, keep_blank_values=True)]
        query = urlencode(pairs, safe="/*", quote_via=quote)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def server_name(url: str) -> str:
    """Where a PostgreSQL URL points, for error messages: ``host:port/dbname`` (no user, no secret)."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    host = parts.hostname or params.get("host") or "localhost (default socket)"
    port = parts.port or params.get("port") or 5432
    database = parts.path.lstrip("/") or params.get("dbname") or "(default database)"
    return f"{host}:{port}/{database}"


def describe(storage: StorageUrl, default_path: str) -> str:
    """One line naming the storage in use, without secrets (for status and config show)."""
    if storage.is_postgresql:
        return f"postgresql {redact(storage.url or '')}"
    return f"sqlite {storage.path or default_path}"
