"""Upgrades between two real installations: memesh 0.1.0 and 0.2.0, each in its own venv.

Both venvs share one ``MEMESH_HOME``. Old windows (real stdio proxies of 0.1.0) keep
calling tools while the 0.2.0 installation takes over; the newest installation that asked
must start the next daemon, and no old window may bring 0.1.0 back.

The venvs use the system site for dependencies and get this source tree installed with
``pip --python VENV install --no-deps --no-build-isolation --no-index`` (about 5 s each
here on a loaded machine; the venvs are made without a pip of their own). Every
process of an installation runs with ``PYTHONPATH`` removed and from its venv's ``bin``
scripts, so it imports its own copy of memesh, never this checkout.
"""
from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time

import pytest

from tests.mcp.stdio_driver import StdioServer
from tests.support import CLI_TIMEOUT, wait_until

ROOT = pathlib.Path(__file__).resolve().parents[2]
OLD, NEW = "0.1.0", "0.2.0"
INSTALL_TIMEOUT = 300.0  # seconds for one venv + pip install; ~5 s measured here
READY = re.compile(r"daemon \w+ ready: pid (\d+), version (\S+),")


def _install(base: pathlib.Path, version: str) -> pathlib.Path:
    src = base / f"src-{version}"
    src.mkdir()
    shutil.copytree(ROOT / "memesh", src / "memesh", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    version_file = src / "memesh" / "_version.py"
    text = version_file.read_text()
    version_file.write_text(re.sub(r'^__version__ = "[^"]*"', f'__version__ = "{version}"', text, count=1, flags=re.M))
    venv = base / f"venv-{version}"
    env = clean_env({})
    # No pip inside the venv (seeding it costs most of the time): this interpreter's pip installs into it.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True,
                   env=env, timeout=INSTALL_TIMEOUT, cwd=base)
    # When the tests themselves run in a venv (CI's newest-Python pass), the dependencies
    # and the build backend live in that venv, not in the system site: list its package
    # folders as plain paths (their own .pth files, e.g. this checkout's editable install,
    # are not processed, so the venv still imports its installed copy of memesh).
    site = pathlib.Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    outer = dict.fromkeys(sysconfig.get_path(kind) for kind in ("purelib", "platlib"))
    (site / "memesh-test-outer-site.pth").write_text("".join(f"{path}\n" for path in outer))
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                           "--no-index", "--no-deps", "--no-build-isolation", str(src)], capture_output=True, text=True,
                          env=env, timeout=INSTALL_TIMEOUT, cwd=base)
    if done.returncode != 0:
        pytest.fail(f"installing memesh {version} into {venv} failed:\n{done.stdout}\n{done.stderr}")
    shutil.rmtree(src)  # the venv must run its installed copy, not the source
    return venv / "bin"


def clean_env(env: dict) -> dict:
    """``env`` without PYTHONPATH (which would make every installation import this checkout)."""
    return {k: v for k, v in env.items() if k != "PYTHONPATH"}


@pytest.fixture(scope="module")
def installs():
    try:
        import setuptools  # noqa: F401  (the build backend; Python 3.12+ venvs lack it)
        import wheel  # noqa: F401  (setuptools < 70 needs it to build the package)
    except ImportError as exc:
        pytest.skip(f"{exc.name} is needed to pip-install memesh into a test venv (pip install -e '.[test]')")
    base = pathlib.Path(tempfile.mkdtemp(prefix="mmvenv", dir="/tmp"))
    started = time.monotonic()
    try:
        bins = {version: _install(base, version) for version in (OLD, NEW)}
        print(f"two installations made in {time.monotonic() - started:.1f}s")
        yield bins
    finally:
        shutil.rmtree(base, ignore_errors=True)


OPENED: list[StdioServer] = []


@pytest.fixture(autouse=True)
def stop_windows(memesh_home):
    """Kill every window a test opened (by process group), before the home's own teardown."""
    yield
    while OPENED:
        OPENED.pop().kill()


class Install:
    """One installation driven against a shared home."""

    def __init__(self, home, bin_dir: pathlib.Path):
        self.home, self.bin = home, bin_dir
        self.env = clean_env(home.env)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bin / "memesh"), *args], env=self.env, capture_output=True, text=True,
                              timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL, cwd=self.home.path)

    def status(self) -> dict:
        done = self.cli("daemon", "status", "--json")
        assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
        return json.loads(done.stdout)

    def window(self) -> StdioServer:
        window = StdioServer([str(self.bin / "memesh")], self.env)
        OPENED.append(window)  # stopped (by process group) after the test, whatever happens
        window.initialize()
        return window


