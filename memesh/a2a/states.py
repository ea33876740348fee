"""The A2A task state machine, as pure functions of values.

States are the A2A v1.0 ``TASK_STATE_*`` names. Transitions a memesh task may take::

    SUBMITTED      -> WORKING, INPUT_REQUIRED, AUTH_REQUIRED, COMPLETED, FAILED, CANCELED, REJECTED
    WORKING        -> INPUT_REQUIRED, AUTH_REQUIRED, COMPLETED, FAILED, CANCELED, REJECTED
    INPUT_REQUIRED -> WORKING, COMPLETED, FAILED, CANCELED, REJECTED   (the sender answered, or it ended)
    AUTH_REQUIRED  -> WORKING, COMPLETED, FAILED, CANCELED, REJECTED
    COMPLETED, FAILED, CANCELED, REJECTED: terminal, nothing follows

A state "moving" to itself is no transition (a repeated status update) and is allowed
for non-terminal states only.
"""
from __future__ import annotations

from memesh.errors import ValidationError

SUBMITTED = "TASK_STATE_SUBMITTED"
WORKING = "TASK_STATE_WORKING"
COMPLETED = "TASK_STATE_COMPLETED"
FAILED = "TASK_STATE_FAILED"
CANCELED = "TASK_STATE_CANCELED"
INPUT_REQUIRED = "TASK_STATE_INPUT_REQUIRED"
REJECTED = "TASK_STATE_REJECTED"
AUTH_REQUIRED = "TASK_STATE_AUTH_REQUIRED"

STATES = (SUBMITTED, WORKING, COMPLETED, FAILED, CANCELED, INPUT_REQUIRED, REJECTED, AUTH_REQUIRED)
TERMINAL = frozenset({COMPLETED, FAILED, CANCELED, REJECTED})
INTERRUPTED = frozenset({INPUT_REQUIRED, AUTH_REQUIRED})
#: States in which the task waits for the window it was sent to (its inbox).
PENDING = frozenset({SUBMITTED, WORKING})

_ENDINGS = {COMPLETED, FAILED, CANCELED, REJECTED}
ALLOWED: dict[str, frozenset[str]] = {
    SUBMITTED: frozenset({WORKING, INPUT_REQUIRED, AUTH_REQUIRED} | _ENDINGS),
    WORKING: frozenset({INPUT_REQUIRED, AUTH_REQUIRED} | _ENDINGS),
    INPUT_REQUIRED: frozenset({WORKING} | _ENDINGS),
    AUTH_REQUIRED: frozenset({WORKING} | _ENDINGS),
    COMPLETED: frozenset(),
    FAILED: frozenset(),
    CANCELED: frozenset(),
    REJECTED: frozenset(),
}

#: What a window may answer with ``a2a_reply``: short names to states.
REPLY_STATES = {"completed": COMPLETED, "input-required": INPUT_REQUIRED, "failed": FAILED, "rejected": REJECTED}


def is_terminal(state: str) -> bool:
    return state in TERMINAL


def can_move(current: str, new: str) -> bool:
    """Whether a task in ``current`` may take the status ``new``."""
    if current not in ALLOWED or new not in ALLOWED:
        return False
    if current == new:
        return current not in TERMINAL
    return new in ALLOWED[current]


def may_save(stored: str | None, new: str) -> bool:
    """Whether a task stored in ``stored`` (None: not stored yet) may be saved in ``new``.

    Saving again in the same state (more history, an artifact) is always allowed; a change
    of state must be a transition :func:`can_move` allows, so terminal states stay final.
    """
    return stored is None or stored == new or can_move(stored, new)


class RefusedTransition(ValidationError):
    """A save that would move a stored task along a transition the state machine forbids."""


def check_save(task_id: str, stored: str | None, new: str) -> None:
    """Raise :class:`RefusedTransition` unless :func:`may_save` allows it (the stores call this
    inside the transaction that then saves)."""
    if not may_save(stored, new):
        raise RefusedTransition(f"task {task_id} is {short_name(stored or '')}; it cannot become {short_name(new)}")


def short_name(state: str) -> str:
    """``TASK_STATE_INPUT_REQUIRED`` -> ``input-required`` (how tools and the CLI show states)."""
    return state.removeprefix("TASK_STATE_").lower().replace("_", "-")


def from_short(name: str) -> str:
    """The inverse of :func:`short_name`; accepts the full name too. ValueError if unknown."""
    full = name if name.startswith("TASK_STATE_") else "TASK_STATE_" + name.strip().upper().replace("-", "_")
    if full not in ALLOWED:
        raise ValueError(f"unknown task state {name!r}; known: {', '.join(short_name(s) for s in STATES)}")
    return full
