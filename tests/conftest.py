"""Fixtures shared by every test directory.

``memesh_home``: a short, fresh ``MEMESH_HOME`` (socket paths must stay under ~100
bytes) with the environment to run memesh in it; see :class:`tests.support.MemeshHome`.
Its teardown stops every process the test started and every daemon of that home (by
verified pid), waits until the lifetime lock is free and removes the directory.

A session-wide check then fails loudly if any memesh daemon of a home created here is
still alive: a test run must leave no daemon behind.
"""
from __future__ import annotations

import pathlib
import tempfile

import pytest

from tests.support import MemeshHome, daemon_processes, kill_verified

_HOMES: set[str] = set()


@pytest.fixture
def memesh_home():
    path = pathlib.Path(tempfile.mkdtemp(prefix="mm", dir="/tmp"))
    _HOMES.add(str(path))
    home = MemeshHome(path)
    try:
        yield home
    finally:
        home.cleanup()


@pytest.fixture
def make_home():
    """A factory for tests that need several homes at once (each cleaned up like ``memesh_home``)."""
    homes: list[MemeshHome] = []

    def make() -> MemeshHome:
        path = pathlib.Path(tempfile.mkdtemp(prefix="mm", dir="/tmp"))
        _HOMES.add(str(path))
        homes.append(MemeshHome(path))
        return homes[-1]

    try:
        yield make
    finally:
        for home in homes:
            home.cleanup()


@pytest.fixture(scope="session", autouse=True)
def no_daemon_left_behind(request):
    """Fail the session if a daemon of any home made by these fixtures outlived its test."""

    def check() -> None:
        if not _HOMES:
            return
        survivors = daemon_processes(_HOMES)
        if survivors:
            described = [f"pid {p.pid} ({' '.join(p.cmdline())})" for p in survivors]
            kill_verified(survivors)
            pytest.fail(f"memesh daemon(s) outlived their tests: {described}", pytrace=False)

    request.addfinalizer(check)
