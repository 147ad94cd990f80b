"""Preview frames written to a folder, one file per frame, under names safe for any node id.

Node ids are opaque strings chosen by the server and its node packs (they may hold ``:``, ``.``
or worse, protocol doc §3.2), so only letters, digits, ``_``, ``.`` and ``-`` of them reach a
file name; the extension comes from the frame's image type. Used by ``run --previews`` and
``watch --previews``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

if TYPE_CHECKING:
    from pathlib import Path

    from comfy_async.events import PreviewImage

__all__ = ["write_preview"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


async def write_preview(folder: Path, stem: str, preview: PreviewImage) -> Path:
    """Write ``preview`` as ``folder/STEM-NODE.EXT`` (the folder is created); return the path.

    ``stem`` is the caller's (a prompt id prefix and a frame number); an existing file of that
    name is replaced. Cancelling may leave the file partly written.
    """
    node = _UNSAFE.sub("_", preview.node_id or "").strip(".") or "node"
    path = folder / f"{stem}-{node}{preview.extension}"
    await anyio.to_thread.run_sync(_write, folder, path, preview.image)
    return path


def _write(folder: Path, path: Path, image: memoryview) -> None:
    """Create the folder and write the frame's bytes in place (no copy of them)."""
    folder.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        file.write(image)