class Busy(threading.Thread):
    """An old window that keeps writing: each call must get a result, across the handover."""

    def __init__(self, window: StdioServer, name: str):
        super().__init__(daemon=True)
        self.window, self.name = window, name
        self.calls = 0
        self.failures: list = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                result = self.window.call("create_entities", {"entities": [
                    {"name": f"{self.name}-{self.calls}", "entityType": "note", "observations": ["written during an upgrade"]}]})
                if result.get("isError"):
                    self.failures.append(result)
            except AssertionError as exc:  # an error reply or no reply in time
                self.failures.append(str(exc)[:500])
            self.calls += 1

    def finish(self) -> None:
        self.stop.set()
        self.join(timeout=30)


def ready_versions(home) -> list[str]:
    """The versions of every daemon that became ready in this home, in order."""
    return [m.group(2) for m in READY.finditer(home.log_text())]


def busy_old_windows(home, old: Install, count: int = 3) -> list[Busy]:
    workers = [Busy(old.window(), f"old{i}") for i in range(count)]
    for worker in workers:
        worker.start()
    wait_until(lambda: all(w.calls >= 3 for w in workers), 30, "the old windows to be busy")
    return workers


def assert_kept_working(workers: list[Busy]) -> None:
    marks = [w.calls for w in workers]
    wait_until(lambda: all(w.calls >= m + 5 for w, m in zip(workers, marks)), 60, "the old windows to keep working")
    for worker in workers:
        worker.finish()
        assert worker.failures == [], f"{worker.name}: {worker.failures[:2]}"
        assert "standalone" not in worker.window.stderr_text, worker.window.stderr_text


def test_upgrade_from_the_newer_installation_replaces_a_daemon_that_serves_busy_old_windows(memesh_home, installs):
    old, new = Install(memesh_home, installs[OLD]), Install(memesh_home, installs[NEW])
    assert old.cli("daemon", "start").returncode == 0
    first = old.status()
    assert first["version"] == OLD
    workers = busy_old_windows(memesh_home, old)

    done = new.cli("daemon", "upgrade")
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert f"(version {OLD}" in done.stdout and f"-> pid" in done.stdout and f"(version {NEW}" in done.stdout, done.stdout
    assert_kept_working(workers)
    now = new.status()
    assert now["version"] == NEW and now["pid"] != first["pid"]
    assert now["clientCount"] == 3, "the old windows did not move to the new daemon"
    assert ready_versions(memesh_home) == [OLD, NEW], "an old window brought the old version back"
    assert [p.pid for p in memesh_home.daemons()] == [now["pid"]]


def test_a_window_of_the_newer_installation_gets_a_daemon_of_its_version_and_later_ones_keep_it(memesh_home, installs):
    old, new = Install(memesh_home, installs[OLD]), Install(memesh_home, installs[NEW])
    assert old.cli("daemon", "start").returncode == 0
    workers = busy_old_windows(memesh_home, old)

    window = new.window()  # asks the 0.1.0 daemon to hand over, then starts 0.2.0
    assert window.call("read_graph", {}).get("isError") is not True
    assert "standalone" not in window.stderr_text and "did not hand over" not in window.stderr_text, window.stderr_text
    upgraded = new.status()
    assert upgraded["version"] == NEW
    assert_kept_working(workers)
    later = new.window()  # a later new window just uses it: no further restart
    assert later.call("read_graph", {}).get("isError") is not True
    assert new.status()["pid"] == upgraded["pid"]
    assert ready_versions(memesh_home) == [OLD, NEW], "an old window raced the old version back, or the daemon restarted again"
    assert [p.pid for p in memesh_home.daemons()] == [upgraded["pid"]]


def test_upgrade_from_an_older_installation_fails_loudly_and_leaves_the_newer_daemon_alone(memesh_home, installs):
    old, new = Install(memesh_home, installs[OLD]), Install(memesh_home, installs[NEW])
    assert new.cli("daemon", "start").returncode == 0
    running = new.status()
    done = old.cli("daemon", "upgrade")
    assert done.returncode == 5, (done.returncode, done.stdout, done.stderr)
    assert f"memesh {NEW}, newer than this installation's {OLD}" in done.stderr
    assert new.status()["pid"] == running["pid"]
