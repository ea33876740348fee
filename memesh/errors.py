"""The memesh error hierarchy.

Every class here crosses the manager socket by pickling (BaseManager re-raises the
daemon's exception in the client), so none of them overrides ``__init__`` with a
signature that differs from ``Exception``'s: the message is the only argument.
Each class carries the CLI exit code that a command ending with it returns.
"""


class MemeshError(Exception):
    """Base class: something memesh could not do, with a message that says what to do."""

    exit_code = 1


class ConfigError(MemeshError):
    """A configuration file, key or value is not acceptable."""

    exit_code = 78  # EX_CONFIG from sysexits.h


class UnsafePathError(MemeshError):
    """MEMESH_HOME (or the socket fallback directory) is not a private directory we own."""

    exit_code = 77  # EX_NOPERM


class DaemonNotRunning(MemeshError):
    """No daemon is serving this MEMESH_HOME."""

    exit_code = 3


class DaemonUnreachable(MemeshError):
    """A daemon is recorded or holds the lifetime lock but does not answer."""

    exit_code = 4


class DaemonFull(DaemonUnreachable):
    """The daemon is alive but serves as many connections as it may (daemon.max_connections)."""


class DaemonStartError(MemeshError):
    """A daemon was spawned but did not become ready in time."""

    exit_code = 4


class DaemonDisabled(MemeshError):
    """Daemon mode is disabled (MEMESH_DISABLE_DAEMON or daemon.enabled: false)."""

    exit_code = 3


class DaemonDraining(MemeshError):
    """The daemon is shutting down or upgrading and takes no new work: reconnect and resend."""

    exit_code = 75  # EX_TEMPFAIL


class VersionMismatch(MemeshError):
    """The client and the daemon cannot talk (protocol or minimum client version)."""

    exit_code = 5


class MessageTooLarge(MemeshError):
    """A message exceeded the daemon's size limit and was discarded unread."""


class OutcomeUnknown(MemeshError):
    """The daemon went away after receiving a call that changes state: it may or may not have happened."""

    exit_code = 75


class ProtocolError(MemeshError):
    """The peer sent something that is not part of the manager protocol."""


class ValidationError(MemeshError):
    """Arguments to a shared-object method are missing or of the wrong type."""

    exit_code = 2


class A2AUnavailable(MemeshError):
    """The A2A front door is not running in this daemon (disabled, failed, or still starting)."""

    exit_code = 3


class NotFound(MemeshError):
    """The named thing (entity, memory, task, …) does not exist."""


class DiskFull(MemeshError):
    """A write failed because the disk (or the database's size limit) is full; reads still work."""

    exit_code = 74  # EX_IOERR
class StorageUnavailable(MemeshError):
    """The storage server (PostgreSQL) cannot be reached now; memesh keeps retrying by itself."""

    exit_code = 75  # EX_TEMPFAIL
