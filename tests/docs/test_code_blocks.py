"""Every code block of the documentation site is marked runnable or illustrative, and every
runnable one runs as is against the embedded fake server.

A block is marked by an HTML comment on the line before its fence (invisible on the site):
``<!-- runnable -->`` or ``<!-- illustrative -->``. Runnable blocks are whole programs that
speak to ``http://127.0.0.1:8188`` (the fake server's default address); the test points them at
a fake server (with ComfyUI-Manager) on a free loopback port and runs each in a fresh
interpreter, with warnings as errors, from a folder holding the repository's example workflows.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from comfy_async.testing import FakeComfyServer

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
DEFAULT_URL = "http://127.0.0.1:8188"
MARKS = {"<!-- runnable -->": True, "<!-- illustrative -->": False}
FENCE = re.compile(r"^(`{3,}|~{3,})(.*)$")
SNIPPET = re.compile(r'^--8<-- "([^"]+)"$')


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: str
    line: int
    language: str
    code: str
    runnable: bool | None  # None: not marked

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def blocks_of(text: str, page: str) -> list[Block]:
    """The fenced blocks of a Markdown text, with the mark on the line before each."""
    found: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence, info = opening.groups()
        previous = lines[index - 1].strip() if index else ""
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and not lines[index].startswith(fence):
            body.append(lines[index])
            index += 1
        index += 1
        language = info.strip().split(" ")[0] if info.strip() else ""
        found.append(Block(page, start + 1, language, "\n".join(body) + "\n", MARKS.get(previous)))
    return found


def site_pages() -> list[tuple[str, str]]:
    """Each page of the site as it is built: snippets (``--8<-- "path"``) included."""
    pages = []
    for path in sorted(DOCS.rglob("*.md")):
        parts = []
        for line in path.read_text(encoding="utf-8").splitlines():
            snippet = SNIPPET.match(line.strip())
            parts.append((ROOT / snippet.group(1)).read_text(encoding="utf-8") if snippet else line)
        pages.append((str(path.relative_to(ROOT)), "\n".join(parts)))
    return pages


def all_blocks() -> list[Block]:
    return [block for page, text in site_pages() for block in blocks_of(text, page)]


def runnable_blocks() -> list[Block]:
    return [block for block in all_blocks() if block.runnable]


def test_the_parser_reads_marks_languages_and_unmarked_blocks() -> None:
    text = (
        "<!-- runnable -->\n```python\nprint(1)\n```\n\n"
        "<!-- illustrative -->\n```sh\nls\n```\n\n"
        "````text\n```inner```\n````\n"
    )
    found = blocks_of(text, "page.md")
    assert [(b.language, b.runnable, b.code) for b in found] == [
        ("python", True, "print(1)\n"),
        ("sh", False, "ls\n"),
        ("text", None, "```inner```\n"),
    ]


def test_the_site_has_runnable_blocks() -> None:
    assert len(runnable_blocks()) >= 4


def test_every_block_is_marked_runnable_or_illustrative() -> None:
    unmarked = [block.where for block in all_blocks() if block.runnable is None]
    assert not unmarked, f"code blocks neither runnable nor illustrative: {unmarked}"


def test_runnable_blocks_are_python_programs_for_the_default_address() -> None:
    for block in runnable_blocks():
        assert block.language == "python", block.where
        assert DEFAULT_URL in block.code, block.where
        compile(block.code, block.where, "exec")


@pytest.mark.parametrize("block", runnable_blocks(), ids=lambda block: block.where)
async def test_runnable_block_runs_against_the_fake_server(block: Block, tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples" / "workflows", tmp_path / "examples" / "workflows")
    # With ComfyUI-Manager: the guide to installing nodes runs against it.
    async with FakeComfyServer(manager=True) as fake:
        program = block.code.replace(DEFAULT_URL, fake.url)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-W",
            "error",
            "-X",
            "dev",
            "-c",
            program,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
    assert process.returncode == 0, f"{block.where} failed:\n{out.decode()}\n{err.decode()}"
