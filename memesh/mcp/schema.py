"""A validator for the subset of JSON Schema (2020-12) that memesh's tool schemas use.

Supported keywords: ``type`` (a name or a list of names), ``enum``, ``const``,
``properties``, ``required``, ``additionalProperties`` (boolean or schema), ``items``,
``minItems``, ``maxItems``, ``minLength``, ``maxLength``, ``pattern``, ``minimum``,
``maximum``. Annotation keywords (``description``, ``title``, ``default``, ``examples``)
are ignored. Any other keyword is a programming error in a tool definition and is
reported by :func:`check_schema`, which the registry runs when a tool is registered.

:func:`validate` raises :class:`memesh.errors.ValidationError` for the first problem,
with a message that starts with the path of the offending value, in the notation a
caller would use to find it: ``entities[2].name: expected a string, got a number``.
The root has the path given by the caller (``arguments`` for tool arguments).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from memesh.errors import ValidationError

_ANNOTATIONS = frozenset({"description", "title", "default", "examples", "$schema", "$comment"})
_KEYWORDS = frozenset({
    "type", "enum", "const", "properties", "required", "additionalProperties", "items",
    "minItems", "maxItems", "minLength", "maxLength", "pattern", "minimum", "maximum",
}) | _ANNOTATIONS
_TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})


def type_name(value: Any) -> str:
    """The JSON type of a decoded value, with an article, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _is_type(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, Mapping)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if name == "integer":
        return isinstance(value, int)  # 7.0 is refused: the store takes Python ints only
    return isinstance(value, (int, float))  # number


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def validate(value: Any, schema: Mapping[str, Any], path: str = "") -> None:
    """Check ``value`` against ``schema``; raise ValidationError naming the first bad path."""
    where = path or "value"
    kind = schema.get("type")
    if kind is not None:
        names = [kind] if isinstance(kind, str) else list(kind)
        if not any(_is_type(value, name) for name in names):
            wanted = " or ".join(("an " if n[0] in "aeiou" else "a ") + n for n in names)
            raise ValidationError(f"{where}: expected {wanted}, got {type_name(value)}")
    if "const" in schema and value != schema["const"]:
        raise ValidationError(f"{where}: must be {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(repr(v) for v in schema["enum"])
        raise ValidationError(f"{where}: must be one of {choices}, got {value!r}")
    if isinstance(value, str):
        _check_string(value, schema, where)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise ValidationError(f"{where}: must be at least {schema['minimum']}, got {value}")
        if "maximum" in schema and value > schema["maximum"]:
            raise ValidationError(f"{where}: must be at most {schema['maximum']}, got {value}")
    elif isinstance(value, list):
        _check_array(value, schema, path, where)
    elif isinstance(value, Mapping):
        _check_object(value, schema, path)


def _check_string(value: str, schema: Mapping[str, Any], where: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{where}: contains a lone surrogate; send valid Unicode text") from None
    if "minLength" in schema and len(value) < schema["minLength"]:
        if schema["minLength"] == 1:
            raise ValidationError(f"{where}: must not be empty")
        raise ValidationError(f"{where}: must be at least {schema['minLength']} characters long")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise ValidationError(f"{where}: must be at most {schema['maxLength']} characters long, got {len(value)}")
    if "pattern" in schema and re.search(schema["pattern"], value) is None:
        raise ValidationError(f"{where}: does not match the pattern {schema['pattern']!r}")


def _check_array(value: list[Any], schema: Mapping[str, Any], path: str, where: str) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        raise ValidationError(f"{where}: must hold at least {schema['minItems']} item(s), got {len(value)}")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise ValidationError(f"{where}: must hold at most {schema['maxItems']} items, got {len(value)}; split the call")
    items = schema.get("items")
    if isinstance(items, Mapping):
        for index, item in enumerate(value):
            validate(item, items, f"{path}[{index}]" if path else f"[{index}]")


def _check_object(value: Mapping[str, Any], schema: Mapping[str, Any], path: str) -> None:
    properties: Mapping[str, Any] = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            raise ValidationError(f"{_child(path, name)}: required field is missing")
    for name, item in value.items():
        if name in properties:
            validate(item, properties[name], _child(path, name))
            continue
        extra = schema.get("additionalProperties", True)
        if extra is False:
            known = ", ".join(properties) or "none"
            raise ValidationError(f"{_child(path, str(name))}: unknown field (known fields: {known})")
        if isinstance(extra, Mapping):
            validate(item, extra, _child(path, str(name)))


def check_schema(schema: Any, path: str = "schema") -> None:
    """Raise ValueError if ``schema`` uses anything :func:`validate` does not understand."""
    if not isinstance(schema, Mapping):
        raise ValueError(f"{path}: a schema must be an object")
    unknown = set(schema) - _KEYWORDS
    if unknown:
        raise ValueError(f"{path}: unsupported keyword(s) {sorted(unknown)}")
    kind = schema.get("type")
    names = [kind] if isinstance(kind, str) else list(kind or [])
    if any(name not in _TYPES for name in names):
        raise ValueError(f"{path}: unknown type in {kind!r}")
    for name, sub in schema.get("properties", {}).items():
        check_schema(sub, f"{path}.properties.{name}")
    if isinstance(schema.get("items"), Mapping):
        check_schema(schema["items"], f"{path}.items")
    if isinstance(schema.get("additionalProperties"), Mapping):
        check_schema(schema["additionalProperties"], f"{path}.additionalProperties")
    if "pattern" in schema:
        re.compile(schema["pattern"])
