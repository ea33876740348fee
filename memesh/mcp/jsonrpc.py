"""JSON-RPC 2.0 framing for the MCP stdio wire: one message per line.

Wire format
-----------
Every message is one JSON object on one line, UTF-8, terminated by ``\\n``. Newlines
inside strings are escaped by the serializer, so a line never contains a raw newline.
Batches (JSON arrays) are not part of MCP and are refused.

* request       ``{"jsonrpc":"2.0","id":<str|int>,"method":<str>,"params"?:<object|array>}``
* notification  ``{"jsonrpc":"2.0","method":<str>,"params"?:...}``  (no ``id``; never answered)
* response      ``{"jsonrpc":"2.0","id":...,"result":<object>}``
* error reply   ``{"jsonrpc":"2.0","id":<id|null>,"error":{"code":int,"message":str,"data"?:any}}``

:func:`parse_line` turns one raw line into exactly one of :class:`Request`,
:class:`Notification`, :class:`Response` (a peer's answer), :class:`Invalid` (carrying the
error reply we owe) or ``None`` (a blank line). It never raises. :func:`dumps` is the
only serializer. Nothing here does I/O.
"""
from __future__ import annotations

import json
import math
import re
from collections import namedtuple

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing on the proxy's start-up path
if TYPE_CHECKING:
    from typing import Any, Union

JSONRPC_VERSION = "2.0"

# Standard JSON-RPC 2.0 codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

# MCP codes (the spec reserves -32020…-32099; -32002 predates that allocation).
RESOURCE_NOT_FOUND = -32002
UNSUPPORTED_PROTOCOL_VERSION = -32022

#: Every code this server sends. memesh defines no codes of its own: failures of a tool
#: are tool results with ``isError`` (MCP), never JSON-RPC errors.
PROTOCOL_CODES = frozenset({
    PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR,
    RESOURCE_NOT_FOUND, UNSUPPORTED_PROTOCOL_VERSION,
})

# A line larger than this is discarded unread and answered with INVALID_REQUEST: it bounds
# the memory one window can make the server (or the daemon) hold for a single message.
MAX_LINE_BYTES = 10 * 1024 * 1024

# Arrays and objects nested deeper than this are refused (INVALID_REQUEST, with the id when
# it can be read). MCP messages nest a handful of levels; the bound keeps every later step
# (validation, pickling to the daemon, storing) far from Python's recursion limit, and a
# message too deep for the decoder itself is still answered, not a crash.
MAX_DEPTH = 128

if TYPE_CHECKING:
    RequestId = Union[str, int]
    Message = Union["Request", "Notification", "Response", "Invalid"]


# Message kinds are plain namedtuples: this module is on the stdio proxy's start-up path,
# where dataclasses or typing.NamedTuple (which imports typing and compiles every field's
# annotation) cost several milliseconds.
class Request(namedtuple("Request", "id method params", defaults=(None,))):
    """A call that expects exactly one reply carrying the same ``id``.

    ``id``: str or int; ``method``: str; ``params``: a dict, a list or None.
    """

    __slots__ = ()


class Notification(namedtuple("Notification", "method params", defaults=(None,))):
    """A one-way message: it is never answered, whatever it contains (``params`` as in a request)."""

    __slots__ = ()


class Response(namedtuple("Response", "id result error", defaults=(None, None))):
    """A peer's answer to a request of ours (``result`` or ``error``); we send none, so it is ignored."""

    __slots__ = ()


class Invalid(namedtuple("Invalid", "reply")):
    """A line that is not an acceptable message; ``reply`` is the error object (a dict) we owe for it."""

    __slots__ = ()


class RpcError(Exception):
    """Raised by method handlers; the dispatcher turns it into an error reply.

    ``code`` is a JSON-RPC code, ``message`` one sentence, ``data`` optional JSON.
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(code, message, data)
        self.code = code
        self.message = message
        self.data = data

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def is_valid_id(value: Any) -> bool:
    """MCP ids are strings or integers (a number with no fraction); never null or bool."""
    if isinstance(value, bool):
        return False
    if isinstance(value, str) or isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


def id_key(value: RequestId) -> tuple[bool, Any]:
    """A hashable key that keeps ``1`` and ``"1"`` apart (they are different ids); ``7.0`` is ``7``."""
    return (isinstance(value, str), _normal_id(value))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _loads(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


def parse_line(line: str | bytes) -> Message | None:
    """Classify one line from the peer; never raises.

    ``None`` means there is nothing to answer: a blank line, or a notification (or a
    peer's response) that cannot be used. A request that cannot be used is answered with
    its id whenever the id can still be read (bad UTF-8, nesting too deep).
    """
    bad_utf8 = None
    if isinstance(line, (bytes, bytearray)):
        line = bytes(line).removesuffix(b"\n").removesuffix(b"\r")
        if len(line) > MAX_LINE_BYTES:
            return Invalid(oversize_reply())
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad_utf8 = f"Parse error: the line is not valid UTF-8 ({exc.reason} at byte {exc.start})"
            line = line.decode("utf-8", "replace")
    else:
        line = line.removesuffix("\n").removesuffix("\r")
        if len(line) * 4 > MAX_LINE_BYTES and len(line.encode("utf-8", "surrogatepass")) > MAX_LINE_BYTES:
            return Invalid(oversize_reply())
    if not line.strip():
        return None
    try:
        obj, deep = _decode(line)
    except ValueError as exc:
        return Invalid(error(None, PARSE_ERROR, bad_utf8 or f"Parse error: {_short(exc)}"))
    message = classify(obj)
    if bad_utf8 is not None:
        return _refuse(message, PARSE_ERROR, bad_utf8)
    if deep:
        return _refuse(message, INVALID_REQUEST, f"Invalid Request: arrays and objects nest more than {MAX_DEPTH} levels deep; "
                                                 f"memesh reads at most {MAX_DEPTH}")
    return message


def _refuse(message: Message, code: int, text: str) -> Message | None:
    """The answer owed for a readable but unusable message: requests get ``code`` with their id."""
    if isinstance(message, Request):
        return Invalid(error(message.id, code, text))
    if isinstance(message, Invalid):
        return message if code != PARSE_ERROR else Invalid(error(None, code, text))
    return None  # a notification or a response: never answered


def _decode(text: str) -> tuple[Any, bool]:
    """The JSON value of ``text`` and whether it nests deeper than :data:`MAX_DEPTH`.

    A value too deep for the decoder is decoded with every container nested in the top
    level replaced by ``{}`` (so its id and method can still be read); ``ValueError`` if
    it is not JSON (a too-deep part is checked only for balance).
    """
    try:
        obj = _loads(text)
    except RecursionError:
        return _loads(_flatten_deep(text)), True
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return obj, False  # cannot nest deeper than it has brackets
    return obj, deeper_than(obj, MAX_DEPTH)


def deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays/objects nest more than ``limit`` levels in ``value`` (iteratively)."""
    if not isinstance(value, (dict, list)):
        return False
    if limit < 1:
        return True
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[{]+|[\]}]+')


