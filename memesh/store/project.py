"""Which project a window works in: the scope that its memories belong to.

A project is named by its git remote when it has one, so that the same repository is the
same project on every machine and at every path (memories shared through PostgreSQL
follow it); otherwise by a normalised absolute directory path. The rule, as a pure
function of its inputs (:func:`project_for`, given a predicate that says whether a
directory is the top of a git work tree, and a function giving a work tree's remote URL):

1. the *base* is the first ``file://`` root the client declared, else the window's cwd;
2. the work tree is the nearest directory at or above the base that is a git work tree
   (it holds a ``.git`` directory, or a ``.git`` file as worktrees and submodules do);
3. if that work tree has a network remote (``origin``, else the first one in its config;
   its host name has a dot, so that a key never looks like a relative path),
   the project is that remote's URL normalised by :func:`normalise_remote`
   (``git@github.com:Org/Repo.git`` and ``https://github.com/Org/Repo`` are both
   ``github.com/Org/Repo``);
4. otherwise the project is the work tree's path, or the base itself outside any.

A remote key never starts with ``/``, a path always does. SQLite stores made before
remotes counted are re-keyed once by a migration (:mod:`memesh.store.db`).

Normalising means: absolute, ``.``/``..`` and repeated or trailing slashes removed.
Symbolic links are *not* resolved (that would need the filesystem), so two spellings of
one directory through a link are two projects.
"""
from __future__ import annotations

import configparser
import os
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import unquote, urlsplit

from memesh.errors import ValidationError

MAX_PATH_CHARS = 4096  # PATH_MAX on Linux; a longer "directory" is not one

WorkTreePredicate = Callable[[str], bool]
RemoteOf = Callable[[str], "str | None"]

MAX_REMOTE_CHARS = 1024
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>(?!//).+)$")  # user@host:path
# host (with a dot: a relative path never looks like one) / path segments
_REMOTE_KEY = re.compile(r"^[a-z0-9][a-z0-9\-]*(\.[a-z0-9\-]+)+(/[^/\x00]+)+$")


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


def normalise_remote(url: str | None) -> str | None:
    """A git remote URL as a project key: ``host/path`` without user, port, scheme, ``.git`` or
    trailing slashes; the host lower-cased. None for a local (path or ``file://``) remote."""
    if not isinstance(url, str):
        return None
    text = url.strip()
    if not text or len(text) > MAX_REMOTE_CHARS or "\x00" in text:
        return None
    if "://" in text:
        try:
            parts = urlsplit(text)
            host = parts.hostname
        except ValueError:
            return None
        if parts.scheme.lower() == "file" or not host:
            return None
        path = unquote(parts.path)
    elif (match := _SCP_LIKE.match(text)) and not text.startswith(("/", ".", "~")):
        host, path = match.group("host"), match.group("path")
    else:
        return None  # a local path
    segments = [s for s in path.split("/") if s not in ("", ".", "~")]
    if segments and segments[-1].endswith(".git"):
        segments[-1] = segments[-1][:-4]
    segments = [s for s in segments if s]
    key = f"{host.lower()}/{'/'.join(segments)}"
    return key if segments and ".." not in segments and is_remote_key(key) else None


def is_remote_key(value: str) -> bool:
    """Whether ``value`` has the shape :func:`normalise_remote` gives (host/path)."""
    return isinstance(value, str) and len(value) <= MAX_REMOTE_CHARS and _REMOTE_KEY.match(value) is not None


def git_remote_url(work_tree: str) -> str | None:
    """The URL of ``origin`` (else of the first remote) in the git config of ``work_tree``, or None."""
    entry = os.path.join(work_tree, ".git")
    git_dir = entry
    try:
        if os.path.isfile(entry):  # a worktree or submodule: "gitdir: <path>"
            with open(entry, encoding="utf-8") as fh:
                line = fh.readline().strip()
            if not line.startswith("gitdir:"):
                return None
            git_dir = os.path.join(work_tree, line[len("gitdir:"):].strip())
            common = os.path.join(git_dir, "commondir")
            if os.path.isfile(common):
                with open(common, encoding="utf-8") as fh:
                    git_dir = os.path.join(git_dir, fh.readline().strip())
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.read(os.path.join(git_dir, "config"), encoding="utf-8")
    except (OSError, UnicodeDecodeError, configparser.Error):
        return None
    remotes = [s for s in parser.sections() if s.startswith('remote "') and parser.has_option(s, "url")]
    remotes.sort(key=lambda s: s != 'remote "origin"')
    return parser.get(remotes[0], "url") if remotes else None


def project_for(cwd: str, roots: Sequence[object] | None = None, *,
                is_work_tree: WorkTreePredicate = has_git_entry,
                remote_of: RemoteOf = git_remote_url) -> str:
    """The project of a window in ``cwd`` whose client declared ``roots`` (see the module doc).

    Pure when ``is_work_tree`` and ``remote_of`` are (tests pass a set's ``__contains__``
    and a dict's ``get``); the defaults look for ``.git`` and read its config on disk.
    ``roots`` items are URIs or ``{"uri": ...}`` objects as ``roots/list`` returns them;
    roots that are not local ``file://`` URIs are skipped.
    """
    base = next((p for p in map(root_path, roots or ()) if p is not None), None)
    base = normalise_path(cwd) if base is None else normalise_path(base, "roots")
    tree = next((d for d in ancestors(base) if is_work_tree(d)), None)
    if tree is None:
        return base
    return normalise_remote(remote_of(tree)) or tree
