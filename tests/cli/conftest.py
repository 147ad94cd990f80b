"""Driving the command line: in-process (``main(argv)`` in a thread) and as a subprocess.

``cli(*argv)`` runs :func:`comfy_async.cli.main` in a worker thread (it runs its own event loop
while the test's loop serves the fake server) and returns the exit code with the captured
stdout and stderr. ``COMFY_URL`` points at the test's ``comfy_server``. ``spawned(*argv)``
runs ``python -m comfy_async`` as a real process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from comfy_async.cli import main
from comfy_async.testing import FakeComfyServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

ROOT = Path(__file__).resolve().parents[2]
OBJECT_INFO = resources.files("comfy_async.testing").joinpath("data/object_info.json.gz")


@dataclass(frozen=True)
class Outcome:
    """What one invocation did."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout as one JSON document."""
        return json.loads(self.out)

    def json_lines(self) -> list[Any]:
        """stdout as JSON lines."""
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COMFY_URL", "COMFY_URLS", "COMFY_CLOUD_API_KEY", "NO_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, comfy_server):
    """Run the CLI in-process against ``comfy_server``."""
    monkeypatch.setenv("COMFY_URL", comfy_server.url)
    return CliRunner(capsys)


@pytest.fixture
def offline(capsys: pytest.CaptureFixture[str]):
    """Run the CLI in-process with no server at all."""
    return CliRunner(capsys)


class CliRunner:
    """Calls ``main(argv)`` in a thread and captures what it printed."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys

    async def __call__(self, *argv: str | Path) -> Outcome:
        self._capsys.readouterr()
        code = await asyncio.to_thread(main, [str(item) for item in argv])
        captured = self._capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    def sync(self, *argv: str | Path) -> Outcome:
        """The same, from a test without an event loop."""
        self._capsys.readouterr()
        code = main([str(item) for item in argv])
        captured = self._capsys.readouterr()
        return Outcome(code, captured.out, captured.err)


def write_json(path: Path, data: object) -> Path:
    """Write ``data`` as JSON to ``path``; return the path."""
    path.write_text(json.dumps(data))
    return path


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a spawned ``python -m comfy_async``: this checkout first on the path."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("COMFY")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("PYTHONASYNCIODEBUG", None)
    env.update(extra)
    return env


def _default_sigint() -> None:
    # A shell starts background commands with SIGINT ignored, and an ignored signal stays
    # ignored across exec: give the child the disposition of a command typed at a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.asynccontextmanager
async def spawned(*argv: str | Path, **env: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m comfy_async ARGV`` with pipes for stdout and stderr, killed on the way out."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "comfy_async",
        *(str(item) for item in argv),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=subprocess_env(**env),
        cwd=str(ROOT),
        preexec_fn=_default_sigint,  # only resets a signal disposition: safe after fork
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def ui_graph() -> dict[str, object]:
    """A UI-format export: EmptyImage → SaveImage."""
    return {
        "nodes": [
            {
                "id": 1,
                "type": "EmptyImage",
                "mode": 0,
                "inputs": [],
                "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}],
                "widgets_values": [16, 16, 1, 3],
            },
            {
                "id": 2,
                "type": "SaveImage",
                "mode": 0,
                "inputs": [{"name": "images", "type": "IMAGE", "link": 1}],
                "outputs": [],
                "widgets_values": ["from_ui"],
            },
        ],
        "links": [[1, 1, 0, 2, 0, "IMAGE"]],
        "version": 0.4,
    }


__all__ = [
    "OBJECT_INFO",
    "CliRunner",
    "FakeComfyServer",
    "Outcome",
    "spawned",
    "subprocess_env",
    "ui_graph",
    "write_json",
]
