"""P10 admission: what a held job costs, and what a release decision costs as the line grows.

* **memory per held job**: the ComfyUI-faithful fake server runs in another process
  (``_servers fake``) with its queue held. One :class:`~comfy_async.ComfyClient` with admission
  (``AdmissionPolicy(max_queue=2)``) submits 10,000 prompts for 100 tenants; all but the few the
  server was sent stay held client-side. tracemalloc's traced memory after the submits minus
  before (after a warm-up submit and a full collection), divided by the jobs: the job, its entry
  in the line, its backend and heap records (the graphs are the caller's, made before).
* **decision time**: the admission line alone (no I/O), holding ``n`` jobs of 100 tenants with
  mixed priorities; one decision releases the next job and holds a new one (so the line keeps its
  size). Median time per decision over rounds, at ``n`` = 100 and 10,000: with O(log n)
  operations the second is a small multiple of the first, not a hundred times it.

Targets: ≤ 2 KiB per held job; decision time at 10,000 held ≤ 3× the time at 100.

Run: ``python benchmarks/p10_admission.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import Report, ServerProcess, main_of
from benchmarks.p6_scale import graph
from comfy_async import AdmissionPolicy, ComfyClient
from comfy_async._live.session import SubmitOptions
from comfy_async._pool.admission import FairQueue
from comfy_async._pool.held import Demand, Entry
from comfy_async._pool.needs import Needs

if TYPE_CHECKING:
    import argparse

    from comfy_async.job import Job

TENANTS = 100
NOTHING = Demand(Needs(frozenset(), frozenset()))


async def held_memory(server: ServerProcess, count: int) -> dict[str, Any]:
    graphs = [graph(index) for index in range(count)]
    server.ask("hold")
    policy = AdmissionPolicy(max_queue=2)
    async with ComfyClient(server.url, admission=policy) as comfy:
        warm = await comfy.submit(graph(count + 1), tenant="warm-up")
        await asyncio.sleep(0.2)  # the line and the server's socket are up
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        started = time.perf_counter()
        jobs: list[Job] = [
            await comfy.submit(item, tenant=f"user{index % TENANTS}")
            for index, item in enumerate(graphs)
        ]
        seconds = time.perf_counter() - started
        await asyncio.sleep(0.2)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        held = sum(1 for job in jobs if job.server is None)
        for job in [warm, *jobs]:
            job.detach()
    server.ask("release")
    return {
        "jobs": count,
        "held": held,
        "bytes_per_job": (after - before) / count,
        "submit_seconds": seconds,
    }


def decision_time(size: int, decisions: int, rounds: int) -> list[float]:
    """Seconds per decision (release one, hold one) with ``size`` jobs held, per round."""
    numbers = itertools.count()

    def entry() -> Entry:
        index = next(numbers)
        return Entry(
            job=None,  # type: ignore[arg-type]
            prompt={},
            options=SubmitOptions(),
            demand=NOTHING,
            retries=0,
            held_since=0.0,
            tenant=f"user{index % TENANTS}",
            priority=index % 3,
        )

    results = []
    for _ in range(rounds):
        line = FairQueue(AdmissionPolicy())
        for _ in range(size):
            line.push(entry(), 0.0)
        fresh = [entry() for _ in range(decisions)]
        gc.collect()
        started = time.perf_counter()
        for item in fresh:
            released = line.pop()
            assert released is not None
            released.released = True
            line.push(item, 0.0)
        results.append((time.perf_counter() - started) / decisions)
    return results


def body(args: argparse.Namespace, report: Report) -> None:
    count = 500 if args.quick else 10_000
    rounds = 3 if args.quick else args.runs
    decisions = 2_000 if args.quick else 20_000
    with ServerProcess("fake", "--no-validation") as server:
        memory = asyncio.run(held_memory(server, count))
    small = decision_time(100, decisions, rounds)
    large = decision_time(10_000, decisions, rounds)
    table = report.table(f"{count:,} jobs for {TENANTS} tenants on one client", "figure", "value")
    table.add("jobs held client-side (the server was sent 2)", f"{memory['held']:,}")
    table.add("submitting them", f"{memory['submit_seconds']:.2f} s")
    table.add("client memory per held job (tracemalloc)", f"{memory['bytes_per_job']:,.0f} B")
    decisions_table = report.table(
        f"a release decision (release one, hold one), {TENANTS} tenants, median of {rounds}",
        "jobs held",
        "µs per decision (median)",
        "runs",
    )
    for size, times in ((100, small), (10_000, large)):
        runs = " ".join(f"{value * 1e6:.2f}" for value in times)
        decisions_table.add(f"{size:,}", f"{statistics.median(times) * 1e6:.2f}", runs)
    ratio = statistics.median(large) / statistics.median(small)
    report.raw = {**memory, "decision_100": small, "decision_10000": large, "ratio": ratio}
    report.target("P10 client memory per held job", memory["bytes_per_job"], "<=", 2048, "B")
    report.target("P10 decision time at 10,000 held / at 100 held", ratio, "<=", 3.0)


main = main_of(__doc__.splitlines()[0], 5, body, name="p10_admission", title="P10 admission")

if __name__ == "__main__":
    raise SystemExit(main(None))
