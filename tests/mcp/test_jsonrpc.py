"""JSON-RPC framing: classification of incoming lines and one-line serialization."""
from __future__ import annotations

import json

import pytest

from memesh.mcp import jsonrpc
from memesh.mcp.jsonrpc import (
    INVALID_REQUEST,
    MAX_LINE_BYTES,
    PARSE_ERROR,
    Invalid,
    Notification,
    Request,
    Response,
    parse_line,
)


def error_of(message):
    assert isinstance(message, Invalid), message
    return message.reply["id"], message.reply["error"]["code"]


@pytest.mark.parametrize("request_id", [0, 7, -3, "abc", "", 2**62])
def test_a_request_keeps_its_id_string_or_integer(request_id):
    message = parse_line(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "ping"}))
    assert message == Request(request_id, "ping", None)


def test_a_message_without_id_is_a_notification():
    message = parse_line('{"jsonrpc":"2.0","method":"notifications/initialized"}')
    assert message == Notification("notifications/initialized", None)


def test_params_are_kept_as_sent():
    message = parse_line('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":[1]}}}')
    assert message.params == {"name": "x", "arguments": {"a": [1]}}


def test_a_peer_response_is_recognised_and_not_treated_as_a_request():
    assert parse_line('{"jsonrpc":"2.0","id":4,"result":{}}') == Response(4, {}, None)
    assert isinstance(parse_line('{"jsonrpc":"2.0","id":4,"error":{"code":1,"message":"x"}}'), Response)


@pytest.mark.parametrize("line", ["", "   ", "\n", "\r\n", b"\n"])
def test_a_blank_line_is_ignored(line):
    assert parse_line(line) is None


@pytest.mark.parametrize("line", ["{bad", '{"jsonrpc":"2.0",', "[1,", "nul", '{"a":NaN}', '{"a":Infinity}', "'x'"])
def test_invalid_json_is_a_parse_error_with_null_id(line):
    assert error_of(parse_line(line)) == (None, PARSE_ERROR)


def test_bytes_that_are_not_utf8_are_a_parse_error_answered_with_the_id_when_it_can_be_read():
    assert error_of(parse_line(b'{"jsonrpc":"2.0","id":1,"method":"\xff"}')) == (1, PARSE_ERROR)
    assert error_of(parse_line(b'{"jsonrpc":"2.0","id":"\xff","method":"ping"}')) == ("\ufffd", PARSE_ERROR)
    assert error_of(parse_line(b'{"jsonrpc":"2.0","id":1,\xff')) == (None, PARSE_ERROR)


def test_bad_utf8_inside_a_notification_is_dropped_unanswered():
    assert parse_line(b'{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"reason":"\xc3("}}') is None


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_a_request_nested_too_deep_is_refused_with_its_id_wherever_the_id_sits(depth):
    deep = "[" * depth + "]" * depth
    before = '{"jsonrpc":"2.0","id":"deep","method":"tools/call","params":{"name":"x","arguments":{"a":%s}}}' % deep
    after = '{"method":"tools/call","params":{"name":"x","arguments":{"a":%s}},"jsonrpc":"2.0","id":"deep"}' % deep
    for line in (before, after):
        assert error_of(parse_line(line)) == ("deep", INVALID_REQUEST)
    assert parse_line('{"jsonrpc":"2.0","method":"n","params":{"a":%s}}' % deep) is None  # a notification: no answer


def test_nesting_up_to_the_limit_is_read_and_one_level_more_is_refused():
    def line(levels):  # the message object and params are two levels
        return '{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":%s}}' % ("[" * (levels - 2) + "]" * (levels - 2))
    assert isinstance(parse_line(line(jsonrpc.MAX_DEPTH)), jsonrpc.Request)
    assert error_of(parse_line(line(jsonrpc.MAX_DEPTH + 1))) == (1, INVALID_REQUEST)


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = "[{" * 10_000
    assert isinstance(parse_line('{"jsonrpc":"2.0","id":1,"method":"ping","params":{"s":"%s"}}' % text), jsonrpc.Request)


def test_an_unclosed_deep_line_is_a_parse_error():
    assert error_of(parse_line("[" * 100_000)) == (None, PARSE_ERROR)


def test_absurdly_deep_nesting_is_a_parse_error_not_a_crash():
    assert error_of(parse_line("[" * 100_000 + "]" * 100_000))[1] in (PARSE_ERROR, INVALID_REQUEST)


