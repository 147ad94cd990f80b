"""The sans-I/O protocol core: frames in, typed events out. No asyncio, no aiohttp, no I/O.

* :mod:`~comfy_async.protocol.frames`: binary frames (parse and encode);
* :mod:`~comfy_async.protocol.messages`: text frames (one tagged-union decoder);
* :mod:`~comfy_async.protocol.state`: per-connection state that attributes frames without a
  prompt id and turns undecodable frames into :class:`~comfy_async.events.MalformedFrame`.
"""

from __future__ import annotations

from comfy_async.protocol.frames import (
    Attribution,
    PreviewMetadata,
    encode_preview_image,
    encode_preview_with_metadata,
    encode_progress_text,
    parse_binary_frame,
    sniff_image_mime,
)
from comfy_async.protocol.messages import KNOWN_TYPES, decode_message, encode_message
from comfy_async.protocol.state import CLIENT_FEATURE_FLAGS, FEATURE_FLAGS_HELLO, ProtocolState

__all__ = [
    "CLIENT_FEATURE_FLAGS",
    "FEATURE_FLAGS_HELLO",
    "KNOWN_TYPES",
    "Attribution",
    "PreviewMetadata",
    "ProtocolState",
    "decode_message",
    "encode_message",
    "encode_preview_image",
    "encode_preview_with_metadata",
    "encode_progress_text",
    "parse_binary_frame",
    "sniff_image_mime",
]
