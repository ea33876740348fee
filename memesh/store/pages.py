"""How read pages of the graph stay under the client's output ceiling: sizes, the filling
of an entity too large for one page, and the positions cursors hold.

Sizes are characters of JSON with ASCII escapes, so non-Latin text counts more, as it
does in tokens. Pure functions only; :mod:`memesh.store.graph` reads the rows.
"""
from __future__ import annotations

import json
from typing import Any

Json = dict[str, Any]

MAX_RESULT_CHARS = 60_000   # compact JSON; ~80,000 once indented, under 25k tokens
ENVELOPE = 200              # keys of the page itself and its cursor
MARKER_ROOM = 160           # the "[memesh: …]" line in a clipped entity


def _is_count(p: Any, least: int = 0) -> bool:
    return isinstance(p, int) and not isinstance(p, bool) and p >= least


def is_offset(p: Any) -> bool:
    """An offset into the entities, or [offset, pieces of that entity already shown]."""
    return _is_count(p) or (isinstance(p, list) and len(p) == 2 and _is_count(p[0]) and _is_count(p[1], 1))


def split_offset(p: Any) -> tuple[int, int]:
    """(offset, pieces of the entity at offset already shown) from a cursor position."""
    return (p, 0) if isinstance(p, int) else (p[0], p[1])


def cursor_position(offset: int, skip: int) -> Any:
    """What a cursor holds: the offset alone, or [offset, pieces of that entity shown]."""
    return offset if not skip else [offset, skip]


def is_graph_position(p: Any) -> bool:
    if not (isinstance(p, list) and len(p) == 2 and p[0] in ("e", "o", "r")):
        return False
    if p[0] == "e":
        return isinstance(p[1], str)
    if p[0] == "o":   # [name, observations of it already shown]
        return isinstance(p[1], list) and len(p[1]) == 2 and isinstance(p[1][0], str) and _is_count(p[1][1], 1)
    return isinstance(p[1], list) and len(p[1]) == 3 and all(isinstance(x, (int, str)) for x in p[1])


def size(value: object) -> int:
    """Characters ``value`` adds to a JSON array, separator included.

    Measured with ASCII escapes, so non-Latin text counts more, as it does in tokens.
    """
    return len(json.dumps(value)) + 2


def prefix_within(text: str, room: int) -> str:
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if size(text[:mid]) <= room:
            low = mid
        else:
            high = mid - 1
    return text[:low]


def fill_entity(entity: Json, relations: list[Json], skip: int, room: int) -> tuple[Json | None, list[Json], int]:
    """Show what fits in ``room`` of an entity too large for one page.

    The entity's pieces are its observations, then ``relations``; the first ``skip`` were
    shown on earlier pages. Returns the entity with the observations shown (None when
    none of its observations is left), the relations shown, and the pieces shown so far in
    all (``skip`` plus this page's). Every call with a page's room shows at least one piece.
    """
    observations = entity["observations"]
    kept: list[str] = []
    position = skip
    shown_entity: Json | None = None
    if position < len(observations):
        used = size({**entity, "observations": []}) + MARKER_ROOM
        while position < len(observations) and used + size(observations[position]) <= room:
            kept.append(observations[position])
            used += size(observations[position])
            position += 1
        if not kept and position < len(observations):   # one observation larger than a page
            kept.append(prefix_within(observations[position], max(room - used - 20, 0)) + " …[cut]")
            position += 1
        if position < len(observations):
            hidden = len(observations) - position
            kept.append(f"[memesh: {hidden} of {len(observations)} observations not shown yet: result size "
                        f"limit reached; call again with nextCursor for the rest]")
        shown_entity = {**entity, "observations": kept}
        room -= size(shown_entity)
    shown_relations: list[Json] = []
    if position >= len(observations):
        for relation in relations[position - len(observations):]:
            if size(relation) > room:
                break
            shown_relations.append(relation)
            room -= size(relation)
            position += 1
    return shown_entity, shown_relations, position
