"""A full disk, for real: the window's home is a small tmpfs that the test fills up.

Writes must fail with a message that says the disk is full (not "internal error"), reads
must go on, and once the test frees the space the next write must work without any
restart. Needs permission to mount a tmpfs; skipped (with the reason) where refused.
"""
from __future__ import annotations

import errno
import os
import pathlib
import subprocess
import sys
import tempfile

import pytest

from tests.conftest import _HOMES
from tests.mcp.stdio_driver import StdioServer
from tests.support import MemeshHome

REPO = str(pathlib.Path(__file__).resolve().parents[2])
TMPFS_SIZE = "16m"
BIG = [{"name": f"big{i}", "entityType": "bulk", "observations": [f"{i} " + "x" * 19_000 for _ in range(20)]}
       for i in range(10)]   # ~4 MB in one call: more than any space the database kept


@pytest.fixture
def small_home():
    path = pathlib.Path(tempfile.mkdtemp(prefix="mmf", dir="/tmp"))
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(path)],
                                 capture_output=True, text=True, timeout=30)
        refused = None if mounted.returncode == 0 else (mounted.stderr.strip() or f"exit {mounted.returncode}")
    except OSError as exc:   # no mount command
        refused = str(exc)
    if refused is not None:
        path.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {refused}")
    _HOMES.add(str(path))
    home = MemeshHome(path)
    try:
        yield home
    finally:
        try:
            home.cleanup()
        finally:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)
            path.rmdir()


@pytest.fixture(params=["proxy", "standalone"])
def window(request, small_home):
    env = dict(small_home.env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
    if request.param == "standalone":
        env["MEMESH_DISABLE_DAEMON"] = "1"
    server = StdioServer([sys.executable, "-m", "memesh"], env)
    try:
        server.initialize()
        yield server
    finally:
        server.kill()


def fill(directory: pathlib.Path) -> pathlib.Path:
    """Write a file until the filesystem has no space left; returns it."""
    filler = directory / "filler"
    chunk = b"\0" * (64 * 1024)
    # Unbuffered: a buffered file would keep the tail of the last chunk and raise ENOSPC
    # again when closed, depending on how much room the home's own files left.
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    return filler


def test_a_full_disk_is_named_reads_go_on_and_writes_resume_once_space_is_back(window, small_home):
    made = window.call("create_entities", {"entities": [{"name": "Ada", "entityType": "person",
                                                         "observations": ["before the disk filled"]}]})
    assert not made.get("isError"), made
    filler = fill(small_home.path)

    failed = window.call("create_entities", {"entities": BIG})
    assert failed.get("isError") is True, failed
    text = failed["content"][0]["text"]
    assert f"the disk holding {small_home.path} is full" in text, text
    assert "Internal error" not in text

    read = window.call("open_nodes", {"names": ["Ada"]})
    assert [e["name"] for e in read["structuredContent"]["entities"]] == ["Ada"]
    assert window.request("ping")["result"] == {}

    filler.unlink()
    again = window.call("create_entities", {"entities": BIG})
    assert not again.get("isError"), again["content"][0]["text"][:300]
    assert len(again["structuredContent"]["entities"]) == len(BIG)
