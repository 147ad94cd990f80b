"""Where the command line saves output files, and the one rule for a name already taken.

``run`` and ``download`` behave alike: a file whose name already exists in the output folder is
kept, not overwritten, and reported with one message that names ``--overwrite``. (A re-run that
the server answers from its cache hands out the very same files, so an existing file is most
likely that output.) With ``--overwrite`` it is replaced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import anyio

from comfy_async._transport.rest.disk import destination
from comfy_async.models.files import FileRef

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

__all__ = ["kept_message", "split_existing"]

F = TypeVar("F", bound=FileRef)


async def split_existing(
    files: Iterable[F], folder: Path, *, overwrite: bool
) -> tuple[list[F], list[Path]]:
    """The files to download, and the paths kept because a file of that name exists."""
    fresh: list[F] = []
    kept: list[Path] = []
    for file in files:
        target = destination(folder, file.filename, file.subfolder)
        if not overwrite and await anyio.Path(target).exists():
            kept.append(target)
        else:
            fresh.append(file)
    return fresh, kept


def kept_message(path: Path) -> str:
    """What the command line says of a file it did not overwrite."""
    return f"kept {path}: a file of that name exists (--overwrite replaces it)"
