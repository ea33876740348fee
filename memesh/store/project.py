"""Which project a window works in: the scope that its memories belong to.

A project is named by a normalised absolute directory path. The rule, as a pure function
of its inputs (:func:`project_for`, given a predicate that says whether a directory is
the top of a git work tree):

1. the *base* is the first ``file://`` root the client declared, else the window's cwd;
2. the project is the nearest directory at or above the base that is a git work tree
   (it holds a ``.git`` directory, or a ``.git`` file as worktrees and submodules do);
3. if there is none, the project is the base itself.

Normalising means: absolute, ``.``/``..`` and repeated or trailing slashes removed.
Symbolic links are *not* resolved (that would need the filesystem), so two spellings of
one directory through a link are two projects.
"""
from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import unquote, urlsplit

from memesh.errors import ValidationError

MAX_PATH_CHARS = 4096  # PATH_MAX on Linux; a longer "directory" is not one

WorkTreePredicate = Callable[[str], bool]


def has_git_entry(directory: str) -> bool:
    """Whether ``directory`` holds a ``.git`` entry (the filesystem check used by default)."""
    return os.path.lexists(os.path.join(directory, ".git"))


def normalise_path(path: str, field: str = "cwd") -> str:
    """``path`` made canonical without touching the filesystem; it must be absolute.

    Raises :class:`ValidationError` naming ``field`` when it is not an absolute path.
    """
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValidationError(f"{field}: expected an absolute directory path, got {path!r}")
    if len(path) > MAX_PATH_CHARS or "\x00" in path:
        raise ValidationError(f"{field}: not a usable directory path (too long, or a NUL byte)")
    # POSIX leaves a leading "//" implementation-defined; Linux treats it as "/".
    return "/" + posixpath.normpath(path).lstrip("/")


def root_path(root: object) -> str | None:
    """The local directory of one declared root (a ``file://`` URI, or ``{"uri": ...}``), else None."""
    uri = root.get("uri") if isinstance(root, Mapping) else root
    if not isinstance(uri, str):
        return None
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
        return None
    path = unquote(parts.path)
    return path if path.startswith("/") else None


def ancestors(path: str) -> list[str]:
    """``path`` (normalised) and each directory above it, nearest first, ending at ``/``."""
    chain = [path]
    while (parent := posixpath.dirname(chain[-1])) != chain[-1]:
        chain.append(parent)
    return chain


def project_for(cwd: str, roots: Sequence[object] | None = None, *,
                is_work_tree: WorkTreePredicate = has_git_entry) -> str:
    """The project of a window in ``cwd`` whose client declared ``roots`` (see the module doc).

    Pure when ``is_work_tree`` is (tests pass a set's ``__contains__``); the default
    looks for ``.git`` on disk. ``roots`` items are URIs or ``{"uri": ...}`` objects as
    ``roots/list`` returns them; roots that are not local ``file://`` URIs are skipped.
    """
    base = next((p for p in map(root_path, roots or ()) if p is not None), None)
    base = normalise_path(cwd) if base is None else normalise_path(base, "roots")
    return next((d for d in ancestors(base) if is_work_tree(d)), base)
