"""bounded_echo: a write's echo is complete while small, and bounded, in order, when large."""
from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from memesh.mcp.graph_tools import bounded_echo

ITEMS = st.lists(st.fixed_dictionaries({"name": st.text(max_size=40), "observations": st.lists(st.text(max_size=300), max_size=8)}),
                 max_size=40)


def compact(value):
    return json.dumps(value, separators=(",", ":"))


def brief(item):
    return {**item, "observations": []}


@given(ITEMS, st.integers(min_value=2, max_value=5000))
@settings(max_examples=300, deadline=None)
def test_the_echo_is_the_input_when_it_fits_and_otherwise_a_bounded_prefix_in_brief(items, limit):
    listed, complete = bounded_echo(items, brief, limit)
    if complete:
        assert listed == items and len(compact(items)) <= limit
    else:
        assert len(compact(items)) > limit
        assert listed == [brief(item) for item in items[:len(listed)]]
        assert len(compact(listed)) <= limit
