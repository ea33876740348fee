"""Helpers for tests that run real memesh processes in a temporary ``MEMESH_HOME``.

``MemeshHome`` is what the ``memesh_home`` fixture (``tests/conftest.py``) hands a test:
the home directory, the environment to run memesh with, the CLI as a real subprocess,
readers for the lock record and the lifetime-lock holder, and a census of the daemon
processes that serve this home. Every process a test starts through it is stopped by
pid (or process group) in :meth:`MemeshHome.cleanup`; daemons only after checking that
the pid still names a memesh daemon of this very home.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Callable, TypeVar

import psutil

from memesh.config import Settings, load_settings
from memesh.daemon import lock as lockmod
from memesh.paths import Paths, paths_for

T = TypeVar("T")

DAEMON_MODULE = "memesh.daemon.process"
CLI_TIMEOUT = 30.0  # seconds; a CLI call that takes longer is a hang, not a slow machine
KILL_TIMEOUT = 10.0  # seconds for a killed process to vanish and its lifetime lock to drop
POLL = 0.005  # seconds between checks in wait_until

#: Settings every test daemon starts with, unless a test says otherwise. Short health
#: deadline so hung-daemon tests are quick; a finite idle timeout as a last safety net.
TEST_SETTINGS = {
    "MEMESH_DAEMON_HEALTH_TIMEOUT": "1000",
    "MEMESH_DAEMON_READY_TIMEOUT": "10000",
    "MEMESH_DAEMON_DRAIN_TIMEOUT": "10000",
    "MEMESH_DAEMON_IDLE_TIMEOUT": "120000",
    "MEMESH_DAEMON_LOG_LEVEL": "info",
}


def wait_until(predicate: Callable[[], T], timeout: float, message: str | Callable[[], str] = "condition", interval: float = POLL) -> T:
    """Poll ``predicate`` until it returns something truthy (returned), or fail after ``timeout`` s.

    ``message`` (or what it returns, when callable: evaluated at the failure) says what was awaited.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {message() if callable(message) else message}")
        time.sleep(interval)


def _env_home(proc: psutil.Process) -> str | None:
    try:
        return proc.environ().get("MEMESH_HOME")
    except (psutil.Error, OSError):
        return None


def is_daemon_process(proc: psutil.Process) -> bool:
    try:
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = proc.cmdline()
    except (psutil.Error, OSError):
        return False
    return DAEMON_MODULE in cmdline or cmdline[-2:] == ["daemon", "run"] and "memesh" in " ".join(cmdline)


def daemon_processes(homes: set[str]) -> list[psutil.Process]:
    """Live (non-zombie) memesh daemon processes whose ``MEMESH_HOME`` is one of ``homes``."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        if is_daemon_process(proc) and _env_home(proc) in homes:
            found.append(proc)
    return found


def is_dead(proc: psutil.Process) -> bool:
    """Gone, or a zombie (an orphaned daemon is reaped by init, which may take a while)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def kill_verified(procs: list[psutil.Process], timeout: float = KILL_TIMEOUT) -> None:
    """SIGKILL these processes (psutil refuses if a pid now names another process) and wait."""
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    wait_until(lambda: all(is_dead(p) for p in procs), timeout, f"pids {[p.pid for p in procs]} to die")


