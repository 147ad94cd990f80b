"""P6 scale: 10,000 jobs in flight on one session; memory per job and event latency under load.

The ComfyUI-faithful fake server runs in another process (``_servers fake``, durations scaled to
zero) with its queue held, so that every submitted prompt stays queued. One
:class:`~comfy_async.ComfyClient` submits 10,000 prompts (EmptyImage → ProbeSleepProgress with
20 steps → SaveImage; 64 submits at a time) and starts one consumer task per job.

* **memory per job**: tracemalloc's traced memory after the 10,000 submits minus before (after a
  warm-up submit and a full collection), divided by 10,000: everything the client keeps per job
  in flight (job, stream, registration, reconciliation entry), the consumer tasks excluded.
* **latency**: the queue is released and the server runs the prompts as fast as it can while all
  10,000 jobs are in flight; for a bounded window, every event is stamped when its frame reaches
  the reader (before decoding) and again when its consumer task gets it. p50/p99 over every event.

Targets: ≤ 2 KiB per job; p99 frame → consumer ≤ 5 ms.

Run: ``python benchmarks/p6_scale.py [--quick] [--jobs N] [--window S]``.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import comfy_async._live.connection
from benchmarks._common import Report, ServerProcess, main_of, percentile
from comfy_async import ComfyClient
from comfy_async.protocol.state import ProtocolState

if TYPE_CHECKING:
    import argparse

    from comfy_async.events import ServerEvent
    from comfy_async.job import Job

STAMPS: dict[int, float] = {}


class _Stamping(ProtocolState):
    """A ProtocolState that notes when each frame reached the reader (before decoding)."""

    def receive_text(self, text: str | bytes) -> ServerEvent:
        now = time.perf_counter()
        event = super().receive_text(text)
        STAMPS[id(event)] = now
        return event

    def receive_bytes(self, data: bytes | bytearray | memoryview) -> ServerEvent:
        now = time.perf_counter()
        event = super().receive_bytes(data)
        STAMPS[id(event)] = now
        return event


def graph(index: int, steps: int = 20) -> dict[str, Any]:
    """EmptyImage (a colour per job) → ProbeSleepProgress (``steps`` steps) → SaveImage."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 32, "height": 16, "batch_size": 1, "color": index % 16_777_216},
        },
        "2": {
            "class_type": "ProbeSleepProgress",
            "inputs": {
                "image": ["1", 0],
                "steps": steps,
                "delay": 0.0,
                "preview_format": "none",
                "text": "",
            },
        },
        "3": {
            "class_type": "SaveImage",
            "inputs": {"images": ["2", 0], "filename_prefix": f"p6_{index}"},
        },
    }


async def submit_all(comfy: ComfyClient, graphs: list[dict[str, Any]], at_once: int) -> list[Job]:
    """Submit every graph, ``at_once`` at a time, from a fixed pool of tasks (no task per job,
    so that the harness adds nothing per job to the memory measured)."""
    jobs: list[Job] = []
    pending = iter(graphs)

    async def worker() -> None:
        for item in pending:
            job = await comfy.submit(item)
            jobs.append(job)

    await asyncio.gather(*(worker() for _ in range(at_once)))
    return jobs


