"""Binary frames: every recorded frame parses as recorded; round trips; hostile bytes."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comfy_async.errors import FrameError
from comfy_async.events import PreviewImage, ProgressText, UnknownBinary
from comfy_async.protocol.frames import (
    PREVIEW_IMAGE,
    PREVIEW_IMAGE_WITH_METADATA,
    TEXT,
    encode_preview_image,
    encode_preview_with_metadata,
    encode_progress_text,
    parse_binary_frame,
    sniff_image_mime,
)
from tests.recordings import all_received_frames

BINARY = [frame for frame in all_received_frames() if frame.kind == "binary"]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 24


class FixedOwner:
    """An attribution that always names the same prompt."""

    def __init__(self, prompt_id: str | None) -> None:
        self.prompt_id = prompt_id
        self.text_nodes: list[str] = []

    def preview_owner(self) -> str | None:
        return self.prompt_id

    def text_owner(self, node_id: str) -> str | None:
        self.text_nodes.append(node_id)
        return self.prompt_id


def test_recordings_have_every_frame_type() -> None:
    names = {frame.record["header"]["event_name"] for frame in BINARY}
    assert names == {"PREVIEW_IMAGE", "PREVIEW_IMAGE_WITH_METADATA", "TEXT"}


@pytest.mark.parametrize("frame", BINARY, ids=lambda f: f"{f.file}:{f.gseq}")
def test_recorded_frame_parses_as_recorded(frame) -> None:
    event = parse_binary_frame(frame.payload)
    decoded = frame.record["decoded"]
    name = frame.record["header"]["event_name"]
    if name == "TEXT":
        assert isinstance(event, ProgressText)
        assert event.node_id == decoded["node_id"]
        assert event.text == decoded["text"]
        return
    assert isinstance(event, PreviewImage)
    offset = decoded.get("image_bytes_offset", 8)
    assert bytes(event.image) == frame.payload[offset:]
    assert event.mime == decoded["image_sniffed_mime"]
    if name == "PREVIEW_IMAGE_WITH_METADATA":
        meta = decoded["metadata"]
        assert event.frame_type == PREVIEW_IMAGE_WITH_METADATA
        assert event.prompt_id == meta["prompt_id"]
        assert event.node_id == meta["node_id"]
        assert event.display_node_id == meta["display_node_id"]
        assert event.parent_node_id == meta["parent_node_id"]
        assert event.real_node_id == meta["real_node_id"]
    else:
        assert event.frame_type == PREVIEW_IMAGE
        assert event.prompt_id is None  # nothing attributes it without state


def test_image_is_a_zero_copy_view_of_the_frame() -> None:
    frame = encode_preview_image(JPEG, mime="image/jpeg")
    event = parse_binary_frame(frame)
    assert isinstance(event, PreviewImage)
    assert event.image.obj is frame  # a view into the very bytes received, not a copy
    frame4 = encode_preview_with_metadata(PNG, {"prompt_id": "p", "image_type": "image/png"})
    event4 = parse_binary_frame(frame4)
    assert isinstance(event4, PreviewImage)
    assert event4.image.obj is frame4


def test_attribution_fills_prompt_id_of_type_1_and_text_only() -> None:
    owner = FixedOwner("p-1")
    preview = parse_binary_frame(encode_preview_image(PNG, mime="image/png"), owner)
    text = parse_binary_frame(encode_progress_text("7", "hi"), owner)
    meta = parse_binary_frame(encode_preview_with_metadata(PNG, {"prompt_id": "own"}), owner)
    assert isinstance(preview, PreviewImage)
    assert preview.prompt_id == "p-1"
    assert isinstance(text, ProgressText)
    assert text.prompt_id == "p-1"
    assert owner.text_nodes == ["7"]
    assert isinstance(meta, PreviewImage)
    assert meta.prompt_id == "own"


def test_mime_is_sniffed_when_the_header_lies() -> None:
    lying = struct.pack(">II", PREVIEW_IMAGE, 1) + PNG  # says JPEG, carries PNG
    event = parse_binary_frame(lying)
    assert isinstance(event, PreviewImage)
    assert event.mime == "image/png"
    lying4 = encode_preview_with_metadata(JPEG, {"image_type": "image/png"})
    event4 = parse_binary_frame(lying4)
    assert isinstance(event4, PreviewImage)
    assert event4.mime == "image/jpeg"


def test_mime_falls_back_to_the_header_then_octet_stream() -> None:
    opaque = b"\x01\x02\x03\x04"
    png_coded = parse_binary_frame(struct.pack(">II", PREVIEW_IMAGE, 2) + opaque)
    unknown_code = parse_binary_frame(struct.pack(">II", PREVIEW_IMAGE, 9) + opaque)
    assert isinstance(png_coded, PreviewImage)
    assert png_coded.mime == "image/png"
    assert isinstance(unknown_code, PreviewImage)
    assert unknown_code.mime == "application/octet-stream"
    assert unknown_code.extension == ".bin"


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"GIF89a....", "image/gif"),
        (b"GIF87a....", "image/gif"),
        (b"BM......", None),
        (b"", None),
    ],
)
def test_sniff_image_mime(head: bytes, mime: str | None) -> None:
    assert sniff_image_mime(head) == mime


@pytest.mark.parametrize("event_type", [0, 2, 5, 2**32 - 1])
def test_type_2_and_unknown_types_decode_to_unknown_binary(event_type: int) -> None:
    event = parse_binary_frame(struct.pack(">I", event_type) + b"payload")
    assert isinstance(event, UnknownBinary)
    assert event.event_type == event_type
    assert bytes(event.payload) == b"payload"
    assert event.prompt_id is None


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"", "shorter than its 4-byte type"),
        (b"\x00\x00\x01", "shorter than its 4-byte type"),
        (struct.pack(">I", PREVIEW_IMAGE), "shorter than its 8-byte header"),
        (struct.pack(">II", PREVIEW_IMAGE, 1), "no image bytes"),
        (struct.pack(">I", TEXT) + b"\x00\x00", "shorter than its 8-byte header"),
        (struct.pack(">II", TEXT, 10) + b"abc", "runs past the frame end"),
        (struct.pack(">II", TEXT, 1) + b"\xff", "not valid UTF-8"),
        (struct.pack(">II", TEXT, 1) + b"1\xc3", "not valid UTF-8"),
        (struct.pack(">II", PREVIEW_IMAGE_WITH_METADATA, 99) + b"{}", "runs past the frame end"),
        (struct.pack(">II", PREVIEW_IMAGE_WITH_METADATA, 2) + b"{}", "no image bytes"),
        (struct.pack(">II", PREVIEW_IMAGE_WITH_METADATA, 3) + b"{x}" + PNG, "not valid"),
        (struct.pack(">II", PREVIEW_IMAGE_WITH_METADATA, 2) + b"[]" + PNG, "not valid"),
        (
            struct.pack(">II", PREVIEW_IMAGE_WITH_METADATA, 17) + b'{"prompt_id": 5}' + b" " + PNG,
            "not valid",
        ),
    ],
)
def test_malformed_frames_raise_frame_error(frame: bytes, reason: str) -> None:
    with pytest.raises(FrameError, match=reason):
        parse_binary_frame(frame)


def test_text_frame_with_empty_node_and_text() -> None:
    event = parse_binary_frame(encode_progress_text("", ""))
    assert isinstance(event, ProgressText)
    assert (event.node_id, event.text) == ("", "")


def test_accepts_bytearray_and_memoryview() -> None:
    frame = encode_progress_text("3", "héllo")
    for data in (bytearray(frame), memoryview(frame)):
        event = parse_binary_frame(data)
        assert isinstance(event, ProgressText)
        assert event.text == "héllo"


def test_type_1_encoder_refuses_other_formats() -> None:
    with pytest.raises(ValueError, match="JPEG or PNG"):
        encode_preview_image(b"x", mime="image/webp")


# --------------------------------------------------------------------------- properties

images = st.binary(min_size=1, max_size=512)
node_ids = st.text(max_size=40)
optional_ids = st.none() | st.text(max_size=40)


@settings(max_examples=2000)
@given(image=images, mime=st.sampled_from(["image/jpeg", "image/png"]))
def test_round_trip_type_1(image: bytes, mime: str) -> None:
    event = parse_binary_frame(encode_preview_image(image, mime=mime))
    assert isinstance(event, PreviewImage)
    assert bytes(event.image) == image
    assert event.mime == (sniff_image_mime(image) or mime)
    assert event.frame_type == PREVIEW_IMAGE


@settings(max_examples=2000)
@given(node_id=node_ids, text=st.text(max_size=200))
def test_round_trip_type_3(node_id: str, text: str) -> None:
    event = parse_binary_frame(encode_progress_text(node_id, text))
    assert isinstance(event, ProgressText)
    assert (event.node_id, event.text) == (node_id, text)


@settings(max_examples=2000)
@given(
    image=images,
    prompt_id=optional_ids,
    node_id=optional_ids,
    display=optional_ids,
    parent=optional_ids,
    real=optional_ids,
    image_type=st.sampled_from([None, "image/jpeg", "image/png"]),
)
def test_round_trip_type_4(
    image: bytes,
    prompt_id: str | None,
    node_id: str | None,
    display: str | None,
    parent: str | None,
    real: str | None,
    image_type: str | None,
) -> None:
    metadata = {
        "node_id": node_id,
        "prompt_id": prompt_id,
        "display_node_id": display,
        "parent_node_id": parent,
        "real_node_id": real,
        "image_type": image_type,
    }
    event = parse_binary_frame(encode_preview_with_metadata(image, metadata))
    assert isinstance(event, PreviewImage)
    assert bytes(event.image) == image
    assert (event.prompt_id, event.node_id, event.display_node_id) == (prompt_id, node_id, display)
    assert (event.parent_node_id, event.real_node_id) == (parent, real)
    assert event.mime == (sniff_image_mime(image) or image_type or "application/octet-stream")


@settings(max_examples=3000)
@given(data=st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_frame_error(data: bytes) -> None:
    try:
        event = parse_binary_frame(data, FixedOwner("p"))
    except FrameError:
        return
    assert isinstance(event, PreviewImage | ProgressText | UnknownBinary)


@settings(max_examples=2000)
@given(
    event_type=st.sampled_from([PREVIEW_IMAGE, TEXT, PREVIEW_IMAGE_WITH_METADATA]),
    length=st.integers(min_value=0, max_value=2**32 - 1),
    tail=st.binary(max_size=64),
)
def test_arbitrary_headers_raise_only_frame_error(
    event_type: int, length: int, tail: bytes
) -> None:
    with contextlib.suppress(FrameError):
        parse_binary_frame(struct.pack(">II", event_type, length) + tail)


def test_sniff_image_mime_reads_a_view_of_wider_items_byte_by_byte() -> None:
    jpeg = (JPEG + b"\x00" * 8)[:8]
    png = (PNG + b"\x00" * 16)[:16]
    assert sniff_image_mime(memoryview(jpeg).cast("I")) == "image/jpeg"
    assert sniff_image_mime(memoryview(png).cast("H")) == "image/png"
    assert sniff_image_mime(b"\xff\xd8") is None  # too short for the JPEG signature