def _flatten_deep(text: str) -> str:
    """``text`` with every array/object inside the top-level value replaced by ``{}``.

    A scan without recursion (strings skipped whole, runs of brackets counted at once),
    used only for text the decoder found too deep. Malformed text stays malformed.
    """
    parts, depth, start, kept = [], 0, -1, 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token[0] == '"':
            continue
        if token[0] in "[{":
            if depth <= 1 < depth + len(token):
                start = match.start() + (1 - depth)
            depth += len(token)
        else:
            if depth - len(token) <= 1 < depth:
                end = match.start() + (depth - 1)
                parts += [text[kept:start], "{}"]
                kept = end
            depth -= len(token)
            if depth < 0:
                break
    if depth > 0:
        raise ValueError("an array or object is never closed")
    parts.append(text[kept:])
    return "".join(parts)


def classify(obj: Any) -> Message:
    """Classify an already-decoded JSON value (see :func:`parse_line`)."""
    if isinstance(obj, list):
        return Invalid(error(None, INVALID_REQUEST, "Invalid Request: batches are not supported; send one message per line"))
    if not isinstance(obj, dict):
        return Invalid(error(None, INVALID_REQUEST, f"Invalid Request: expected a JSON object, got {_json_type(obj)}"))
    has_id = "id" in obj
    raw_id = obj.get("id")
    good_id = has_id and is_valid_id(raw_id)
    reply_id = _normal_id(raw_id) if good_id else None
    if obj.get("jsonrpc") != JSONRPC_VERSION:
        return Invalid(error(reply_id, INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"'))
    if "method" in obj:
        method = obj["method"]
        if "result" in obj or "error" in obj:
            return Invalid(error(reply_id, INVALID_REQUEST, 'Invalid Request: a request cannot carry "result" or "error"'))
        if not isinstance(method, str) or not method:
            return Invalid(error(reply_id, INVALID_REQUEST, 'Invalid Request: "method" must be a non-empty string'))
        params = obj.get("params")
        if "params" in obj and not isinstance(params, (dict, list)):
            return Invalid(error(reply_id, INVALID_REQUEST, 'Invalid Request: "params" must be an object'))
        if not has_id:
            return Notification(method, params)
        if not good_id:
            return Invalid(error(None, INVALID_REQUEST, f'Invalid Request: "id" must be a string or an integer, got {_json_type(raw_id)}'))
        return Request(reply_id, method, params)
    if "result" in obj or "error" in obj:
        if "result" in obj and "error" in obj:
            return Invalid(error(None, INVALID_REQUEST, 'Invalid Request: a response carries "result" or "error", not both'))
        return Response(reply_id, obj.get("result"), obj.get("error"))
    return Invalid(error(reply_id, INVALID_REQUEST, 'Invalid Request: "method" is missing'))


def _normal_id(value: Any) -> RequestId:
    # 7.0 is the integer 7 on the wire; echo it as the peer is most likely to match it.
    if isinstance(value, float):
        return int(value)
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def result(request_id: RequestId, value: dict[str, Any]) -> dict[str, Any]:
    """A success reply."""
    return {"jsonrpc": JSONRPC_VERSION, "id": request_id, "result": value}


def error(request_id: RequestId | None, code: int, message: str, data: Any = None) -> dict[str, Any]:
    """An error reply (``request_id`` is ``None`` when the id could not be read)."""
    body: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        body["data"] = data
    return {"jsonrpc": JSONRPC_VERSION, "id": request_id, "error": body}


def notification(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A notification of ours (progress, log message, list changed, …)."""
    msg: dict[str, Any] = {"jsonrpc": JSONRPC_VERSION, "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def dumps(message: dict[str, Any]) -> str:
    """Serialize one message to one line (no trailing newline), valid UTF-8.

    Non-ASCII text is written as is; a string holding an unpaired surrogate (which
    UTF-8 cannot encode) makes the whole line fall back to ``\\u`` escapes instead.
    """
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(message, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text


def oversize_reply() -> dict[str, Any]:
    """The error reply for a line longer than :data:`MAX_LINE_BYTES` (its id is unknowable)."""
    return error(
        None,
        INVALID_REQUEST,
        f"Invalid Request: message larger than {MAX_LINE_BYTES // (1024 * 1024)} MiB was discarded; send smaller requests",
        {"maxBytes": MAX_LINE_BYTES},
    )

