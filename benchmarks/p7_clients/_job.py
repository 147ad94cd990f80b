"""The P7 job every client runs, and the adapters' common command line and result file.

Each adapter in this folder runs one client (in that client's own virtual environment, so it may
import nothing from comfy_async or benchmarks besides this file) and is called as::

    python ADAPTER.py URL JOBS BASE DEADLINE RESULT.json

It submits ``JOBS`` copies of :func:`graph` (``BASE + index`` makes each one unique, so the
server's cache never answers for it) all at once, follows each to its end, fetches the saved
image's bytes, and writes :func:`write_result`'s JSON: the SHA-256 of each job's image (or its
error), the wall time from the first submit to the last result, and a note on how the client was
used. The parent (``p7_versus.py``) checks the digests against the image the server saved.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

STEPS_FIRST = 18
STEPS_SECOND = 2  # with a preview each: 20 progress steps and 2 previews per job


def graph(index: int, base: int) -> dict[str, Any]:
    """EmptyImage → ProbeSleepProgress(18) → ProbeSleepProgress(2, JPEG previews) → SaveImage."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 32, "height": 16, "batch_size": 1, "color": color(index, base)},
            "_meta": {"title": "Empty Image"},
        },
        "2": {
            "class_type": "ProbeSleepProgress",
            "inputs": {
                "image": ["1", 0],
                "steps": STEPS_FIRST,
                "delay": 0.0,
                "preview_format": "none",
                "text": "",
            },
            "_meta": {"title": "Progress"},
        },
        "3": {
            "class_type": "ProbeSleepProgress",
            "inputs": {
                "image": ["2", 0],
                "steps": STEPS_SECOND,
                "delay": 0.0,
                "preview_format": "JPEG",
                "text": "",
            },
            "_meta": {"title": "Previews"},
        },
        "4": {
            "class_type": "SaveImage",
            "inputs": {"images": ["3", 0], "filename_prefix": f"p7_{base}_{index}"},
            "_meta": {"title": "Save Image"},
        },
    }


def color(index: int, base: int) -> int:
    """The colour of job ``index``: what its saved image is filled with."""
    return (base + index) % 16_777_216


def digest(data: bytes) -> str:
    """The SHA-256 of an image's bytes."""
    return hashlib.sha256(data).hexdigest()


def arguments() -> tuple[str, int, int, float, Path]:
    """``URL JOBS BASE DEADLINE RESULT``."""
    url, jobs, base, deadline, result = sys.argv[1:6]
    return url.rstrip("/"), int(jobs), int(base), float(deadline), Path(result)


async def run_all(one: Callable[[int], Awaitable[None]], jobs: int, deadline: float) -> float:
    """Start ``one(index)`` for every job at once; return the wall time until all ended.

    Jobs still running when ``deadline`` passes are cancelled (and count as not done).
    """
    clock = Clock()
    tasks = [asyncio.create_task(one(index)) for index in range(jobs)]
    _, pending = await asyncio.wait(tasks, timeout=deadline)
    wall = clock.seconds()
    for task in pending:
        task.cancel()
    return wall


class Clock:
    """Wall time from the first submit to the last result."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.started


def write_result(
    path: Path, wall: float, results: dict[int, dict[str, Any]], note: str, **extra: Any
) -> None:
    """Write the adapter's findings: per job ``{"sha256"}`` or ``{"error"}``."""
    payload = {"wall": wall, "results": {str(k): v for k, v in results.items()}, "note": note}
    payload.update(extra)
    path.write_text(json.dumps(payload))
