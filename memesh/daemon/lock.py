"""DaemonLockManager: the lock record, the two kernel locks, and the judgement of a lock.

Three files decide who the daemon is (all in ``$MEMESH_HOME``):

``daemon.lock``
    The JSON record users and tools read (the seed's fields plus a few of ours). Created
    atomically with ``os.link`` (never half-written, fails if one exists) and kept
    current with an atomic replace.
``daemon.lifetime.lock``
    ``flock``-ed exclusively by the daemon for its whole life. The kernel drops it when
    the process dies, however it dies, so "nobody holds it" is the proof that no daemon
    lives. It also holds the holder's pid and process create time (for the kill guard).
    Never deleted: a process that locks a re-created file at the same path would
    become a second holder.
``daemon.start.lock``
    Held (through ``filelock``) by a client while it judges the record and starts a
    daemon, which serialises the whole read-judge-clear-spawn sequence.

:func:`judge` is the pure decision over gathered :class:`Facts`; everything else here is
thin I/O.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import pathlib
import time
from collections import namedtuple

from memesh.paths import open_private, write_private

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing on the proxy's start-up path
if TYPE_CHECKING:
    from typing import Any

# Verdicts of judge().
LIVE = "live"  # a daemon holds the lifetime lock and answered our hello: use it
STARTING = "starting"  # a daemon holds the lifetime lock but is not answering yet: wait
STALE = "stale"  # nobody holds the lifetime lock: clear what is left and start one
HUNG = "hung"  # the holder is verifiably ours and has not said a word for the whole hung threshold: replace it
UNKNOWN = "unknown"  # someone holds the lock and we cannot tell who: never kill blindly
BUSY = "busy"  # the daemon is alive (it replied in some way) but does not serve us: report, never kill
DEAF = "deaf"  # a verified daemon holds the lock but nothing listens on its socket: report, never kill

# Outcomes of the hello attempt that go into Facts.hello.
HELLO_OK = "ok"
HELLO_TIMEOUT = "timeout"  # connected, but not one byte of an answer within the health deadline
HELLO_SLOW = "slow"  # the handshake completed (alive), but the hello itself was not answered in time
HELLO_REFUSED = "refused"  # no socket or key, or nothing listening on the socket
HELLO_REJECTED = "rejected"  # a listener closed or failed the handshake: alive (e.g. at its connection cap)

#: Outcomes that prove the daemon is alive: it replied, whatever it said.
REPLIED = frozenset({HELLO_OK, HELLO_SLOW, HELLO_REJECTED})

#: A hung verdict needs this many hello timeouts in a row (one slow hello is not enough).
HUNG_TIMEOUTS = 2

CREATE_TIME_TOLERANCE = 1.0  # seconds; psutil create_time moves with wall-clock steps

SEED_FIELDS = (
    "pid",
    "instanceId",
    "socketPath",
    "startTime",
    "version",
    "clientCount",
    "protocolVersion",
    "minClientVersion",
)


# Records and facts are plain namedtuples: cheap to define on the proxy's start-up path,
# where typing.NamedTuple (it imports typing and compiles every field's annotation) costs
# milliseconds.
class LockRecord(namedtuple("LockRecord", (*SEED_FIELDS, "processCreateTime", "buildId", "pythonVersion", "a2aPort"),
                            defaults=(0.0, "", "", 0))):
    """The JSON record of a daemon: the seed's fields, then ours (optional in a record).

    ``pid`` int, ``instanceId`` str, ``socketPath`` str, ``startTime`` int (ms since the
    epoch), ``version`` str, ``clientCount`` int, ``protocolVersion`` int,
    ``minClientVersion`` str; ``processCreateTime`` float, ``buildId`` str,
    ``pythonVersion`` str, ``a2aPort`` int (the A2A front door's port on 127.0.0.1; 0: not
    serving).
    """

    __slots__ = ()

    def to_json(self) -> bytes:
        return (json.dumps(self._asdict(), indent=2) + "\n").encode()


def parse_record(data: bytes | str | None) -> LockRecord | None:
    """The record in ``data``, or None when it is missing or not a well-formed record."""
    if not data:
        return None
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: "[[[[…" deeper than the parser goes
        return None
    if not isinstance(raw, dict):
        return None
    values: dict[str, Any] = {}
    for name in LockRecord._fields:
        if name in raw:
            values[name] = raw[name]
        elif name not in SEED_FIELDS:
            continue
        else:
            return None
    checks = {
        "pid": lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
        "instanceId": lambda v: isinstance(v, str) and v != "",
        "socketPath": lambda v: isinstance(v, str) and v != "",
        "startTime": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "version": lambda v: isinstance(v, str),
        "clientCount": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "protocolVersion": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "minClientVersion": lambda v: isinstance(v, str),
        "processCreateTime": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "buildId": lambda v: isinstance(v, str),
        "pythonVersion": lambda v: isinstance(v, str),
        "a2aPort": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 65535,
    }
    for name, value in values.items():
        if not checks[name](value):
            return None
    return LockRecord(**values)


class Facts(namedtuple("Facts", "lifetime_held holder_alive holder_verified hello overdue answered timeouts",
                       defaults=(False, False, HELLO_REFUSED, False, False, 0))):
    """What a contender learned about the current lock state (gathered by thin I/O).

    * ``lifetime_held``: someone holds the lifetime lock (the only proof of life);
    * ``holder_alive``: the pid the lifetime file names is a running process (default False);
    * ``holder_verified``: …and its create time matches what the daemon wrote (False);
    * ``hello``: how the hello went, a ``HELLO_*`` value (``HELLO_REFUSED``);
    * ``overdue``: we have waited longer than the hung threshold, several health deadlines (False);
    * ``answered``: some earlier attempt of this wait got a reply of any kind (False);
    * ``timeouts``: hello attempts in a row that timed out without a byte of answer, this
      one included (0).
    """

    __slots__ = ()


def judge(facts: Facts) -> str:
    """Pure: what to do about the current daemon, given the facts.

    The lifetime lock is the only proof of life or death: a dead pid, a garbage record
    or a missing socket never override it. A reply of any kind (a completed handshake, a
    refusal at the connection cap) proves life, and a live daemon is never killed however
    slow it is. Killing requires that the holder is alive, verified to be the process the
    daemon recorded (create time), and has answered nothing — at least
    :data:`HUNG_TIMEOUTS` hellos timed out and the hung threshold has passed.
    """
    if not facts.lifetime_held:
        return STALE
    if facts.hello == HELLO_OK:
        return LIVE
    if facts.hello in REPLIED or facts.answered:
        return BUSY if facts.overdue else STARTING
    if not facts.overdue:
        return STARTING
    if not (facts.holder_alive and facts.holder_verified):
        return UNKNOWN
    if facts.hello == HELLO_TIMEOUT and facts.timeouts >= HUNG_TIMEOUTS:
        return HUNG
    if facts.hello == HELLO_REFUSED:
        return DEAF
    return STARTING


def create_times_match(recorded: float, actual: float | None) -> bool:
    return actual is not None and recorded > 0 and abs(recorded - actual) <= CREATE_TIME_TOLERANCE


# --------------------------------------------------------------------------- I/O shell


def read_record(path: pathlib.Path) -> tuple[LockRecord | None, bool]:
    """(record, present): present is True when a file exists even if it is garbage."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, False
    except OSError:
        return None, True
    return parse_record(data), True


