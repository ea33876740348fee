"""Agent names: how a window's agent is named, and how a name is made unique (pure).

An agent is named after its project (the git work tree's directory name), unless the
window asked for a name (``MEMESH_AGENT_NAME`` or the ``a2a_register`` tool). Names are
URL path segments (``/agents/<name>/``), so they are cleaned to lower-case letters,
digits, ``-``, ``_`` and ``.``. Two different projects with the same directory name get
``name``, ``name-2``, ``name-3``, …; a project that comes back gets its old name again.
"""
from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping

MAX_NAME = 64
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
FALLBACK = "window"


def clean(raw: str) -> str:
    """``raw`` made into a valid name (never empty)."""
    text = re.sub(r"[^a-z0-9._-]+", "-", raw.strip().lower()).strip("-._")
    return text[:MAX_NAME].rstrip("-._") or FALLBACK


def is_valid(name: str) -> bool:
    return bool(NAME_RE.match(name)) and not name.endswith((".", "-"))


def base_name(project: str) -> str:
    """The name a project suggests: its directory's name, cleaned."""
    return clean(posixpath.basename(project.rstrip("/")) if project else FALLBACK)


def unique_name(base: str, project: str, known: Mapping[str, str]) -> str:
    """The name for ``project``: ``base`` unless another project holds it, then ``base-2``, …

    ``known`` maps every existing agent name to the project it belongs to (``""`` for
    agents named explicitly). A name already held by the same project is reused.
    """
    for number in range(1, len(known) + 2):
        suffix = "" if number == 1 else f"-{number}"
        candidate = base[: MAX_NAME - len(suffix)].rstrip("-._") + suffix
        holder = known.get(candidate)
        if holder is None or holder == project:
            return candidate
    raise AssertionError("unreachable: len(known) + 1 candidates cannot all be taken")
