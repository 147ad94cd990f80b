"""Safe names and atomic writes for server-provided files (no network)."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from comfy_async._transport.rest.disk import (
    destination,
    safe_filename,
    safe_subfolder,
    write_atomically,
)
from comfy_async.errors import UnsafePathError


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", "a/..", "/etc/passwd", "\\evil.png", "C:\\x.png", "c:x.png", "a\0b.png",
     "x" * 256, "é" * 128],
)  # fmt: skip
def test_unsafe_file_names(name: str) -> None:
    with pytest.raises(UnsafePathError):
        safe_filename(name)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("test..png", "test..png"), ("a/b.png", "b.png"), ("..\\..\\x.png", "x.png"),
     ("../../x.png", "x.png"), ("x" * 255, "x" * 255), ("ünï.png", "ünï.png")],
)  # fmt: skip
def test_safe_file_names(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_subfolders() -> None:
    assert safe_subfolder("") == ()
    assert safe_subfolder("a/b\\c/./") == ("a", "b", "c")
    for bad in ("..", "a/../..", "/abs", "D:\\x", "a\0"):
        with pytest.raises(UnsafePathError):
            safe_subfolder(bad)


def test_destination_stays_under_the_folder(tmp_path: Path) -> None:
    assert destination(tmp_path, "a.png", "x/y") == tmp_path / "x" / "y" / "a.png"
    assert destination(tmp_path, "../../a.png") == tmp_path / "a.png"


async def chunks(*parts: bytes, fail: BaseException | None = None) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
        await asyncio.sleep(0)
    if fail is not None:
        raise fail


async def test_write_atomically(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.bin"
    assert await write_atomically(chunks(b"ab", b"cd"), target, root=tmp_path) == target
    assert target.read_bytes() == b"abcd"
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # as any new file, not 0600
    with pytest.raises(UnsafePathError, match="exists"):
        await write_atomically(chunks(b"x"), target, root=tmp_path)
    await write_atomically(chunks(b"x"), target, root=tmp_path, overwrite=True)
    assert target.read_bytes() == b"x"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.bin"]


@pytest.mark.parametrize("failure", [OSError("disk gone"), asyncio.CancelledError()])
async def test_a_failed_write_leaves_nothing(tmp_path: Path, failure: BaseException) -> None:
    target = tmp_path / "f.bin"
    with pytest.raises(type(failure)):
        await write_atomically(chunks(b"a" * 10, fail=failure), target, root=tmp_path)
    assert list(tmp_path.iterdir()) == []


async def test_a_symlink_at_the_destination_is_replaced(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    link = tmp_path / "out" / "f.bin"
    link.parent.mkdir()
    link.symlink_to(victim)
    await write_atomically(chunks(b"new"), link, root=tmp_path / "out", overwrite=True)
    assert victim.read_bytes() == b"keep"
    assert not link.is_symlink()


async def test_a_target_outside_the_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafePathError, match="outside"):
        await write_atomically(chunks(b"x"), tmp_path / "f.bin", root=tmp_path / "inner")
    assert not (tmp_path / "f.bin").exists()


async def test_chunks_are_written_as_they_came_without_a_joined_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Big and many chunks reach the file whole, and each write gets the chunks themselves."""
    parts = [bytes([index % 251]) * (3000 + index) for index in range(1500)]  # > 4 MB, > IOV_MAX
    written: list[object] = []
    real = os.writev

    def short_writev(descriptor: int, views: list[memoryview]) -> int:
        written.extend(view.obj for view in views)
        # the system may write less than asked: take only part of the last chunk
        return real(descriptor, [*views[:-1], views[-1][: max(1, len(views[-1]) // 2)]])

    monkeypatch.setattr(os, "writev", short_writev)
    target = tmp_path / "big.bin"
    await write_atomically(chunks(*parts), target, root=tmp_path)
    assert target.read_bytes() == b"".join(parts)
    originals = {id(part) for part in parts}
    assert {id(obj) for obj in written} == originals  # each chunk itself, no joined buffer
    assert list(tmp_path.iterdir()) == [target]
