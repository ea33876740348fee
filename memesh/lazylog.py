"""Loggers for the stdio proxy's start-up path, which must not pay for ``logging``.

Importing :mod:`logging` costs several milliseconds, and every Claude Code window starts
a proxy; most proxies never log anything. ``get(name)`` returns a stand-in that imports
logging, configures stderr output once (if the entry point has not) and returns the real
logger's method on first use. Everywhere off that path, use ``logging.getLogger``.
"""
from __future__ import annotations

FORMAT = "memesh %(levelname)s %(name)s: %(message)s"


class _LazyLogger:
    __slots__ = ("_name", "_logger")

    def __init__(self, name: str):
        self._name = name
        self._logger = None

    def __getattr__(self, attr: str):
        logger = self._logger
        if logger is None:
            import logging
            import sys

            root = logging.getLogger()
            if not root.handlers:
                handler = logging.StreamHandler(sys.stderr)
                handler.setFormatter(logging.Formatter(FORMAT))
                root.addHandler(handler)
                root.setLevel(logging.WARNING)
            logger = self._logger = logging.getLogger(self._name)
        return getattr(logger, attr)


def get(name: str) -> _LazyLogger:
    return _LazyLogger(name)
