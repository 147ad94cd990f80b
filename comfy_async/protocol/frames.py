"""Binary WebSocket frames: parse and encode (protocol doc §3.3). Pure: no I/O, no asyncio.

Every binary frame starts with a 4-byte big-endian event type:

====  ===========================  ================================================================
type  name                         layout after the type
====  ===========================  ================================================================
1     PREVIEW_IMAGE                u32 image format (1 JPEG, 2 PNG), then the image to the end
2     UNENCODED_PREVIEW_IMAGE      never on the wire; decodes to an ``UnknownBinary`` event
3     TEXT                         u32 length N, N bytes of UTF-8 node id, then UTF-8 text
4     PREVIEW_IMAGE_WITH_METADATA  u32 length M, M bytes of UTF-8 JSON metadata, then the image
====  ===========================  ================================================================

:func:`parse_binary_frame` raises :class:`~comfy_async.errors.FrameError` (and nothing else) on a
truncated or inconsistent frame; the connection-level
:class:`~comfy_async.protocol.state.ProtocolState` turns that into a
:class:`~comfy_async.events.MalformedFrame` event. Image payloads stay zero-copy views of the frame.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Final, Protocol

import msgspec

from comfy_async.errors import FrameError
from comfy_async.events import BinaryEvent, PreviewImage, ProgressText, UnknownBinary

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "PREVIEW_IMAGE",
    "PREVIEW_IMAGE_WITH_METADATA",
    "TEXT",
    "UNENCODED_PREVIEW_IMAGE",
    "Attribution",
    "PreviewMetadata",
    "encode_preview_image",
    "encode_preview_with_metadata",
    "encode_progress_text",
    "parse_binary_frame",
    "sniff_image_mime",
]

PREVIEW_IMAGE: Final = 1
UNENCODED_PREVIEW_IMAGE: Final = 2
TEXT: Final = 3
PREVIEW_IMAGE_WITH_METADATA: Final = 4

#: Image format codes of type-1 frames.
FORMAT_MIME: Final = {1: "image/jpeg", 2: "image/png"}
MIME_FORMAT: Final = {mime: code for code, mime in FORMAT_MIME.items()}
OCTET_STREAM: Final = "application/octet-stream"

_U32 = struct.Struct(">I")
_U32_PAIR = struct.Struct(">II")


class PreviewMetadata(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The JSON metadata of a type-4 frame."""

    node_id: str | None = None
    prompt_id: str | None = None
    display_node_id: str | None = None
    parent_node_id: str | None = None
    real_node_id: str | None = None
    image_type: str | None = None


_METADATA_DECODER: Final = msgspec.json.Decoder(PreviewMetadata)


class Attribution(Protocol):
    """Tells which prompt a frame without a prompt id belongs to (see ``protocol.state``)."""

    def preview_owner(self) -> str | None:
        """The prompt a type-1 preview belongs to, or ``None``."""
        ...

    def text_owner(self, node_id: str) -> str | None:
        """The prompt a TEXT frame from ``node_id`` belongs to, or ``None``."""
        ...


def sniff_image_mime(data: bytes | bytearray | memoryview) -> str | None:
    """Return the MIME type the leading bytes of an image show, or ``None`` if unrecognised."""
    if type(data) is memoryview and (data.format != "B" or data.ndim != 1):
        data = data.cast("B")
    return _sniff(data)


def _sniff(data: bytes | bytearray | memoryview) -> str | None:
    # ``data`` holds bytes (not a view of wider items). JPEG first, by its three bytes: it is
    # what ComfyUI sends by default, and indexing costs less than a copy of the head.
    if len(data) >= 3 and data[0] == 0xFF and data[1] == 0xD8 and data[2] == 0xFF:
        return "image/jpeg"
    head = bytes(data[:12])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    return None


