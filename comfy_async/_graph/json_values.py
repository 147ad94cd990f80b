"""JSON values of workflows: the value alias, a deep copy, and encoding that loses no integer.

Workflows are plain JSON. Seeds can exceed 64 bits (``max`` is ``2**64 - 1`` and some nodes allow
more, protocol doc §4.6): orjson refuses to encode them and decodes them as floats (losing
digits), and files written by other tools may hold ``NaN``. :func:`loads` therefore decodes with
msgspec (exact integers of any size) and :func:`dumps` encodes with orjson, each falling back to
the standard library for what they cannot represent, so a load → dump round trip never fails or
changes a number. This module does no file I/O.
"""

from __future__ import annotations

import json
from typing import TypeAlias

import msgspec
import orjson

__all__ = ["JsonValue", "clone", "dumps", "loads"]

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None
"""A JSON value as Python holds it: ``None``, ``bool``, ``int``, ``float``, ``str``, list, dict."""


_DECODER = msgspec.json.Decoder()


def loads(data: str | bytes | bytearray | memoryview) -> JsonValue:
    """Decode JSON text, keeping integers of any size exactly (and ``NaN``, if present).

    Raises ``ValueError`` (``json.JSONDecodeError``) when the text is not JSON.
    """
    try:
        value: JsonValue = _DECODER.decode(data)
    except msgspec.DecodeError:
        # msgspec refuses NaN/Infinity; the standard library keeps them (and raises its own
        # JSONDecodeError, also a ValueError, for text that is not JSON at all).
        text = bytes(data) if isinstance(data, memoryview | bytearray) else data
        value = json.loads(text)
    return value


def dumps(value: object, *, indent: bool = False) -> bytes:
    """Encode compact JSON (UTF-8); values orjson cannot encode go through the standard library."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else 0)
    except TypeError:
        # "Integer exceeds 64-bit range": keep the number exactly as the server would read it.
        separators = (",", ": ") if indent else (",", ":")
        return json.dumps(
            value, ensure_ascii=False, separators=separators, indent=2 if indent else None
        ).encode()


def clone(value: JsonValue) -> JsonValue:
    """A deep copy of a JSON value (dicts and lists are copied, scalars are shared)."""
    if isinstance(value, dict):
        return {key: clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [clone(item) for item in value]
    return value
