"""What this installation of memesh is: package version, protocol, build id, Python.

The build id is a hash of the installed package's source files, so a reinstall with
changed code is noticed even when the version number did not move. Computing it reads
every source file, so the stdio proxy (which starts with every window) leaves it out of
its hello; the daemon, the CLI and Python clients include it.
"""
from __future__ import annotations

import functools
import sys

from memesh._version import MIN_CLIENT_VERSION, PROTOCOL_VERSION, __version__

__all__ = ["MIN_CLIENT_VERSION", "PROTOCOL_VERSION", "build_id", "identity", "python_version"]


def python_version() -> str:
    return "%d.%d.%d" % sys.version_info[:3]


@functools.lru_cache(maxsize=1)
def build_id() -> str:
    import hashlib
    import pathlib

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


def identity(build: bool = True) -> dict:
    """The client side of a hello: who is talking."""
    return {
        "version": __version__,
        "protocol": PROTOCOL_VERSION,
        "build": build_id() if build else "",
        "python": python_version(),
        "executable": sys.executable,  # which installation is talking (noted when it asks for an upgrade)
    }
