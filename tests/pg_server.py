"""A real PostgreSQL server for the tests, started from the installed server binaries.

:class:`PgServer` runs ``initdb`` and ``pg_ctl`` in a private temporary directory. The
server listens only on a Unix socket in that directory (no TCP port, so test runs never
collide), trusts local connections, and runs with durability off (fsync, synchronous
commit) because test data need not survive a power cut. PostgreSQL refuses to run as
root, so when the tests run as root (CI does) the server runs as a system user made for
it (:data:`SERVER_USER`), through ``runuser``.

:func:`find_bin_dir` says where the binaries are (``pg_ctl`` on PATH, else Debian's
``/usr/lib/postgresql/<version>/bin``), or None. ``.ci/run`` installs them when missing.
"""
from __future__ import annotations

import glob
import itertools
import os
import pathlib
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

SERVER_USER = "memesh-pg"  # the unprivileged account the server runs as when we are root
SUPERUSER = "memesh"       # the server's bootstrap superuser (trusted on the private socket)
TEMPLATE = "memesh_tests"  # the database the tests work in, a schema each
PORT = 5432                # names the socket file only; nothing listens on TCP
START_TIMEOUT = 60.0       # seconds; initdb + start on a loaded two-core machine
STOP_TIMEOUT = 30.0

_names = itertools.count(1)


def find_bin_dir() -> pathlib.Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return pathlib.Path(on_path).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                      key=lambda p: int(pathlib.Path(p).parent.parent.name) if pathlib.Path(p).parent.parent.name.isdigit() else 0)
    return pathlib.Path(versions[-1]).parent if versions else None


def _ensure_server_user() -> str:
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER],
                       check=True, capture_output=True)
    return SERVER_USER


class PgServer:
    """One PostgreSQL cluster in a temporary directory; :meth:`start`, :meth:`stop`, :meth:`cleanup`."""

    def __init__(self, bin_dir: pathlib.Path, shared_buffers: str = "64MB") -> None:
        """``shared_buffers``: the tests' stores are small; a benchmark passes a server's size."""
        self.bin_dir = bin_dir
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="mmpg", dir="/tmp"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "s"
        self.log = self.root / "server.log"
        self.user = _ensure_server_user() if os.geteuid() == 0 else None
        self.socket_dir.mkdir()
        if self.user:
            entry = pwd.getpwnam(self.user)
            for path in (self.root, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(f"\nlisten_addresses = ''\nunix_socket_directories = '{self.socket_dir}'\nport = {PORT}\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 300\n"
                       f"shared_buffers = {shared_buffers}\n")

    def _run(self, program: str, *args: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess:
        argv = [str(self.bin_dir / program), *args]
        if self.user:
            argv = ["runuser", "-u", self.user, "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr or result.stdout}\n"
                               f"{self.log_tail()}")
        return result

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        # -w waits until the server accepts connections (or fails, with the log).
        self._run("pg_ctl", "start", "-w", "-t", str(int(START_TIMEOUT)), "-D", str(self.data), "-l", str(self.log))

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self) -> None:
        """Stop the server (fast mode: sessions are ended); by its pid if pg_ctl cannot."""
        if not self.running():
            return
        try:
            self._run("pg_ctl", "stop", "-m", "fast", "-w", "-t", str(int(STOP_TIMEOUT)), "-D", str(self.data))
        except (RuntimeError, subprocess.TimeoutExpired):
            pid = self.pid()
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGQUIT)  # immediate shutdown of the postmaster and its children
                except ProcessLookupError:
                    pass
                deadline = time.monotonic() + STOP_TIMEOUT
                while self.running() and time.monotonic() < deadline:
                    time.sleep(0.05)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases ---------------------------------------------------------------------
    def url(self, database: str = "postgres") -> str:
        """The libpq URL of ``database`` on this server (Unix socket, no password)."""
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}&port={PORT}"

    def admin(self, *statements: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def require_password(self, role: str, password: str) -> None:
        """Create login ``role`` that must give ``password`` (scram) on the socket; the others stay trusted."""
        hba = self.data / "pg_hba.conf"
        hba.write_text(f"local all {role} scram-sha-256\n" + hba.read_text())
        self.admin(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'", f"GRANT ALL ON DATABASE {TEMPLATE} TO {role}",
                   "SELECT pg_reload_conf()")

    def grant_schema(self, url: str, role: str) -> None:
        """Let ``role`` use the schema of a :meth:`create_database` URL (and create in it)."""
        self.admin(f"GRANT ALL ON SCHEMA {url.split('search_path%3D')[1].split('%2C')[0]} TO {role}",
                   database=TEMPLATE)

    def make_template(self) -> bool:
        """Create the database the tests work in; returns whether pg_trgm is installed in it."""
        self.admin(f"CREATE DATABASE {TEMPLATE}")
        try:
            self.admin("CREATE EXTENSION pg_trgm", database=TEMPLATE)
            return True
        except Exception:  # the contrib package is missing: the store falls back to a scan
            return False

    def create_database(self) -> str:
        """Fresh, empty storage for one test: a new schema first on the search path; returns its URL.

        A schema is much cheaper to make and drop than a database, and memesh puts all
        its tables and its text search configuration in the first schema of the path.
        """
        name = f"t{os.getpid()}_{next(_names)}"
        self.admin(f"CREATE SCHEMA {name}", database=TEMPLATE)
        return f"{self.url(TEMPLATE)}&options=-csearch_path%3D{name}%2Cpublic"

    def drop_database(self, url: str) -> None:
        name = url.split("search_path%3D")[1].split("%2C")[0]
        self.admin(f"DROP SCHEMA IF EXISTS {name} CASCADE", database=TEMPLATE)
