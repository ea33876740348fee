"""Failures that only the command line meets, each with its documented exit code.

They are :class:`~memesh.errors.MemeshError` subclasses like every other memesh error,
and the CLI prints them the same way: one ``memesh:`` line on stderr. Codes from
``sysexits.h`` where one fits (see the table in docs/cli.md).
"""
from __future__ import annotations

from memesh.errors import MemeshError


class UsageError(MemeshError):
    """The command line itself is wrong (an option value out of range, …)."""

    exit_code = 2


class AlreadyRunning(MemeshError):
    """``daemon run`` found another daemon serving the same MEMESH_HOME."""

    exit_code = 6


class DataError(MemeshError):
    """The input file was read but its content is not acceptable (a bad JSONL line)."""

    exit_code = 65  # EX_DATAERR


class InputError(MemeshError):
    """The input file cannot be read: missing, a directory, not readable."""

    exit_code = 66  # EX_NOINPUT


class OutputError(MemeshError):
    """The output file cannot be written: its folder is missing or not writable."""

    exit_code = 73  # EX_CANTCREAT


def describe_os_error(exc: OSError) -> str:
    """``exc`` as a short phrase: 'No such file or directory', without errno noise."""
    return exc.strerror or exc.__class__.__name__
