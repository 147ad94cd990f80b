"""Tiny, dependency-free image codecs for the fake server: PNG encode/decode and a constant JPEG.

The fake server must hand out real, valid images (outputs under ``/view``, previews in binary
frames) without Pillow, which is not a runtime dependency. This module owns:

* :func:`encode_png`: a solid-colour (or row-supplied) 8-bit RGB/RGBA PNG, zlib-compressed;
* :func:`decode_png`: enough of PNG to read 8-bit, non-interlaced grey/RGB/grey+alpha/RGBA
  images (what ``/upload/mask`` needs to apply an alpha channel);
* :data:`PREVIEW_JPEG`: a 32×16 baseline JPEG made once (quality 95) and stored as bytes.

It does no I/O and knows nothing about the server.
"""

from __future__ import annotations

import base64
import struct
import zlib
from dataclasses import dataclass
from typing import Final

__all__ = ["PREVIEW_JPEG", "DecodedPng", "decode_png", "encode_png", "solid_png"]

_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
#: Largest side of an image the fake draws: outputs stay cheap whatever the workflow asks for.
MAX_SIDE: Final = 2048

# A 32x16 solid-colour JPEG (quality 95), generated once; the same size the probe nodes of the
# recordings use for their previews.
PREVIEW_JPEG: Final = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAIBAQEBAQIBAQECAgICAgQDAgICAgUEBAMEBgUGBgYFBgYGBwkIBgcJBwYG"
    "CAsICQoKCgoKBggLDAsKDAkKCgr/2wBDAQICAgICAgUDAwUKBwYHCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoK"
    "CgoKCgoKCgoKCgoKCgoKCgoKCgr/wAARCAAQACADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcI"
    "CQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRol"
    "JicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ip"
    "qrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAA"
    "AAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLR"
    "ChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaX"
    "mJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEA"
    "PwD8a6KKK/0APzMKKKKAP//Z"
)

_CHANNELS: Final = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type → channels (8-bit only)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def encode_png(
    width: int, height: int, rows: bytes, *, alpha: bool = False, text: dict[str, str] | None = None
) -> bytes:
    """Encode raw 8-bit RGB (or RGBA) rows, top to bottom, without row filters.

    ``text`` adds ``tEXt`` chunks (ComfyUI stores the prompt and workflow there).
    """
    stride = width * (4 if alpha else 3)
    if len(rows) != stride * height:
        raise ValueError(f"expected {stride * height} bytes of pixels, got {len(rows)}")
    raw = b"".join(b"\x00" + rows[y * stride : (y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    chunks = [_chunk(b"IHDR", header)]
    for key, value in (text or {}).items():
        chunks.append(_chunk(b"tEXt", key.encode("latin-1") + b"\x00" + value.encode("latin-1")))
    chunks.append(_chunk(b"IDAT", zlib.compress(raw, 1)))  # level 1, as ComfyUI's previews
    chunks.append(_chunk(b"IEND", b""))
    return _SIGNATURE + b"".join(chunks)


def solid_png(
    width: int, height: int, color: int = 0, *, text: dict[str, str] | None = None
) -> bytes:
    """A solid ``0xRRGGBB`` PNG; sides are clamped to ``1..MAX_SIDE``."""
    width = max(1, min(int(width), MAX_SIDE))
    height = max(1, min(int(height), MAX_SIDE))
    pixel = bytes(((color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF))
    return encode_png(width, height, pixel * (width * height), text=text)


@dataclass(frozen=True, slots=True)
class DecodedPng:
    """An 8-bit image as RGBA rows (alpha 255 where the file had none), plus its text chunks."""

    width: int
    height: int
    rgba: bytes
    text: dict[str, str]


def _unfilter(data: bytes, width: int, height: int, channels: int) -> bytes:
    stride = width * channels
    out = bytearray()
    previous = bytearray(stride)
    pos = 0
    for _ in range(height):
        kind = data[pos]
        line = bytearray(data[pos + 1 : pos + 1 + stride])
        pos += 1 + stride
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
            elif kind == 4:
                estimate = left + up - corner
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + pred) & 0xFF
            elif kind != 0:
                raise ValueError(f"unknown PNG row filter {kind}")
        out += line
        previous = line
    return bytes(out)


def decode_png(data: bytes) -> DecodedPng:
    """Decode an 8-bit non-interlaced grey, grey+alpha, RGB or RGBA PNG.

    Raises:
        ValueError: not a PNG, or a form this small decoder does not read (palette, 16-bit,
            interlaced).

    """
    if not data.startswith(_SIGNATURE):
        raise ValueError("not a PNG")
    pos = len(_SIGNATURE)
    idat = bytearray()
    text: dict[str, str] = {}
    width = height = depth = colour = interlace = -1
    while pos + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"tEXt" and b"\x00" in body:
            key, _, value = body.partition(b"\x00")
            text[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"IEND":
            break
    if depth != 8 or interlace != 0 or colour not in _CHANNELS:
        raise ValueError(f"unsupported PNG form (depth {depth}, colour {colour})")
    channels = _CHANNELS[colour]
    pixels = _unfilter(zlib.decompress(bytes(idat)), width, height, channels)
    rgba = bytearray()
    for i in range(0, len(pixels), channels):
        px = pixels[i : i + channels]
        if channels == 1:
            rgba += bytes((px[0], px[0], px[0], 255))
        elif channels == 2:
            rgba += bytes((px[0], px[0], px[0], px[1]))
        elif channels == 3:
            rgba += px + b"\xff"
        else:
            rgba += px
    return DecodedPng(width, height, bytes(rgba), text)
