"""Every file memesh uses, computed in one place, and the private-directory checks.

Layout of ``$MEMESH_HOME`` (default ``~/.memesh``, mode 0700, owned by the user):

    daemon.lock           JSON record of the running daemon (0600, atomic replace)
    daemon.lifetime.lock  flock held by the daemon for its whole life (never deleted)
    daemon.start.lock     flock held by a client while it starts a daemon (never deleted)
    daemon.sock           the manager's Unix socket (0600)
    daemon.key            the manager authkey, new for every daemon start (0600)
    logs/daemon.log       the daemon's rotating log (0600)
    memesh.db             SQLite database (0600)
    config.yaml           optional settings
    config.cache.json     the settings file as last parsed, with its identity (0600)

AF_UNIX paths are limited (107 bytes on Linux, 103 on macOS); when ``daemon.sock``
would be longer than :data:`MAX_SOCKET_PATH` the socket goes to a short per-user
directory instead, named by a hash of the home so two homes never share it. The real
path is recorded in the lock record's ``socketPath``.
"""
from __future__ import annotations

import os
import pathlib
import stat
from collections import namedtuple

from memesh.errors import UnsafePathError

MAX_SOCKET_PATH = 100


# A plain namedtuple: cheap to define on the proxy's start-up path, where typing.NamedTuple
# (it imports typing and compiles every field's annotation) costs milliseconds.
class Paths(namedtuple("Paths", "home record lifetime_lock start_lock socket key log_dir log db")):
    """Every path of one home, each a ``pathlib.Path`` (the layout above)."""

    __slots__ = ()


def choose_socket_path(home: pathlib.Path, uid: int, runtime_dir: str | None) -> pathlib.Path:
    """Pure: ``home/daemon.sock`` if short enough, else a short per-user, per-home path."""
    preferred = home / "daemon.sock"
    if len(os.fsencode(str(preferred))) <= MAX_SOCKET_PATH:
        return preferred
    import hashlib

    digest = hashlib.sha256(os.fsencode(str(home))).hexdigest()[:16]
    bases = []
    if runtime_dir:
        bases.append(pathlib.Path(runtime_dir) / "memesh")
    import tempfile  # only for long homes; the common path does without it

    bases.append(pathlib.Path(tempfile.gettempdir()) / f"memesh-{uid}")
    bases.append(pathlib.Path("/tmp") / f"memesh-{uid}")
    for base in bases:
        candidate = base / f"{digest}.sock"
        if len(os.fsencode(str(candidate))) <= MAX_SOCKET_PATH:
            return candidate
    raise UnsafePathError(f"no socket path of at most {MAX_SOCKET_PATH} bytes is available for {home}; set MEMESH_HOME to a shorter path")


def paths_for(home: pathlib.Path, environ: dict | None = None) -> Paths:
    environ = os.environ if environ is None else environ
    home = pathlib.Path(home)
    return Paths(
        home=home,
        record=home / "daemon.lock",
        lifetime_lock=home / "daemon.lifetime.lock",
        start_lock=home / "daemon.start.lock",
        socket=choose_socket_path(home, os.getuid(), environ.get("XDG_RUNTIME_DIR")),
        key=home / "daemon.key",
        log_dir=home / "logs",
        log=home / "logs" / "daemon.log",
        db=home / "memesh.db",
    )


def ensure_private_dir(path: pathlib.Path) -> None:
    """Create ``path`` as a 0700 directory, or check that the existing one is safe.

    Safe means: a real directory (not a symlink), owned by us; group/other bits are
    removed if present. Anyone who can reach the socket and read the key can run code in
    the daemon, so this directory is the security boundary.
    """
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(path, 0o700, exist_ok=True)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"{path} must be a directory, not a symlink or file; move it away and retry")
    if st.st_uid != os.getuid():
        raise UnsafePathError(f"{path} is owned by uid {st.st_uid}, not by you (uid {os.getuid()}); use a directory of your own (MEMESH_HOME)")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, 0o700)


def ensure_layout(paths: Paths) -> None:
    """Create the home, the log directory and the socket directory, all private."""
    ensure_private_dir(paths.home)
    ensure_private_dir(paths.log_dir)
    ensure_private_dir(paths.socket.parent)


def open_private(path: pathlib.Path, flags: int = os.O_RDWR | os.O_CREAT) -> int:
    """Open (creating if asked) a file with mode 0600 from birth, fixing a looser mode."""
    fd = os.open(path, flags | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.fchmod(fd, 0o600)
    except OSError:
        os.close(fd)
        raise
    return fd


def write_private(path: pathlib.Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data`` (0600): write a temp file, fsync, rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