def publish_record(path: pathlib.Path, record: LockRecord) -> None:
    """Create the record atomically: write a temp file, then ``link`` it into place.

    ``link`` fails if a record exists, so a half-written or concurrent record can never
    be observed. Only the lifetime-lock holder calls this, after clearing any stale one.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        os.write(fd, record.to_json())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    finally:
        os.unlink(tmp)


def update_record(path: pathlib.Path, record: LockRecord) -> None:
    """Replace the record in place (atomic rename), e.g. when clientCount changes."""
    write_private(path, record.to_json())


def remove_record_if(path: pathlib.Path, instance_id: str | None) -> bool:
    """Remove the record if it names ``instance_id`` (or unconditionally when None)."""
    if instance_id is not None:
        record, _ = read_record(path)
        if record is None or record.instanceId != instance_id:
            return False
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


class LifetimeLock:
    """The daemon's lifetime flock, plus who holds it (pid, create time, instance id)."""

    def __init__(self, path: pathlib.Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self, wait: float = 1.0) -> bool:
        """Take the lock, retrying briefly: a client probing it holds it for microseconds."""
        fd = open_private(self.path)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.01)  # polling a flock: there is no blocking-with-timeout call
        self._fd = fd
        return True

    def write_holder(self, info: dict) -> None:
        assert self._fd is not None
        data = json.dumps(info).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def still_at_path(self) -> bool:
        """Does the path still name the file we locked? Someone may have deleted it (and a
        new daemon may lock a new file there): then this process no longer owns the
        daemon's files and must not touch them."""
        if self._fd is None:
            return False
        try:
            ours, there = os.fstat(self._fd), os.stat(self.path)
        except OSError:
            return False
        return (ours.st_ino, ours.st_dev) == (there.st_ino, there.st_dev)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing drops the flock

    @property
    def held(self) -> bool:
        return self._fd is not None


def lifetime_held(path: pathlib.Path) -> bool:
    """Probe: is the lifetime lock held by some process? Call only under the start lock."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return True
            raise
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def read_holder(path: pathlib.Path) -> dict:
    try:
        raw = json.loads(path.read_bytes() or b"{}")
    except (OSError, ValueError, RecursionError):
        return {}
    return raw if isinstance(raw, dict) else {}
