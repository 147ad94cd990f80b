"""P2 previews: 50 KB binary preview frames, full path against raw receive, with zero copies.

The push server streams type-4 preview frames (metadata naming the prompt, then a 50 KB image)
for a few jobs, interleaved. In the same run, as medians over alternating rounds:

* **raw receive**: aiohttp ``receive()`` of each frame, nothing else;
* **minimal hand-off** (a floor, for context): receive, read the prompt id from the metadata,
  append the image view to that job's deque and wake its task — the least any design that hands
  each preview to its job's own task must do (no attribution, no overflow policy, no checks);
* **full path**: the real ``Connection`` → ``ProtocolState`` (frame parse) → ``Dispatcher`` →
  each job's preview buffer → one consumer task per job (``async for p in job.previews()``).

Target: full path ≥ 95 % of the preview hand-off floor (raw receive is shown beside them
for context). Zero copies are shown two ways: the event's
``image.obj`` *is* the frame object aiohttp handed over (checked for every preview of an untimed
round), and tracemalloc finds only a few hundred bytes per retained preview allocated by the
library (a copy would be 51,200).

Run: ``python benchmarks/p2_previews.py [--quick] [--runs N]``.
"""

from __future__ import annotations

import asyncio
import gc
import struct
import sys
import time
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import orjson

import comfy_async._live.connection
from benchmarks._common import Report, ServerProcess, main_of, median
from benchmarks._servers import PREVIEW_SIZE, prompt_id_of
from benchmarks.p1_dispatcher import (
    PROMPT,
    MemoryBackend,
    go,
    handoff_round,
    live_session,
    prepare,
)
from comfy_async.config import ClientOptions
from comfy_async.protocol.state import ProtocolState

if TYPE_CHECKING:
    import argparse

    from comfy_async.events import PreviewImage, ServerEvent
    from comfy_async.job import Job


async def raw_round(
    http: aiohttp.ClientSession, server: str, round_: int, scenario: dict[str, object]
) -> tuple[float, int]:
    """The ceiling: receive every frame, nothing else. Returns (seconds, frames)."""
    client_id = f"raw-{round_}"
    ws = await http.ws_connect(
        server.replace("http://", "ws://") + f"/ws?clientId={client_id}", max_msg_size=0
    )
    try:
        await ws.receive()
        frames = await prepare(http, server, client_id=client_id, round=round_, **scenario)
        gc.collect()
        started = time.perf_counter()
        trigger = asyncio.create_task(go(http, server, client_id))
        for _ in range(frames):
            message = await ws.receive()
            if message.type is not aiohttp.WSMsgType.BINARY:
                raise RuntimeError(f"unexpected frame: {message.type}")
        elapsed = time.perf_counter() - started
        await trigger
    finally:
        await ws.close()
    return elapsed, frames


_PREVIEW_HEADER = struct.Struct(">II")


def route_preview(data: bytes) -> tuple[str | None, object]:
    """The minimal hand-off's routing of a type-4 frame: the metadata's prompt id, the image."""
    view = memoryview(data)
    _, length = _PREVIEW_HEADER.unpack_from(view, 0)
    return orjson.loads(view[8 : 8 + length])["prompt_id"], view[8 + length :]


class _Recording(ProtocolState):
    """A ProtocolState that remembers the frame objects it was given (zero-copy check)."""

    frames: dict[int, object] = {}  # noqa: RUF012 - one shared record per check

    def receive_bytes(self, data: bytes | bytearray | memoryview) -> ServerEvent:
        _Recording.frames[id(data)] = data
        return super().receive_bytes(data)


async def full_round(
    http: aiohttp.ClientSession,
    server: str,
    round_: int,
    scenario: dict[str, Any],
    *,
    keep: bool = False,
) -> tuple[float, int, dict[str, int], list[PreviewImage]]:
    """Frames → events → per-job preview buffers → one consumer task per job."""
    client_id = f"full-{round_}"
    jobs, per_job = int(scenario["jobs"]), int(scenario["previews"])
    live = live_session(http, server, client_id, MemoryBackend(), ClientOptions())
    kept: list[PreviewImage] = []
    try:
        handles = [
            await live.submit(PROMPT, prompt_id=prompt_id_of(round_, index))
            for index in range(jobs)
        ]
        frames = await prepare(http, server, client_id=client_id, round=round_, **scenario)

        async def consume(job: Job) -> int:
            count = 0
            async for preview in job.previews():
                count += 1
                if keep:
                    kept.append(preview)
                if count == per_job:
                    break
            return count

        gc.collect()
        started = time.perf_counter()
        consumers = [asyncio.create_task(consume(job)) for job in handles]
        await go(http, server, client_id)
        counts = await asyncio.gather(*consumers)
        elapsed = time.perf_counter() - started
        dropped = sum(job.stats.dropped_previews for job in handles)
    finally:
        await live.aclose()
    return elapsed, frames, {"previews": sum(counts), "dropped": dropped}, kept


