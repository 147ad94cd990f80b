"""Saving server-provided files to disk without trusting their names (design invariant 11).

A file name or subfolder that comes from the server is a path an attacker may control. Before
anything is written:

* :func:`safe_filename` reads backslashes as ``/`` and keeps the basename; it refuses NUL, an
  absolute path, a drive letter, an empty name, ``.``, ``..`` and names over 255 bytes (``a..b``
  is fine);
* :func:`safe_subfolder` splits a subfolder the same way and refuses ``..`` anywhere;
* :func:`destination` joins them under a folder and checks that the resolved parent is still
  inside the folder (a symlinked subfolder cannot lead out).

:func:`write_atomically` then streams the bytes into a temporary file beside the destination and
renames it into place: a partial file never sits under the final name, and an existing symlink at
the destination is replaced, never followed. Every blocking call runs in a worker thread.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread

from comfy_async.errors import UnsafePathError

if TYPE_CHECKING:
    from collections.abc import AsyncIterable

__all__ = ["MAX_NAME_BYTES", "destination", "safe_filename", "safe_subfolder", "write_atomically"]

MAX_NAME_BYTES: Final = 255
_DRIVE: Final = re.compile(r"^[A-Za-z]:")
_FLUSH_AT: Final = 1024 * 1024
_IOV_MAX: Final = 512  # chunks per writev call (the system's limit is 1024 or more)
_HAS_WRITEV: Final = hasattr(os, "writev")
_CREATE: Final = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
)


def _check_path_text(name: str) -> str:
    if "\x00" in name:
        raise UnsafePathError(name, "it contains a NUL character")
    normal = name.replace("\\", "/")
    if normal.startswith("/"):
        raise UnsafePathError(name, "it is an absolute path")
    if _DRIVE.match(normal):
        raise UnsafePathError(name, "it has a drive letter")
    return normal


def _check_part(name: str, part: str) -> None:
    if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise UnsafePathError(name, f"a name is longer than {MAX_NAME_BYTES} bytes")


def safe_filename(name: str) -> str:
    """The basename of a server-provided file name, or :class:`UnsafePathError`."""
    base = _check_path_text(name).rsplit("/", 1)[-1]
    if base in ("", ".", ".."):
        raise UnsafePathError(name, "it names no file")
    _check_part(name, base)
    return base


def safe_subfolder(subfolder: str) -> tuple[str, ...]:
    """The parts of a server-provided subfolder (``""`` → none), or :class:`UnsafePathError`."""
    parts = tuple(part for part in _check_path_text(subfolder).split("/") if part not in ("", "."))
    for part in parts:
        if part == "..":
            raise UnsafePathError(subfolder, "it climbs out of its folder ('..')")
        _check_part(subfolder, part)
    return parts


def destination(folder: Path, filename: str, subfolder: str = "") -> Path:
    """Where a server file goes under ``folder``: checked names, no way out of ``folder``."""
    return folder.joinpath(*safe_subfolder(subfolder), safe_filename(filename))


def _check_inside(real_root: Path, folder: Path, target: Path) -> None:
    real = folder.resolve()
    if real != real_root and real_root not in real.parents:
        raise UnsafePathError(str(target), "its folder leads outside the target folder")


def _prepare(root: Path, target: Path, overwrite: bool) -> tuple[int, str]:
    """Create the parent, check containment and the existing file; open the temporary file."""
    root.mkdir(parents=True, exist_ok=True)
    real_root = root.resolve()
    parent = target.parent
    # Check the deepest existing folder before creating anything below it: a symlinked
    # subfolder must not get folders created outside the root.
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    _check_inside(real_root, existing, target)
    parent.mkdir(parents=True, exist_ok=True)
    _check_inside(real_root, parent, target)
    if not overwrite and os.path.lexists(target):
        raise UnsafePathError(str(target), "the file exists (pass overwrite=True to replace it)")
    return _open_temporary(parent)


def _open_temporary(folder: Path) -> tuple[int, str]:
    """A new file in ``folder``, open for writing, with the mode any new file of the user gets.

    Not ``tempfile.mkstemp``, whose files are always 0600: a saved image must be as readable as
    any file the user's programs write (0666 less the umask, applied by the system).
    """
    for _ in range(100):
        name = str(folder / f".comfy-{secrets.token_hex(8)}.part")
        try:
            return os.open(name, _CREATE, 0o666), name
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {folder}")


def _write_all(descriptor: int, chunks: list[bytes]) -> None:
    """Write ``chunks`` as they are (one ``writev`` where there is one: no joined copy)."""
    views = [memoryview(chunk) for chunk in chunks if chunk]
    while views:
        batch = views[:_IOV_MAX]
        written = _writev(descriptor, batch)
        if not written:
            raise OSError(f"no byte written to file descriptor {descriptor}")
        # drop what was written, keeping the rest of a chunk cut short
        while written and views:
            size = len(views[0])
            if written >= size:
                written -= size
                del views[0]
            else:
                views[0] = views[0][written:]
                written = 0


def _writev(descriptor: int, views: list[memoryview]) -> int:
    if _HAS_WRITEV:
        return os.writev(descriptor, views)
    return os.write(descriptor, views[0])


def _finish(
    descriptor: int, chunks: list[bytes], temporary: str, target: Path, overwrite: bool
) -> None:
    """Write the last ``chunks``, close, and rename the temporary file into place."""
    try:
        _write_all(descriptor, chunks)
    finally:
        os.close(descriptor)
    if not overwrite and os.path.lexists(target):
        raise UnsafePathError(str(target), "the file exists (pass overwrite=True to replace it)")
    # rename replaces a symlink at the target instead of writing through it
    os.replace(temporary, target)


def _discard(descriptor: int | None, temporary: str) -> None:
    if descriptor is not None:
        os.close(descriptor)
    Path(temporary).unlink(missing_ok=True)


async def write_atomically(
    chunks: AsyncIterable[bytes], target: Path, *, root: Path, overwrite: bool = False
) -> Path:
    """Stream ``chunks`` into ``target`` (inside ``root``) through a temporary file and a rename.

    The chunks are written as they came (no copy joins them) once a megabyte is pending, and
    the last ones are written, the file closed and renamed in one trip to a worker thread. On
    any failure or cancellation the temporary file is removed and ``target`` is untouched.

    Raises:
        UnsafePathError: ``target`` would be outside ``root``, or exists and ``overwrite`` is
            false.

    """
    descriptor, temporary = await anyio.to_thread.run_sync(_prepare, root, target, overwrite)
    owned: int | None = descriptor  # closed here on failure, until _finish takes it
    try:
        pending: list[bytes] = []
        size = 0
        async for chunk in chunks:
            pending.append(chunk)
            size += len(chunk)
            if size >= _FLUSH_AT:
                await anyio.to_thread.run_sync(_write_all, descriptor, pending)
                pending, size = [], 0
        owned = None  # _finish closes it, whatever happens
        await anyio.to_thread.run_sync(_finish, descriptor, pending, temporary, target, overwrite)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_discard, owned, temporary)
        raise
    return target
