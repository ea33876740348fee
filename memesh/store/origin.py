"""Who wrote what: the origin (user, host) recorded with every write, and origin filters.

PostgreSQL storage is shared by many people and machines, so each entity, observation and
memory there records the login name and host name of the daemon that wrote it, and
``search_nodes``, ``recall`` and ``list_memories`` accept ``origin: {"user"?, "host"?}``
to keep only what one user or one machine wrote. A SQLite store belongs to one user on
one machine: everything in it counts as written by this process's (user, host), so a
filter naming them keeps everything and any other filter keeps nothing.
"""
from __future__ import annotations

import getpass
import socket
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


def matches(origin_filter: dict[str, str], origin: tuple[str, str]) -> bool:
    """Whether something written by ``origin`` passes ``origin_filter`` (from :func:`check_origin`)."""
    return all(origin_filter[key] == value for key, value in zip(KEYS, origin) if key in origin_filter)
