"""Logging configuration, done only at entry points.

The daemon writes a rotating, plain-text ``logs/daemon.log`` (0600). Interactive commands
log to stderr, in colour (colorlog) when stderr is a terminal. Stdout is never used for
logs: in the MCP paths it is the wire.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import sys

from memesh.paths import Paths, open_private

FORMAT = "%(asctime)s %(levelname)-7s [%(process)d] %(name)s: %(message)s"
LOG_MAX_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 3


def _level(name: str) -> int:
    return getattr(logging, name.upper(), logging.INFO)


class _PrivateRotatingHandler(logging.handlers.RotatingFileHandler):
    """Rotating handler whose files are created 0600."""

    def _open(self):
        os.close(open_private(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND))
        return super()._open()


def configure_daemon(paths: Paths, level: str) -> None:
    handler = _PrivateRotatingHandler(paths.log, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_level(level))


def configure_stderr(level: str = "warning") -> None:
    """Log to stderr: colour on a terminal, plain otherwise."""
    handler = logging.StreamHandler(sys.stderr)
    if sys.stderr.isatty():
        try:
            import colorlog

            handler.setFormatter(colorlog.ColoredFormatter("%(log_color)s%(levelname)s%(reset)s %(name)s: %(message)s"))
        except ImportError:  # pragma: no cover - colorlog is a dependency
            handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_level(level))