def parse_binary_frame(
    data: bytes | bytearray | memoryview, attribution: Attribution | None = None
) -> BinaryEvent:
    """Decode one binary frame into an event.

    ``attribution`` supplies the prompt id of frames that carry none (type-1 previews and TEXT);
    without it those events have ``prompt_id=None``.

    Raises:
        FrameError: the frame is shorter than its headers say, its lengths are inconsistent, its
            text is not UTF-8 or its metadata is not a JSON object of the expected shape.

    """
    view = memoryview(data)
    if type(data) is not bytes and (view.format != "B" or view.ndim != 1):
        view = view.cast("B")  # a view of wider items: read it byte by byte
    size = len(view)
    if size < 4:
        raise FrameError(f"binary frame of {size} bytes is shorter than its 4-byte type")
    if size >= 8:  # both header words at once: type-4 previews need the second one
        event_type, length = _U32_PAIR.unpack_from(view, 0)
        if event_type == PREVIEW_IMAGE_WITH_METADATA:  # the frame a preview-metadata client gets
            return _parse_preview_with_metadata(view, length)
    else:
        (event_type,) = _U32.unpack_from(view, 0)
        if event_type == PREVIEW_IMAGE_WITH_METADATA:
            _need_header(view, "PREVIEW_IMAGE_WITH_METADATA")  # raises: too short
    if event_type == PREVIEW_IMAGE:
        return _parse_preview(view, attribution)
    if event_type == TEXT:
        return _parse_text(view, attribution)
    return UnknownBinary(event_type=event_type, payload=view[4:])


def _need_header(view: memoryview, name: str) -> int:
    if len(view) < 8:
        raise FrameError(f"{name} frame of {len(view)} bytes is shorter than its 8-byte header")
    return int(_U32_PAIR.unpack_from(view, 0)[1])


def _parse_preview(view: memoryview, attribution: Attribution | None) -> PreviewImage:
    format_code = _need_header(view, "PREVIEW_IMAGE")
    image = view[8:]
    if not image:
        raise FrameError("PREVIEW_IMAGE frame has no image bytes")
    mime = _sniff(image) or FORMAT_MIME.get(format_code, OCTET_STREAM)
    owner = attribution.preview_owner() if attribution is not None else None
    return PreviewImage(image=image, mime=mime, prompt_id=owner, frame_type=PREVIEW_IMAGE)


def _parse_preview_with_metadata(view: memoryview, length: int) -> PreviewImage:
    end = 8 + length
    if end > len(view):
        raise FrameError(
            f"PREVIEW_IMAGE_WITH_METADATA metadata length {length} runs past the frame end "
            f"({len(view) - 8} bytes left)"
        )
    try:
        meta = _METADATA_DECODER.decode(view[8:end])
    except (msgspec.DecodeError, RecursionError) as exc:
        raise FrameError(f"PREVIEW_IMAGE_WITH_METADATA metadata is not valid: {exc}") from None
    image = view[end:]
    if not image:
        raise FrameError("PREVIEW_IMAGE_WITH_METADATA frame has no image bytes")
    mime = _sniff(image) or meta.image_type or OCTET_STREAM
    return PreviewImage(
        image=image,
        mime=mime,
        prompt_id=meta.prompt_id,
        node_id=meta.node_id,
        display_node_id=meta.display_node_id,
        parent_node_id=meta.parent_node_id,
        real_node_id=meta.real_node_id,
        frame_type=PREVIEW_IMAGE_WITH_METADATA,
    )


def _parse_text(view: memoryview, attribution: Attribution | None) -> ProgressText:
    length = _need_header(view, "TEXT")
    end = 8 + length
    if end > len(view):
        raise FrameError(
            f"TEXT node id length {length} runs past the frame end ({len(view) - 8} bytes left)"
        )
    try:
        node_id = str(view[8:end], "utf-8")
        text = str(view[end:], "utf-8")
    except UnicodeDecodeError as exc:
        raise FrameError(f"TEXT frame is not valid UTF-8: {exc.reason}") from None
    owner = attribution.text_owner(node_id) if attribution is not None else None
    return ProgressText(node_id=node_id, text=text, prompt_id=owner)


# --------------------------------------------------------------------------- encoding


def encode_preview_image(image: bytes | memoryview, *, mime: str = "image/jpeg") -> bytes:
    """Build a type-1 frame (``mime`` is ``image/jpeg`` or ``image/png``)."""
    try:
        format_code = MIME_FORMAT[mime]
    except KeyError:
        raise ValueError(f"type-1 previews carry JPEG or PNG, not {mime!r}") from None
    return _U32_PAIR.pack(PREVIEW_IMAGE, format_code) + bytes(image)


def encode_preview_with_metadata(
    image: bytes | memoryview, metadata: Mapping[str, object] | PreviewMetadata
) -> bytes:
    """Build a type-4 frame from an image and its metadata (node and prompt ids, image type)."""
    meta = msgspec.json.encode(metadata)
    return _U32_PAIR.pack(PREVIEW_IMAGE_WITH_METADATA, len(meta)) + meta + bytes(image)


def encode_progress_text(node_id: str, text: str) -> bytes:
    """Build a type-3 (TEXT) frame."""
    node = node_id.encode()
    return _U32_PAIR.pack(TEXT, len(node)) + node + text.encode()