@pytest.mark.parametrize("line", ['[{"jsonrpc":"2.0","id":1,"method":"ping"}]', "[]"])
def test_a_batch_is_refused_as_an_invalid_request(line):
    assert error_of(parse_line(line)) == (None, INVALID_REQUEST)


@pytest.mark.parametrize("line", ["1", '"text"', "null", "true", "3.5"])
def test_a_value_that_is_not_an_object_is_an_invalid_request(line):
    assert error_of(parse_line(line)) == (None, INVALID_REQUEST)


@pytest.mark.parametrize("bad_id", [None, True, False, 1.5, [1], {"a": 1}])
def test_a_request_with_an_unusable_id_is_refused_with_null_id(bad_id):
    line = json.dumps({"jsonrpc": "2.0", "id": bad_id, "method": "ping"})
    assert error_of(parse_line(line)) == (None, INVALID_REQUEST)


def test_an_integral_float_id_is_read_as_that_integer():
    assert parse_line('{"jsonrpc":"2.0","id":7.0,"method":"ping"}') == Request(7, "ping", None)


@pytest.mark.parametrize("message", [
    {"id": 3, "method": "ping"},
    {"jsonrpc": "1.0", "id": 3, "method": "ping"},
    {"jsonrpc": "2.0", "id": 3, "method": 5},
    {"jsonrpc": "2.0", "id": 3, "method": ""},
    {"jsonrpc": "2.0", "id": 3, "method": "ping", "params": "x"},
    {"jsonrpc": "2.0", "id": 3, "method": "ping", "result": {}},
    {"jsonrpc": "2.0", "id": 3},
])
def test_a_malformed_request_with_a_readable_id_is_refused_with_that_id(message):
    assert error_of(parse_line(json.dumps(message))) == (3, INVALID_REQUEST)


def test_a_line_over_the_size_limit_is_refused_unread():
    line = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"' + b"a" * MAX_LINE_BYTES + b'"}}'
    reply = parse_line(line)
    assert error_of(reply) == (None, INVALID_REQUEST)
    assert reply == Invalid(jsonrpc.oversize_reply())


def test_a_line_of_exactly_the_limit_plus_its_newline_is_accepted():
    head, tail = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"', b'"}}'
    line = head + b"a" * (MAX_LINE_BYTES - len(head) - len(tail)) + tail
    assert len(line) == MAX_LINE_BYTES
    assert isinstance(parse_line(line + b"\n"), Request)
    assert isinstance(parse_line(line.decode() + "\n"), Request)


def test_the_oversize_reply_is_one_line_naming_the_limit():
    text = jsonrpc.dumps(jsonrpc.oversize_reply())
    assert "\n" not in text and "10 MiB" in text


def test_dumps_writes_one_line_with_newlines_escaped():
    text = jsonrpc.dumps(jsonrpc.result(1, {"text": "a\nb\r\nc\u2028d"}))
    assert "\n" not in text and "\r" not in text
    assert json.loads(text)["result"]["text"] == "a\nb\r\nc\u2028d"


def test_dumps_keeps_non_ascii_text_readable_and_valid_utf8():
    text = jsonrpc.dumps(jsonrpc.result("é", {"name": "Zoë 東京 🚀"}))
    assert "Zoë 東京 🚀" in text
    assert json.loads(text.encode("utf-8").decode("utf-8"))["result"]["name"] == "Zoë 東京 🚀"


def test_dumps_escapes_a_lone_surrogate_instead_of_failing():
    text = jsonrpc.dumps(jsonrpc.result(1, {"name": "bad\ud800"}))
    text.encode("utf-8")
    assert json.loads(text)["result"]["name"] == "bad\ud800"


def test_an_error_reply_has_code_message_and_only_the_data_given():
    assert jsonrpc.error(None, -32601, "no") == {"jsonrpc": "2.0", "id": None, "error": {"code": -32601, "message": "no"}}
    assert jsonrpc.error(2, -32022, "v", {"supported": []})["error"]["data"] == {"supported": []}


def test_a_notification_of_ours_has_no_id():
    assert jsonrpc.notification("notifications/tools/list_changed") == {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}


def test_ids_one_and_string_one_are_different_keys():
    assert jsonrpc.id_key(1) != jsonrpc.id_key("1")


def test_every_code_we_send_is_a_standard_or_mcp_code():
    standard = {-32700, -32600, -32601, -32602, -32603}
    assert jsonrpc.PROTOCOL_CODES - standard == {jsonrpc.RESOURCE_NOT_FOUND, jsonrpc.UNSUPPORTED_PROTOCOL_VERSION}
