"""Version compatibility between a memesh client and the daemon it finds.

This module owns the pure core of the VersionManager:

* the two numbers that define the contract: :data:`PROTOCOL_VERSION` (the wire contract
  between a proxy, CLI or library client and the daemon) and :data:`MIN_CLIENT_VERSION`
  (the oldest client package this daemon agrees to serve);
* :class:`Version`, a PEP 440 value (Python package versions, read by ``packaging``, so
  ``0.2.0rc1``, ``0.2.0.dev3`` and ``0.2.0.post1`` order as pip orders them), and
  :func:`parse_version`, which never raises: garbage such as ``"dev"`` or ``None`` becomes
  an *invalid* Version that still sorts, below every valid one;
* :func:`decide`, the one function that says whether a client uses the running daemon,
  asks it to upgrade, or refuses to talk to it, with a sentence telling the user what to
  run.

Nothing here performs I/O; the daemon and the client feed it the values they exchanged
in the hello (or read from the lock record) and act on the returned :class:`Decision`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from memesh._version import __version__

__all__ = [
    "MIN_CLIENT_VERSION",
    "PROTOCOL_VERSION",
    "REFUSE",
    "UPGRADE",
    "USE",
    "Decision",
    "PeerVersion",
    "Version",
    "decide",
    "parse_version",
    "this_peer",
]

# PROTOCOL_VERSION and MIN_CLIENT_VERSION live in memesh._version (import-free, so the
# stdio proxy can read them cheaply); they are re-exported here.
from memesh._version import MIN_CLIENT_VERSION, PROTOCOL_VERSION  # noqa: E402

USE: Final[str] = "use"
"""Talk to the running daemon."""
UPGRADE: Final[str] = "upgrade"
"""Ask the running (older, protocol-compatible) daemon to hand over to this version."""
REFUSE: Final[str] = "refuse"
"""Do not talk to the running daemon; tell the user what to run instead."""

# --------------------------------------------------------------------------- Version

MAX_VERSION_TEXT: Final[int] = 256
"""Longer text is not a version anyone released; it is invalid without being parsed."""


class Version:
    """A PEP 440 version (as ``pip`` and ``packaging`` read it), or an invalid one.

    Build instances with :func:`parse_version`. A valid version wraps a
    :class:`packaging.version.Version`, so ``0.2.0rc1 < 0.2.0 < 0.2.0.post1`` and
    ``0.2.0.dev3 < 0.2.0a1``, exactly as the installer orders them. An invalid version
    remembers its raw text for messages. Equality, ordering and hashing use
    :meth:`precedence_key`: every invalid version sorts below every valid one, invalid
    ones among themselves by their text, so the order is total.
    """

    __slots__ = ("parsed", "raw")

    def __init__(self, parsed: object | None, raw: str):
        self.parsed = parsed  # a packaging.version.Version, or None when invalid
        self.raw = raw

    def __reduce__(self):
        return (parse_version, (self.raw,))

    @property
    def valid(self) -> bool:
        return self.parsed is not None

    def precedence_key(self) -> tuple:
        if self.parsed is None:
            return (0, self.raw)
        return (1, self.parsed)

    def __str__(self) -> str:
        """The normalised PEP 440 text for a valid version, the raw text otherwise."""
        return self.raw if self.parsed is None else str(self.parsed)

    def __repr__(self) -> str:
        if self.valid:
            return f"Version({str(self)!r})"
        return f"Version(invalid={self.raw!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.precedence_key() == other.precedence_key()

    def __hash__(self) -> int:
        return hash(self.precedence_key())

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.precedence_key() < other.precedence_key()

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.precedence_key() <= other.precedence_key()

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.precedence_key() > other.precedence_key()

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.precedence_key() >= other.precedence_key()


def _show(value: object) -> str:
    """Text for a value in a message, whatever it is."""
    if isinstance(value, str):
        return value
    try:
        return repr(value)
    except Exception:  # a hostile __repr__ must not turn a value into a crash
        return f"<{type(value).__name__}>"


def parse_version(text: object) -> Version:
    """Parse a PEP 440 version (``0.2.0``, ``0.2.0rc1``, ``0.2.0.dev3``, ``v1.0.post1+local``).

    Surrounding whitespace and a leading ``v`` are tolerated, as pip tolerates them.
    Anything else (``"dev"``, ``""``, ``None``, ``42``, text over
    :data:`MAX_VERSION_TEXT` characters) gives a Version with ``valid=False`` that keeps
    the raw text (the ``repr`` of a non-string). This function never raises.
    """
    raw = _show(text)
    if not isinstance(text, str) or len(text) > MAX_VERSION_TEXT:
        return Version(None, raw)
    from packaging.version import Version as Pep440  # ~3 ms; only when versions differ

    try:
        # ValueError covers InvalidVersion and int() refusing a component of thousands of digits.
        return Version(Pep440(text), raw)
    except ValueError:
        return Version(None, raw)


# --------------------------------------------------------------------------- decide


@dataclass(frozen=True)
class PeerVersion:
    """What one side of a connection says about itself.

    ``version`` is the package version, ``protocol`` the :data:`PROTOCOL_VERSION` it
    speaks, ``build`` an id of the installed code (so a reinstall with changed code is
    noticed), ``min_client_version`` the oldest client a daemon serves. Values read from
    a peer are not trusted: any field may hold garbage, and :func:`decide` copes.
    """

    version: str
    protocol: int
    build: str = ""
    min_client_version: str = ""


@dataclass(frozen=True)
class Decision:
    """What a client should do about the daemon it found.

    ``action`` is :data:`USE`, :data:`UPGRADE` or :data:`REFUSE`; ``reason`` says why, for
    logs; ``advice`` is a full sentence naming the command the user should run, or ``""``
    when there is nothing to do.
    """

    action: str
    reason: str
    advice: str = ""


def this_peer(build: str = "") -> PeerVersion:
    """The PeerVersion of the memesh installed in this process."""
    return PeerVersion(
        version=__version__,
        protocol=PROTOCOL_VERSION,
        build=build,
        min_client_version=MIN_CLIENT_VERSION,
    )


def _protocol(value: object) -> int | None:
    # bool is an int subclass, but True is not a protocol number.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _build_id(value: object) -> str:
    if value is None:
        return ""
    return _show(value)


def _refuse_protocol(client: object, daemon: object) -> Decision:
    client_proto, daemon_proto = _protocol(client), _protocol(daemon)
    reason = f"client protocol {_show(client)} differs from daemon protocol {_show(daemon)}"
    if client_proto is not None and daemon_proto is not None:
        if client_proto > daemon_proto:
            return Decision(
                REFUSE,
                reason,
                "The running memesh daemon is older than this memesh and speaks an "
                "older protocol; run `memesh daemon upgrade` to replace it.",
            )
        return Decision(
            REFUSE,
            reason,
            "This memesh is older than the running daemon and speaks an older protocol; "
            "upgrade it with `pip install -U memesh`, or run `memesh daemon stop` to let "
            "this version start its own daemon.",
        )
    return Decision(
        REFUSE,
        reason + " (unreadable protocol number)",
        "The running memesh daemon did not report a protocol this memesh understands; "
        "run `memesh daemon stop` to let this version start its own daemon, or upgrade "
        "memesh with `pip install -U memesh`.",
    )


def decide(client: PeerVersion, daemon: PeerVersion, *, auto_upgrade: bool = True) -> Decision:
    """Decide whether ``client`` may use ``daemon``, should ask it to upgrade, or refuses.

    The rules, first match wins:

    1. Protocols differ (or either is not an int): REFUSE, advising
       ``memesh daemon upgrade`` when the daemon is the older side, and
       ``pip install -U memesh`` or ``memesh daemon stop`` when the client is.
    2. The daemon's ``min_client_version`` and the client's version are both valid and
       the client is older: REFUSE, advising ``pip install -U memesh``.
    3. Both versions valid and the client newer: UPGRADE, or USE with advice to run
       ``memesh daemon upgrade`` when ``auto_upgrade`` is off.
    4. Same version, different non-empty builds (code reinstalled): USE, advising
       ``memesh daemon restart``.
    5. Either version invalid: USE, noting the versions could not be compared.
    6. Otherwise: USE, nothing to advise.

    Never raises, whatever the peers hold.
    """
    client_proto = _protocol(client.protocol)
    if client_proto is None or client_proto != _protocol(daemon.protocol):
        return _refuse_protocol(client.protocol, daemon.protocol)

    mine = parse_version(client.version)
    theirs = parse_version(daemon.version)
    minimum = parse_version(daemon.min_client_version)

    if minimum.valid and mine.valid and mine < minimum:
        return Decision(
            REFUSE,
            f"client {mine} is older than the daemon's minimum client version {minimum}",
            f"This memesh ({mine}) is older than the running daemon accepts ({minimum} or "
            "newer); upgrade it with `pip install -U memesh`.",
        )

    if mine.valid and theirs.valid and mine > theirs:
        reason = f"client {mine} is newer than daemon {theirs}"
        if auto_upgrade:
            return Decision(UPGRADE, reason + "; asking the daemon to upgrade")
        return Decision(
            USE,
            reason + "; automatic upgrade is off",
            f"This memesh ({mine}) is newer than the running daemon ({theirs}); run "
            "`memesh daemon upgrade` to replace the daemon.",
        )

    client_build, daemon_build = _build_id(client.build), _build_id(daemon.build)
    if mine == theirs and client_build and daemon_build and client_build != daemon_build:
        return Decision(
            USE,
            f"same version {mine} but build {client_build} differs from the daemon's "
            f"build {daemon_build}",
            "The installed memesh code changed since the daemon started; run "
            "`memesh daemon restart` to load it.",
        )

    if not (mine.valid and theirs.valid):
        return Decision(
            USE,
            f"versions could not be compared (client {str(mine)!r}, daemon "
            f"{str(theirs)!r}); the protocol matches",
        )

    if mine < theirs:
        return Decision(USE, f"daemon {theirs} is newer than client {mine}; the protocol matches")
    return Decision(USE, f"client and daemon run compatible versions ({mine})")
