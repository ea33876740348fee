"""Properties of the proxy's input side: however stdin arrives in chunks, the same lines
come out (long ones as OVERSIZE), and nesting is judged the same with or without the
decoder's recursion."""
from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from memesh.mcp import jsonrpc
from memesh.mcp.stdin import OVERSIZE, split_lines

LIMIT = 8


def reference(data: bytes, limit: int) -> list:
    out = []
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n") and b"\n" in line:
            raise AssertionError("splitlines split on something else")
        if len(line) > limit:
            out.append(OVERSIZE)
        elif line.strip():
            out.append(line)
    return out


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


@given(st.lists(st.sampled_from([b"a", b"b", b" ", b"\n"]), max_size=80).map(b"".join),
       st.lists(st.integers(0, 80), max_size=12))
def test_any_chunking_gives_the_lines_of_the_whole_stream(data, cuts):
    assert list(split_lines(chunked(data, cuts), LIMIT)) == reference(data, LIMIT)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='ab[]{}"\\', max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=15,
)


def depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def shallow(value):
    if isinstance(value, dict):
        return {k: {} if isinstance(v, (dict, list)) else v for k, v in value.items()}
    if isinstance(value, list):
        return [{} if isinstance(v, (dict, list)) else v for v in value]
    return value


@given(json_values)
def test_the_scan_for_too_deep_text_keeps_the_top_level_and_empties_what_is_below(value):
    assert json.loads(jsonrpc._flatten_deep(json.dumps(value))) == shallow(value)


@given(json_values, st.integers(0, 3))
def test_deeper_than_agrees_with_a_recursive_count(value, limit):
    assert jsonrpc.deeper_than(value, limit) == (depth(value) > limit)


@given(json_values, st.integers(0, 2 * jsonrpc.MAX_DEPTH))
def test_a_request_is_read_exactly_when_it_nests_no_deeper_than_the_limit(value, extra):
    params = {"v": value}
    for _ in range(extra):
        params = {"v": params}
    line = json.dumps({"jsonrpc": "2.0", "id": 5, "method": "ping", "params": params})
    message = jsonrpc.parse_line(line)
    if 1 + depth(params) <= jsonrpc.MAX_DEPTH:
        assert isinstance(message, jsonrpc.Request)
    else:
        assert isinstance(message, jsonrpc.Invalid) and message.reply["id"] == 5
