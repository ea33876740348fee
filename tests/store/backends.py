"""Helpers for store tests that run against both backends (the ``backend`` fixture in the root conftest)."""
from __future__ import annotations

import sqlite3

from memesh.store.storage import open_storage


def open_backend(url: str, tmp_path, **kwargs):
    """The :class:`~memesh.store.storage.Storage` at ``url`` (``sqlite:`` → a file in ``tmp_path``)."""
    return open_storage(url, tmp_path / "memesh.db", **kwargs)


def run_sql(url: str, query: str, *params) -> list[tuple]:
    """Rows of a plain SQL query (written for both: ``?`` placeholders) straight from the storage."""
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(url[len("sqlite:"):])
        try:
            return conn.execute(query, params).fetchall()
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url) as conn:
        return [tuple(row) for row in conn.execute(query.replace("?", "%s"), params).fetchall()]