async def zero_copy_check(http: aiohttp.ClientSession, server: str, jobs: int) -> dict[str, Any]:
    """Every preview's ``image.obj`` is its frame object; library bytes per retained preview."""
    scenario = {"scenario": "previews", "jobs": jobs, "previews": 4}
    original = comfy_async._live.connection.ProtocolState
    comfy_async._live.connection.ProtocolState = _Recording  # type: ignore[misc]
    _Recording.frames = {}
    try:
        _, _, _, kept = await full_round(http, server, 9_000, scenario, keep=True)
    finally:
        comfy_async._live.connection.ProtocolState = original  # type: ignore[misc]
    same = sum(1 for p in kept if _Recording.frames.get(id(p.image.obj)) is p.image.obj)
    payload_ok = all(p.image.nbytes == PREVIEW_SIZE for p in kept)
    _Recording.frames = {}

    # tracemalloc: what the library allocates per preview it hands out (kept alive on purpose).
    gc.collect()
    tracemalloc.start()
    try:
        _, _, _, kept = await full_round(http, server, 9_001, scenario, keep=True)
        gc.collect()
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    library = snapshot.filter_traces(
        [tracemalloc.Filter(inclusive=True, filename_pattern="*comfy_async*")]
    )
    library_bytes = sum(stat.size for stat in library.statistics("filename"))
    largest = max((stat.size for stat in library.statistics("traceback")), default=0)
    return {
        "previews": len(kept),
        "same_object": same,
        "payload_ok": payload_ok,
        "library_bytes_per_preview": library_bytes / max(1, len(kept)),
        "largest_library_block": largest,
    }


async def measure(server: str, runs: int, jobs: int, previews: int) -> dict[str, Any]:
    scenario: dict[str, Any] = {"scenario": "previews", "jobs": jobs, "previews": previews}
    rates: dict[str, list[float]] = {"raw": [], "handoff": [], "full": []}
    seen: dict[str, int] = {}
    frames = 0
    async with aiohttp.ClientSession() as http:
        await raw_round(http, server, 10_000, scenario)  # warm-up
        for round_ in range(runs):
            order = ("raw", "handoff", "full")
            for path in order[round_ % 3 :] + order[: round_ % 3]:  # rotate who goes first
                if path == "raw":
                    seconds, frames = await raw_round(http, server, round_, scenario)
                elif path == "handoff":
                    seconds, frames = await handoff_round(
                        http, server, 200 + round_, scenario, per_job=previews, route=route_preview
                    )
                else:
                    seconds, frames, seen, _ = await full_round(
                        http, server, 100 + round_, scenario
                    )
                rates[path].append(frames / seconds)
        check = await zero_copy_check(http, server, jobs)
    return {**rates, "frames": frames, "seen": seen, "zero_copy": check}


def body(args: argparse.Namespace, report: Report) -> None:
    jobs = 4 if args.quick else 20
    previews = 10 if args.quick else 100
    runs = 1 if args.quick else args.runs
    with ServerProcess("push") as server:
        found = asyncio.run(measure(server.url, runs, jobs, previews))
    raw, full = median(found["raw"]), median(found["full"])
    mb = PREVIEW_SIZE / 1e6
    table = report.table(
        f"50 KB previews, {jobs} jobs × {previews} previews per round, median of {runs}",
        "path",
        "frames/s",
        "MB/s",
        "runs (frames/s)",
        "vs raw",
    )
    table.add(
        "raw receive (aiohttp)",
        f"{raw:,.0f}",
        f"{raw * mb:,.0f}",
        " ".join(f"{r:,.0f}" for r in found["raw"]),
        "100%",
    )
    handoff = median(found["handoff"])
    table.add(
        "floor: minimal hand-off to one task per job",
        f"{handoff:,.0f}",
        f"{handoff * mb:,.0f}",
        " ".join(f"{r:,.0f}" for r in found["handoff"]),
        f"{handoff / raw:.0%}",
    )
    table.add(
        "full path (parse → job → task)",
        f"{full:,.0f}",
        f"{full * mb:,.0f}",
        " ".join(f"{r:,.0f}" for r in found["full"]),
        f"{full / raw:.0%}",
    )
    check = found["zero_copy"]
    proof = report.table("Zero copies of the payload (untimed rounds)", "check", "result")
    proof.add(
        "preview.image.obj is the frame object aiohttp received",
        f"{check['same_object']} of {check['previews']}",
    )
    proof.add("preview.image.nbytes == 51,200", str(check["payload_ok"]))
    proof.add(
        "library-allocated bytes per retained preview (tracemalloc)",
        f"{check['library_bytes_per_preview']:,.0f} B (a copy: 51,200 B)",
    )
    proof.add("largest single library allocation", f"{check['largest_library_block']:,} B")
    report.notes.append(
        "The floor row keeps each frame alive until its job's task has run, as any hand-off "
        "must, where raw receive frees it at once; it bounds what a per-job design can reach "
        f"here at {handoff / raw:.0%} of raw receive; the full path reaches {full / handoff:.0%} "
        "of that floor."
    )
    report.notes.append(
        f"{found['seen'].get('previews', 0):,} previews delivered per full round, "
        f"{found['seen'].get('dropped', 0)} dropped."
    )
    paired = " ".join(f"{f / h:.0%}" for f, h in zip(found["full"], found["handoff"], strict=True))
    report.notes.append(
        f"Full path / floor in each round (the two run next to each other): {paired}."
    )
    report.raw = found
    report.target("P2 full path / preview hand-off floor", full / handoff, ">=", 0.95, "%")
    report.target(
        "P2 copies of the payload (frames whose image is not a view of the received frame)",
        check["previews"] - check["same_object"],
        "<=",
        0,
        "",
    )


main = main_of(__doc__.splitlines()[0], 9, body, name="p2_previews", title="P2 previews")

if __name__ == "__main__":
    raise SystemExit(main(None))
