"""The handover marker: which installation asked for an upgrade, so that it starts the next daemon.

When a newer memesh asks the running daemon to hand over (``request_upgrade``), the
daemon writes ``daemon.handover`` before it starts draining: the asking version, its pid
and interpreter, and when. Its clients then reconnect and race for the start lock; a
contender running an *older* version that finds a live, fresh marker naming a newer
version does not start a daemon of its own (which would bring the old version straight
back) but waits until the asker's daemon answers. The newest version that asked wins:
a later request replaces the marker only with a newer version.

The marker expires when its asker has died or after ``max_age`` seconds (the asker gave
up), so a marker can delay a start but never block it. A daemon removes the marker when
it starts with a version at least as new as the one asked for.

:func:`verdict` is the pure decision; the rest is thin I/O.
"""
from __future__ import annotations

import json
import os
import pathlib
import time

from memesh.paths import Paths, write_private

MARKER_NAME = "daemon.handover"

SPAWN = "spawn"  # no pending handover to a newer version: start a daemon
WAIT = "wait"  # a newer installation asked and is on its way: let it start the daemon
EXPIRED = "expired"  # the marker is left over (asker dead or too old): remove it, then start

CLOCK_SLACK = 60.0  # seconds a marker may seem to come from the future (wall-clock steps)


def marker_path(paths: Paths) -> pathlib.Path:
    return paths.home / MARKER_NAME


def verdict(mine: str, marker: dict | None, *, now: float, asker_alive: bool, max_age: float) -> str:
    """Pure: what a contender running version ``mine`` does about ``marker`` before spawning."""
    if not isinstance(marker, dict):
        return SPAWN
    asked_at = marker.get("requestedAt")
    if not asker_alive or not isinstance(asked_at, (int, float)) or isinstance(asked_at, bool) or not -CLOCK_SLACK <= now - asked_at <= max_age:
        return EXPIRED
    from memesh.version import parse_version

    wanted, have = parse_version(marker.get("version")), parse_version(mine)
    if wanted.valid and have.valid and wanted > have:
        return WAIT
    return SPAWN


def newer_request(current: dict | None, version: str, *, current_alive: bool) -> bool:
    """Pure: does a request for ``version`` replace the ``current`` marker? (The newest wins.)"""
    if not isinstance(current, dict) or not current_alive:
        return True
    from memesh.version import parse_version

    wanted, held = parse_version(version), parse_version(current.get("version"))
    return wanted.valid and (not held.valid or wanted > held)


# --------------------------------------------------------------------------- I/O shell


def read(paths: Paths) -> dict | None:
    try:
        raw = json.loads(marker_path(paths).read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    return raw if isinstance(raw, dict) else None


def pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def record(paths: Paths, *, version: str, pid: int, executable: str, daemon_version: str) -> bool:
    """Daemon side: note who asked for the upgrade, unless a newer asker already did."""
    current = read(paths)
    if not newer_request(current, version, current_alive=bool(current) and pid_alive(current.get("pid"))):
        return False
    marker = {"version": version, "pid": pid, "executable": executable, "requestedAt": time.time(), "from": daemon_version}
    write_private(marker_path(paths), (json.dumps(marker) + "\n").encode())
    return True


def settle(paths: Paths, version: str) -> None:
    """Daemon side, at start-up: the handover is done if this daemon is as new as asked."""
    marker = read(paths)
    if marker is None:
        return
    if verdict(version, marker, now=time.time(), asker_alive=True, max_age=float("inf")) == SPAWN:
        remove(paths)


def remove(paths: Paths) -> None:
    try:
        os.unlink(marker_path(paths))
    except OSError:
        pass


def check(paths: Paths, mine: str, max_age: float) -> tuple[str, dict | None]:
    """Contender side, under the start lock: (verdict, marker); an expired marker is removed."""
    if not os.path.exists(marker_path(paths)):  # the common case: no upgrade under way, nothing imported
        return SPAWN, None
    marker = read(paths)
    result = verdict(mine, marker, now=time.time(), asker_alive=bool(marker) and pid_alive(marker.get("pid")), max_age=max_age)
    if result == EXPIRED:
        remove(paths)
    return result, marker
