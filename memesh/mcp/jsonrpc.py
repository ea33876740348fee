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
from typing import Any, NamedTuple, Union

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

RequestId = Union[str, int]


# Message kinds are NamedTuples rather than dataclasses: this module is on the stdio
# proxy's start-up path, and importing dataclasses costs several milliseconds there.
class Request(NamedTuple):
    """A call that expects exactly one reply carrying the same ``id``."""

    id: RequestId
    method: str
    params: dict[str, Any] | list[Any] | None = None


class Notification(NamedTuple):
    """A one-way message: it is never answered, whatever it contains."""

    method: str
    params: dict[str, Any] | list[Any] | None = None


class Response(NamedTuple):
    """A peer's answer to a request of ours (``result`` or ``error``); we send none, so it is ignored."""

    id: RequestId | None
    result: Any = None
    error: Any = None


class Invalid(NamedTuple):
    """A line that is not an acceptable message; ``reply`` is the error object we owe for it."""

    reply: dict[str, Any]


Message = Union[Request, Notification, Response, Invalid]


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
    """A hashable key that keeps ``1`` and ``"1"`` apart (they are different ids)."""
    return (isinstance(value, str), value)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _loads(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


def parse_line(line: str | bytes) -> Message | None:
    """Classify one line from the peer. Blank lines give ``None``; never raises."""
    if isinstance(line, (bytes, bytearray)):
        line = bytes(line).removesuffix(b"\n").removesuffix(b"\r")
        if len(line) > MAX_LINE_BYTES:
            return Invalid(oversize_reply())
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Invalid(error(None, PARSE_ERROR, f"Parse error: the line is not valid UTF-8 ({exc.reason} at byte {exc.start})"))
    else:
        line = line.removesuffix("\n").removesuffix("\r")
        if len(line) * 4 > MAX_LINE_BYTES and len(line.encode("utf-8", "surrogatepass")) > MAX_LINE_BYTES:
            return Invalid(oversize_reply())
    if not line.strip():
        return None
    try:
        obj = _loads(line)
    except (ValueError, RecursionError) as exc:
        return Invalid(error(None, PARSE_ERROR, f"Parse error: {_short(exc)}"))
    return classify(obj)


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

