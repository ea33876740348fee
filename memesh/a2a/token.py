"""The front door's bearer token: ``a2a.token`` in MEMESH_HOME (0600).

Created once, on the first daemon start that serves A2A, and kept across restarts and
upgrades, so agents configured with it keep working. Delete the file (and restart the
daemon) to issue a new one. ``memesh a2a token`` prints it.
"""
from __future__ import annotations

import os
import pathlib
import secrets

from memesh.errors import MemeshError

FILE_NAME = "a2a.token"
TOKEN_BYTES = 32


def token_path(home: pathlib.Path) -> pathlib.Path:
    return pathlib.Path(home) / FILE_NAME


def read_token(home: pathlib.Path) -> str | None:
    try:
        text = token_path(home).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise MemeshError(f"cannot read the A2A token {token_path(home)}: {exc}; delete it to get a new one") from None
    return text or None


def ensure_token(home: pathlib.Path) -> str:
    """The token, creating the file (0600, exclusively) if there is none yet."""
    existing = read_token(home)
    if existing:
        return existing
    path = token_path(home)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:   # another process made it first: use theirs
        existing = read_token(home)
        if existing:
            return existing
        path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (token + "\n").encode("ascii"))
    finally:
        os.close(fd)
    return token
