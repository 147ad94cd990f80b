"""Fake servers in processes of their own, and what they were asked to do (test support)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
SD15 = ROOT / "examples" / "workflows" / "sd15_txt2img_api.json"


def small_sd15() -> dict[str, Any]:
    """The example text-to-image workflow, at 64×64 and 2 steps (quick on the fake)."""
    prompt: dict[str, Any] = json.loads(SD15.read_text(encoding="utf-8"))
    prompt["3"]["inputs"]["steps"] = 2
    prompt["5"]["inputs"].update(width=64, height=64)
    return prompt


def items(count: int, prefix: str = "item") -> list[dict[str, Any]]:
    """``count`` items, each with its own seed and prompt text."""
    return [
        {"key": f"{prefix}-{index}", "seed": index, "inputs": {"6": {"text": f"a cat, #{index}"}}}
        for index in range(count)
    ]


@dataclass
class Tally:
    """What the servers saw: POSTs per (server, prompt id) and successes per prompt id."""

    posts: dict[tuple[int, str], int]
    successes: dict[str, int]

    @property
    def most_posts_on_one_server(self) -> int:
        return max(self.posts.values(), default=0)

    @property
    def most_runs(self) -> int:
        return max(self.successes.values(), default=0)

    @property
    def total_posts(self) -> int:
        return sum(self.posts.values())


class FakeFleet:
    """``count`` fake ComfyUI servers, each in a process of its own (see ``fake_process``)."""

    def __init__(self, count: int, *, time_scale: float = 0.0) -> None:
        self._count = count
        self._time_scale = time_scale
        self._processes: list[subprocess.Popen[str]] = []
        self.urls: list[str] = []

    def __enter__(self) -> FakeFleet:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("PYTHONASYNCIODEBUG", None)  # the servers run at full speed
        command = [sys.executable, "-m", "tests.distributed.fake_process"]
        command += ["--time-scale", str(self._time_scale)]
        for _ in range(self._count):
            self._processes.append(
                subprocess.Popen(
                    command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    cwd=ROOT,
                    env=env,
                )
            )
        deadline = time.monotonic() + 60
        for process in self._processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line.startswith("listening on ") or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"a fake server did not start: {line!r}")
            self.urls.append(line.removeprefix("listening on ").strip())
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self._processes:
            with contextlib.suppress(OSError):
                assert process.stdin is not None
                process.stdin.close()
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()

    def tally(self) -> Tally:
        """Ask every server what it was sent and what it ran."""
        posts: dict[tuple[int, str], int] = {}
        successes: dict[str, int] = {}
        for index, process in enumerate(self._processes):
            assert process.stdin is not None
            assert process.stdout is not None
            process.stdin.write("counts\n")
            process.stdin.flush()
            answer = json.loads(process.stdout.readline())
            for prompt_id, count in answer["posts"].items():
                posts[index, prompt_id] = count
            for prompt_id, outcome in answer["finished"]:
                if outcome == "success":
                    successes[prompt_id] = successes.get(prompt_id, 0) + 1
        return Tally(posts=posts, successes=successes)


@contextlib.contextmanager
def fake_fleet(count: int, *, time_scale: float = 0.0) -> Iterator[FakeFleet]:
    """A :class:`FakeFleet` for the ``with`` block."""
    with FakeFleet(count, time_scale=time_scale) as fleet:
        yield fleet
