"""Who wrote what: the origin (user, host) recorded with every write, and origin filters.

Every entity, observation and memory records the login name and host name of the
process that wrote it, and when, on both backends: a team's PostgreSQL is written by many
people and machines, and a SQLite store may hold what others wrote once it was copied
from one (``memesh storage copy``). ``search_nodes``, ``recall`` and ``list_memories``
accept ``origin: {"user"?, "host"?}`` to keep only what one user or one machine wrote
(for ``search_nodes``: the entities they created). Forgetting a memory someone else
wrote is allowed and logged.
"""
from __future__ import annotations

import getpass
import socket
import logging
from collections.abc import Iterable
from typing import Any

from memesh.errors import ValidationError

MAX_ORIGIN_CHARS = 255
KEYS = ("user", "host")


def default_origin() -> tuple[str, str]:
    """Who this process writes as: (login name, host name)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return user, socket.gethostname()


def check_origin(value: Any) -> dict[str, str]:
    """A validated origin filter (``{}`` for none); ValidationError names the bad field."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"origin: expected an object with user and/or host, got {type(value).__name__}")
    unknown = sorted(set(value) - set(KEYS))
    if unknown:
        raise ValidationError(f"origin: unknown key(s) {unknown}; use user and/or host")
    checked = {}
    for key in KEYS:
        text = value.get(key)
        if text is None:
            continue
        if not isinstance(text, str) or not text or len(text) > MAX_ORIGIN_CHARS or "\x00" in text:
            raise ValidationError(f"origin.{key}: expected a non-empty name of at most {MAX_ORIGIN_CHARS} characters")
        checked[key] = text
    return checked


def foreign_deletions(me: tuple[str, str], rows: Iterable[tuple[int, str | None, str | None, str]]
                      ) -> list[tuple[int, str, str]]:
    """``(id, user, host)`` of the deleted memories ``rows`` (id, origin_user, origin_host, project)
    that someone other than ``me`` wrote; memories without a recorded origin are not counted."""
    return [(memory_id, user, host) for memory_id, user, host, _ in rows
            if user is not None and (user, host) != tuple(me)]


def log_foreign_deletions(log: logging.Logger, me: tuple[str, str],
                          rows: Iterable[tuple[int, str | None, str | None, str]]) -> None:
    """Warn, naming both, for each deleted memory of ``rows`` that someone other than ``me`` wrote."""
    for memory_id, user, host in foreign_deletions(me, rows):
        log.warning("%s@%s forgot memory %d written by %s@%s", me[0], me[1], memory_id, user, host)
