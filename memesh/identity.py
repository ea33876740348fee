"""What this installation of memesh is: package version, protocol, build id, Python.

The build id is a hash of the installed package's source files, so a reinstall with
changed code is noticed even when the version number did not move.
"""
from __future__ import annotations

import functools
import hashlib
import pathlib
import platform

from memesh._version import __version__
from memesh.version import MIN_CLIENT_VERSION, PROTOCOL_VERSION

__all__ = ["MIN_CLIENT_VERSION", "PROTOCOL_VERSION", "build_id", "identity"]


@functools.lru_cache(maxsize=1)
def build_id() -> str:
    root = pathlib.Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:
            pass
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def identity() -> dict:
    """The client side of a hello: who is talking."""
    return {
        "version": __version__,
        "protocol": PROTOCOL_VERSION,
        "build": build_id(),
        "python": platform.python_version(),
    }
