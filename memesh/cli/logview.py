"""Reading the daemon log: the last N lines, and following it across rotations."""
from __future__ import annotations

import os
import pathlib
import time
from typing import IO

FOLLOW_POLL = 0.25  # seconds between checks for new lines; a log has no change notification here


def tail_lines(path: pathlib.Path, count: int) -> list[str]:
    """The last ``count`` lines of the file (each ending in a newline); [] if there is no log."""
    if count <= 0:
        return []
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            block = 64 * 1024
            data = b""
            pos = end
            while pos > 0 and data.count(b"\n") <= count:
                step = min(block, pos)
                pos -= step
                fh.seek(pos)
                data = fh.read(step) + data
    except FileNotFoundError:
        return []
    lines = data.decode("utf-8", "replace").splitlines(keepends=True)
    return [line if line.endswith("\n") else line + "\n" for line in lines[-count:]]


def follow_log(path: pathlib.Path, out: IO[str], stop_after: float | None = None) -> None:
    """Print lines appended to the log until interrupted (or ``stop_after`` seconds)."""
    deadline = None if stop_after is None else time.monotonic() + stop_after
    fh = None
    inode = None
    try:
        while deadline is None or time.monotonic() < deadline:
            if fh is None:
                try:
                    fh = open(path, "rb")
                    fh.seek(0, os.SEEK_END) if inode is None else None
                    inode = os.fstat(fh.fileno()).st_ino
                except FileNotFoundError:
                    time.sleep(FOLLOW_POLL)
                    continue
            chunk = fh.read()
            if chunk:
                out.write(chunk.decode("utf-8", "replace"))
                out.flush()
                continue
            try:
                if os.stat(path).st_ino != inode:  # rotated: read the new file from its start
                    fh.close()
                    fh = None
                    continue
            except FileNotFoundError:
                pass
            time.sleep(FOLLOW_POLL)
    finally:
        if fh is not None:
            fh.close()