class MemeshHome:
    """A fresh, short ``MEMESH_HOME`` and everything a test needs to drive memesh in it."""

    def __init__(self, path: pathlib.Path):
        self.path = path
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEMESH_")}
        env.update(TEST_SETTINGS)
        env["MEMESH_HOME"] = str(path)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.env = env
        self.paths: Paths = paths_for(path, env)
        self._children: list[subprocess.Popen] = []
        self._meshes: list[Any] = []

    # -- settings and in-process clients -----------------------------------------------
    def settings(self, **env: str) -> Settings:
        """The settings a memesh process started with ``self.env`` (plus ``env``) would build."""
        return load_settings({**self.env, **env})

    def connect(self, **kwargs) -> Any:
        """``memesh.connect()`` against this home from the test process; closed at teardown."""
        import memesh

        settings = kwargs.pop("settings", None) or self.settings()
        mesh = memesh.connect(settings=settings, **kwargs)
        self._meshes.append(mesh)
        return mesh

    # -- subprocesses ------------------------------------------------------------------
    def cli(self, *args: str, timeout: float = CLI_TIMEOUT, env: dict | None = None) -> subprocess.CompletedProcess:
        """Run ``python -m memesh ARGS`` in this home and wait for it (bounded)."""
        return subprocess.run(
            [sys.executable, "-m", "memesh", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def popen(self, argv: list[str], env: dict | None = None, **kwargs) -> subprocess.Popen:
        """Start a process in its own session (so teardown can kill its whole group)."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("stdout", subprocess.PIPE)
        kwargs.setdefault("stderr", subprocess.PIPE)
        proc = subprocess.Popen(argv, env={**self.env, **(env or {})}, start_new_session=True, **kwargs)
        self._children.append(proc)
        return proc

    def popen_cli(self, *args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
        return self.popen([sys.executable, "-m", "memesh", *args], env=env, text=True, **kwargs)

    def popen_python(self, code: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
        return self.popen([sys.executable, "-c", code], env=env, text=True, **kwargs)

    def start_daemon(self, env: dict | None = None) -> int:
        """``memesh daemon start``; returns the daemon pid once it answers."""
        done = self.cli("daemon", "start", env=env)
        assert done.returncode == 0, f"daemon start failed ({done.returncode}): {done.stderr}"
        record = self.record()
        assert record is not None, "daemon start returned but no lock record exists"
        return record["pid"]

    # -- files -------------------------------------------------------------------------
    def record(self) -> dict | None:
        """The lock record as a dict, or None when absent or not a valid record."""
        record, _ = lockmod.read_record(self.paths.record)
        return None if record is None else json.loads(record.to_json())

    def holder(self) -> dict:
        """What the lifetime-lock file says about its holder (pid, createTime, instanceId)."""
        return lockmod.read_holder(self.paths.lifetime_lock)

    def lifetime_held(self) -> bool:
        return lockmod.lifetime_held(self.paths.lifetime_lock)

    def log_text(self) -> str:
        try:
            return self.paths.log.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def leftovers(self) -> list[str]:
        """Files a daemon must not leave behind once it is gone (record, socket, key)."""
        return [str(p) for p in (self.paths.record, self.paths.socket, self.paths.key) if os.path.lexists(p)]

    # -- daemons -----------------------------------------------------------------------
    def daemons(self) -> list[psutil.Process]:
        """Live daemon processes of this home (including one still in its start-up fork)."""
        return daemon_processes({str(self.path)})

    def serving_daemons(self) -> list[psutil.Process]:
        """Daemons of this home that are running (not stopped) and have the lifetime lock open."""
        serving = []
        lock_path = str(self.paths.lifetime_lock)
        for proc in self.daemons():
            try:
                if proc.status() == psutil.STATUS_STOPPED:
                    continue
                if any(f.path == lock_path for f in proc.open_files()):
                    serving.append(proc)
            except (psutil.Error, OSError):
                continue
        return serving

    def wait_daemon_gone(self, timeout: float = KILL_TIMEOUT) -> None:
        wait_until(lambda: not self.lifetime_held(), timeout, "the daemon to release its lifetime lock")
        wait_until(lambda: not self.daemons(), timeout, "the daemon process to exit")

    def kill_daemon(self, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to the daemon named by the lifetime-lock holder, after verifying it."""
        proc = self.verified_holder()
        assert proc is not None, "no verified daemon holds the lifetime lock"
        proc.send_signal(sig)
        return proc.pid

    def verified_holder(self) -> psutil.Process | None:
        """The lifetime-lock holder, if it is alive, a memesh daemon of this home, and its
        create time matches what the daemon wrote (so the pid was not reused)."""
        holder = self.holder()
        pid = holder.get("pid")
        if not isinstance(pid, int) or not self.lifetime_held():
            return None
        try:
            proc = psutil.Process(pid)
            created = holder.get("createTime")
            if not lockmod.create_times_match(float(created or 0), proc.create_time()):
                return None
        except (psutil.Error, OSError, TypeError, ValueError):
            return None
        if not is_daemon_process(proc) or _env_home(proc) != str(self.path):
            return None
        return proc

    # -- teardown ----------------------------------------------------------------------
    def cleanup(self) -> None:
        """Stop everything this home's test started, then remove the home.

        Order: test children (by process group), the daemon(s) of this home (by verified
        pid: the lifetime holder, then any other daemon process whose environment names
        this home), then wait until the lifetime lock is free, then drop client handles.
        """
        for proc in self._children:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                proc.wait(timeout=KILL_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        victims = []
        holder = self.verified_holder()
        if holder is not None:
            victims.append(holder)
        victims += [p for p in self.daemons() if p.pid not in {v.pid for v in victims}]
        kill_verified(victims)
        try:
            wait_until(lambda: not self.lifetime_held(), KILL_TIMEOUT, "the lifetime lock to be released")
        finally:
            for mesh in self._meshes:  # their daemon is gone: goodbye fails fast
                try:
                    mesh.close()
                except Exception:
                    pass
            shutil.rmtree(self.path, ignore_errors=True)
            socket_dir = self.paths.socket.parent
            if socket_dir != self.path and os.path.lexists(self.paths.socket):
                os.unlink(self.paths.socket)
