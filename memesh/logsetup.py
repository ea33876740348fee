"""Logging configuration, done only at entry points.

The daemon writes a rotating, plain-text ``logs/daemon.log`` (0600); run in the foreground
on a terminal (``memesh daemon run``) it also shows every line there. CLI commands log
warnings to stderr. On a terminal, stderr lines are coloured by level through colorlog;
anywhere else they are plain. Stdout is never used for logs: in the MCP paths it is the
wire.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import sys

from memesh.paths import Paths, open_private

FORMAT = "%(asctime)s %(levelname)-7s [%(process)d] %(name)s: %(message)s"
COLOUR_FORMAT = "%(asctime)s %(log_color)s%(levelname)-7s%(reset)s [%(process)d] %(name)s: %(message)s"
CLI_FORMAT = "memesh %(levelname)s %(name)s: %(message)s"
CLI_COLOUR_FORMAT = "memesh %(log_color)s%(levelname)s%(reset)s %(name)s: %(message)s"
LOG_MAX_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 3


def _level(name: str) -> int:
    return getattr(logging, name.upper(), logging.INFO)


class _PrivateRotatingHandler(logging.handlers.RotatingFileHandler):
    """Rotating handler whose files are created 0600."""

    def _open(self):
        os.close(open_private(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND))
        return super()._open()


def on_terminal(stream) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (ValueError, OSError):  # closed or detached
        return False


def stderr_handler(plain: str, coloured: str) -> logging.Handler:
    """A stderr handler: ``coloured`` (a colorlog format) on a terminal, ``plain`` elsewhere."""
    handler = logging.StreamHandler(sys.stderr)
    if on_terminal(sys.stderr):
        import colorlog

        handler.setFormatter(colorlog.ColoredFormatter(coloured, stream=sys.stderr))
    else:
        handler.setFormatter(logging.Formatter(plain))
    return handler


def configure_daemon(paths: Paths, level: str) -> None:
    """The rotating log file; plus the terminal, when the daemon runs in the foreground on one."""
    handler = _PrivateRotatingHandler(paths.log, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    handlers: list[logging.Handler] = [handler]
    if on_terminal(sys.stderr):  # a detached daemon's stderr is the log file, never a terminal
        handlers.append(stderr_handler(FORMAT, COLOUR_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(_level(level))


def configure_stderr(level: str = "warning") -> None:
    """Log to stderr (CLI commands): colour on a terminal, plain otherwise."""
    root = logging.getLogger()
    root.handlers[:] = [stderr_handler(CLI_FORMAT, CLI_COLOUR_FORMAT)]
    root.setLevel(_level(level))
