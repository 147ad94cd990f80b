"""P12 the client's own cost per job: CPU and memory of one realistic job, end to end.

What it costs to run a job through comfy_async, leaving the server's work aside, so that a bot or
a batch machine can be sized. The ComfyUI-faithful fake server runs in another process
(durations scaled to zero). Each job is P7's: EmptyImage → 18 progress steps → 2 progress steps
with a JPEG preview each → SaveImage, so 20 progress events and 2 previews; the client submits
it, reads every event (``async for event in job``), takes ``job.result()`` and saves the image to
disk (``result.save``: streamed to a file). Two ways of running jobs:

* **one at a time** (a bot answering one request after another): each job measured on its own;
* **a batch at once** (a batch machine): a whole batch submitted together, its cost divided by
  its jobs.

Figures: client CPU per job (``time.process_time`` of the client process, worker threads
included), wall time per job, HTTP requests per job (the server's counters), and, in a second
pass with ``tracemalloc`` on (it slows Python, so CPU is measured without it), the memory a job
needs while in flight (the peak above the level before it) and what it leaves behind once it
ended and its result was dropped. Medians with their spread (min–max) over the jobs, or over
the batches.

Targets: client CPU per job ≤ 5 ms run alone, ≤ 2.5 ms in a batch. What a finished job leaves
behind is bounded caches (the URLs of per-prompt routes, the ids of recently finished prompts
whose late events are dropped, timers that run out), not a leak: it stops growing once they fill.

Run: ``python benchmarks/p12_job_cost.py [--quick] [--runs N] [--jobs N] [--batch N]``.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import ServerProcess, ensure_bytecode, main_of, median
from benchmarks.p7_clients._job import graph
from comfy_async import ComfyClient

if TYPE_CHECKING:
    import argparse

    from benchmarks._common import Report

WARM_UP = 3
ALONE_TARGET_MS = 5.0
BATCH_TARGET_MS = 2.5


@dataclass
class Cost:
    """What the client spent on some jobs."""

    cpu: float
    wall: float
    jobs: int
    peak: int = 0
    retained: int = 0


async def one_job(comfy: ComfyClient, index: int, folder: Path) -> None:
    """Submit, read every event, take the result, save the image; fail loudly on anything odd.

    ``index`` makes the job unique (its image's colour), so the server's cache never answers.
    """
    job = await comfy.submit(graph(index, 0))
    progress = previews = 0
    async for event in job:
        if event.type == "progress":
            progress += 1
        elif event.type == "preview_image":
            previews += 1
    result = await job.result()
    saved = await result.save(folder, overwrite=True)
    if (progress, previews, len(saved)) != (20, 2, 1):
        raise RuntimeError(f"job {index}: {progress} progress, {previews} previews, {saved}")


async def measure(
    url: str, *, jobs: int, batch: int, batches: int, memory: bool, folder: Path
) -> tuple[list[Cost], list[Cost]]:
    """Jobs one at a time, then batches; per job or per batch costs."""
    alone: list[Cost] = []
    together: list[Cost] = []
    counter = iter(range(1_000_000 if memory else 0, 10**9))
    async with ComfyClient(url) as comfy:
        for _ in range(WARM_UP):
            await one_job(comfy, next(counter), folder)
        for _ in range(jobs):
            cost = await timed(lambda: one_job(comfy, next(counter), folder), 1, memory)
            alone.append(cost)
        for _ in range(batches):

            async def run_batch() -> None:
                await asyncio.gather(*(one_job(comfy, next(counter), folder) for _ in range(batch)))

            together.append(await timed(run_batch, batch, memory))
    return alone, together


async def timed(run: Any, jobs: int, memory: bool) -> Cost:
    """The cost of ``await run()`` (``jobs`` jobs); memory figures only with ``memory``."""
    gc.collect()
    if memory:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
    cpu, wall = time.process_time(), time.perf_counter()
    await run()
    cost = Cost(time.process_time() - cpu, time.perf_counter() - wall, jobs)
    if memory:
        cost.peak = tracemalloc.get_traced_memory()[1] - before
        gc.collect()
        cost.retained = tracemalloc.get_traced_memory()[0] - before
    return cost


def spread(values: list[float], scale: float, digits: int = 0) -> str:
    """``median (min–max)`` of ``values`` × ``scale``."""
    scaled = [value * scale for value in values]
    return f"{median(scaled):,.{digits}f} ({min(scaled):,.{digits}f}–{max(scaled):,.{digits}f})"


def body(args: argparse.Namespace, report: Report) -> None:
    ensure_bytecode()
    jobs = 5 if args.quick else args.jobs
    batch = 8 if args.quick else args.batch
    batches = 2 if args.quick else args.runs
    with ServerProcess("fake") as server, tempfile.TemporaryDirectory() as folder:
        server.ask("reset")
        run = asyncio.run(
            measure(
                server.url,
                jobs=jobs,
                batch=batch,
                batches=batches,
                memory=False,
                folder=Path(folder),
            )
        )
        requests = server.ask("stats").get("requests", {})
        tracemalloc.start()
        try:
            traced = asyncio.run(
                measure(
                    server.url,
                    jobs=jobs,
                    batch=batch,
                    batches=batches,
                    memory=True,
                    folder=Path(folder),
                )
            )
        finally:
            tracemalloc.stop()
    alone, together = run
    alone_memory, together_memory = traced
    total_jobs = WARM_UP + jobs + batch * batches
    http = sum(count for key, count in requests.items() if not key.endswith("/ws"))
    table = report.table(
        "one job = submit, 20 progress events and 2 previews read, result, image saved to disk; "
        "median (min–max)",
        "how",
        "CPU µs/job",
        "wall ms/job",
        "memory in flight KB/job",
        "left behind B/job",
    )
    for label, costs, memory in (
        ("one at a time", alone, alone_memory),
        (f"{batch} at once", together, together_memory),
    ):
        table.add(
            f"{label} ({len(costs)} {'jobs' if costs is alone else 'batches'})",
            spread([c.cpu / c.jobs for c in costs], 1e6),
            spread([c.wall / c.jobs for c in costs], 1e3, 2),
            spread([m.peak / m.jobs for m in memory], 1 / 1024, 1),
            spread([max(0, m.retained) / m.jobs for m in memory], 1),
        )
    report.notes.append(
        f"HTTP requests per job: {http / total_jobs:.2f} ({http} for {total_jobs} jobs: "
        + ", ".join(f"{key} {count}" for key, count in sorted(requests.items()))
        + ")."
    )
    report.notes.append(
        "CPU is the client process's (worker threads included; the server runs in another "
        "process); memory is measured in a second pass under tracemalloc (Python allocations). "
        "A job run alone needs about 256 KB of it at its peak for one socket read: asyncio "
        "receives into a buffer of its largest read size and shrinks it after; in a batch that "
        "buffer is shared by the jobs whose events it carries."
    )
    report.raw = {
        "jobs": jobs,
        "batch": batch,
        "batches": batches,
        "http_requests_per_job": http / total_jobs,
        "requests": requests,
        "alone": [vars(c) for c in alone],
        "batched": [vars(c) for c in together],
        "alone_memory": [vars(c) for c in alone_memory],
        "batched_memory": [vars(c) for c in together_memory],
    }
    report.target(
        "P12 client CPU per job, one at a time (20 progress, 2 previews, saved)",
        median([c.cpu / c.jobs for c in alone]) * 1e3,
        "<=",
        ALONE_TARGET_MS,
        "ms",
    )
    report.target(
        f"P12 client CPU per job, {batch} at once",
        median([c.cpu / c.jobs for c in together]) * 1e3,
        "<=",
        BATCH_TARGET_MS,
        "ms",
    )


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=40, help="jobs run one at a time")
    parser.add_argument("--batch", type=int, default=64, help="jobs per batch")


main = main_of(
    __doc__.splitlines()[0], 5, body, name="p12_job_cost", title="P12 cost per job", setup=setup
)

if __name__ == "__main__":
    raise SystemExit(main(None))
