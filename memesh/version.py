"""Version compatibility between a memesh client and the daemon it finds.

This module owns the pure core of the VersionManager:

* the two numbers that define the contract: :data:`PROTOCOL_VERSION` (the wire contract
  between a proxy, CLI or library client and the daemon) and :data:`MIN_CLIENT_VERSION`
  (the oldest client package this daemon agrees to serve);
* :class:`Version`, a SemVer 2.0.0 value whose ordering is SemVer precedence, and
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

_ALNUM_HYPHEN: Final[frozenset[str]] = frozenset(
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-"
)
_DIGITS: Final[frozenset[str]] = frozenset("0123456789")


# --------------------------------------------------------------------------- Version


@dataclass(frozen=True, eq=False)
class Version:
    """A parsed SemVer 2.0.0 version, or an invalid one that remembers its raw text.

    Build instances with :func:`parse_version`. Equality, ordering and hashing all use
    :meth:`precedence_key`, so build metadata is ignored (``1.0.0+a == 1.0.0+b``) and
    every invalid version sorts below every valid one; the order is total.
    """

    major: int = 0
    minor: int = 0
    patch: int = 0
    prerelease: tuple[str, ...] = ()
    build: tuple[str, ...] = ()
    raw: str = ""
    valid: bool = True

    def precedence_key(self) -> tuple:
        """Return a sort key whose natural tuple order is SemVer precedence.

        Invalid versions map to ``(0, raw)`` and valid ones to ``(1, major, minor, patch,
        prerelease_key)``, which puts all invalid versions first, ordered by raw text.
        A release's prerelease key ``(1,)`` beats any prerelease key ``(0, ...)``; within
        a prerelease, tuple comparison makes the longer list win on an equal prefix.
        """
        if not self.valid:
            return (0, self.raw)
        if self.prerelease:
            pre: tuple = (0, *(_identifier_key(part) for part in self.prerelease))
        else:
            pre = (1,)
        return (1, self.major, self.minor, self.patch, pre)

    def __str__(self) -> str:
        """The canonical SemVer text for a valid version, the raw text otherwise."""
        if not self.valid:
            return self.raw
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text

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


def _identifier_key(part: str) -> tuple:
    # Numeric identifiers carry no leading zeros, so (length, text) orders them exactly
    # as their integer values would, without int() and its 4300-digit limit.
    if set(part) <= _DIGITS:
        return (0, len(part), part)
    return (1, part)


def _is_numeric(part: str) -> bool:
    """A SemVer numeric identifier: ASCII digits, no leading zero unless it is ``0``."""
    return bool(part) and set(part) <= _DIGITS and (part == "0" or part[0] != "0")


def _identifiers(text: str) -> tuple[str, ...] | None:
    """Split dot-separated identifiers; None if any is empty or has a foreign character."""
    parts = tuple(text.split("."))
    if all(part and set(part) <= _ALNUM_HYPHEN for part in parts):
        return parts
    return None


def _show(value: object) -> str:
    """Text for a value in a message, whatever it is."""
    if isinstance(value, str):
        return value
    try:
        return repr(value)
    except Exception:  # a hostile __repr__ must not turn a value into a crash
        return f"<{type(value).__name__}>"


def parse_version(text: object) -> Version:
    """Parse ``MAJOR.MINOR.PATCH[-prerelease][+build]`` (a leading ``v`` is tolerated).

    Surrounding whitespace is ignored. Anything else that is not SemVer 2.0.0 (``"dev"``,
    ``""``, ``"1.2"``, ``"1.2.3.4"``, ``"01.2.3"``, ``None``, ``42``) gives a Version with
    ``valid=False`` that keeps the raw text (the ``repr`` of a non-string). This
    function never raises.
    """
    raw = _show(text)
    invalid = Version(raw=raw, valid=False)
    if not isinstance(text, str):
        return invalid
    body = text.strip()
    if body[:1] in ("v", "V"):
        body = body[1:]

    body, plus, build_text = body.partition("+")
    build: tuple[str, ...] = ()
    if plus:
        parsed_build = _identifiers(build_text)
        if parsed_build is None:
            return invalid
        build = parsed_build

    core, minus, pre_text = body.partition("-")
    prerelease: tuple[str, ...] = ()
    if minus:
        parsed_pre = _identifiers(pre_text)
        if parsed_pre is None:
            return invalid
        if any(set(part) <= _DIGITS and not _is_numeric(part) for part in parsed_pre):
            return invalid  # a numeric identifier with a leading zero
        prerelease = parsed_pre

    numbers = core.split(".")
    if len(numbers) != 3 or not all(_is_numeric(n) for n in numbers):
        return invalid
    try:
        major, minor, patch = (int(n) for n in numbers)
    except ValueError:  # more digits than int() accepts: not a version anyone released
        return invalid
    return Version(major, minor, patch, prerelease, build, raw=raw, valid=True)


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