async def measure(server: ServerProcess, jobs_count: int, window: float) -> dict[str, Any]:
    graphs = [graph(index) for index in range(jobs_count)]
    server.ask("hold")
    comfy_async._live.connection.ProtocolState = _Stamping  # type: ignore[misc]
    try:
        async with ComfyClient(server.url) as comfy:
            warm = await comfy.submit(graph(jobs_count + 1))  # opens the socket and the pool
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            started = time.perf_counter()
            jobs = await submit_all(comfy, graphs, 64)
            submit_seconds = time.perf_counter() - started
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            in_flight = len(comfy.in_flight)

            latencies: list[float] = []
            delivered = 0

            async def consume(job: Job) -> None:
                nonlocal delivered
                pop, now = STAMPS.pop, time.perf_counter
                async for event in job:
                    stamp = pop(id(event), None)
                    if stamp is not None:
                        latencies.append(now() - stamp)
                        delivered += 1

            consumers = [asyncio.create_task(consume(job)) for job in [warm, *jobs]]
            del graphs  # the harness's own garbage would lengthen the collector's pauses
            await asyncio.sleep(0.2)
            STAMPS.clear()
            latencies.clear()
            pauses: list[tuple[int, float]] = []
            gc_started = [0.0]

            def on_gc(phase: str, info: dict[str, int]) -> None:
                if phase == "start":
                    gc_started[0] = time.perf_counter()
                else:
                    pauses.append((info["generation"], time.perf_counter() - gc_started[0]))

            gc.callbacks.append(on_gc)
            server.ask("release")
            released = time.perf_counter()
            try:
                done, _ = await asyncio.wait(consumers, timeout=window)
            finally:
                gc.callbacks.remove(on_gc)
            elapsed = time.perf_counter() - released
            finished = sum(1 for job in jobs if job.done())
            for task in consumers:
                task.cancel()
            await asyncio.gather(*consumers, return_exceptions=True)
    finally:
        comfy_async._live.connection.ProtocolState = ProtocolState  # type: ignore[misc]
        STAMPS.clear()
    return {
        "jobs": jobs_count,
        "in_flight": in_flight,
        "submit_seconds": submit_seconds,
        "bytes_per_job": (after - before) / jobs_count,
        "latencies": latencies,
        "events": delivered,
        "window": elapsed,
        "finished": finished,
        "consumers_done": len(done),
        "gc_collections": len(pauses),
        "gc_full": sum(1 for generation, _ in pauses if generation == 2),
        "gc_max_pause_ms": max((pause for _, pause in pauses), default=0.0) * 1e3,
    }


def body(args: argparse.Namespace, report: Report) -> None:
    jobs = min(args.jobs, 200) if args.quick else args.jobs
    window = min(args.window, 2.0) if args.quick else args.window
    with ServerProcess("fake", "--no-validation") as server:
        found = asyncio.run(measure(server, jobs, window))
    latencies = found.pop("latencies")
    p50, p99 = percentile(latencies, 0.50) * 1e3, percentile(latencies, 0.99) * 1e3
    worst = max(latencies, default=0.0) * 1e3
    table = report.table(f"{found['jobs']:,} jobs in flight on one session", "figure", "value")
    table.add("jobs in flight when the queue was released", f"{found['in_flight']:,}")
    table.add("submitting them (64 at a time)", f"{found['submit_seconds']:.1f} s")
    table.add("client memory per job in flight (tracemalloc)", f"{found['bytes_per_job']:,.0f} B")
    table.add("events delivered in the window", f"{found['events']:,} in {found['window']:.1f} s")
    table.add("jobs finished in the window", f"{found['finished']:,}")
    table.add("latency frame → consumer p50", f"{p50:.2f} ms")
    table.add("latency frame → consumer p99", f"{p99:.2f} ms")
    table.add("latency frame → consumer max", f"{worst:.2f} ms")
    table.add(
        "garbage collections in the window (full ones), longest pause",
        f"{found['gc_collections']} ({found['gc_full']}), {found['gc_max_pause_ms']:.1f} ms",
    )
    found.update({"p50_ms": p50, "p99_ms": p99, "max_ms": worst})
    report.raw = found
    report.target("P6 client memory per job in flight", found["bytes_per_job"], "<=", 2048, "B")
    report.target("P6 p99 latency frame → consumer under load", p99, "<=", 5.0, "ms")


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs in flight")
    parser.add_argument("--window", type=float, default=8.0, help="seconds of events measured")


main = main_of(__doc__.splitlines()[0], 1, body, name="p6_scale", title="P6 scale", setup=setup)

if __name__ == "__main__":
    raise SystemExit(main(None))
