"""The base Struct of every REST payload model: frozen, keyword-only, tolerant of unknown fields.

Every model of ``comfy_async.models`` derives from :class:`Model`. Unknown fields are ignored
(the server and custom nodes evolve, design invariant 12), and every field the server may omit
has a default. :data:`JsonBuffer` is what the ``decode_*`` functions of the models accept.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec

__all__ = ["JsonBuffer", "Model"]

JsonBuffer: TypeAlias = bytes | bytearray | memoryview | str
"""A JSON response body: the bytes read from the socket, or text."""


class Model(msgspec.Struct, frozen=True, kw_only=True):
    """Base of the REST payload models: frozen, keyword-only, unknown fields ignored."""
