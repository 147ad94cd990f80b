"""P1 dispatcher: the full event path against the raw ceiling, one socket, 1,000 concurrent jobs.

A server process (``_servers push``) streams the exact per-job ComfyUI event sequence
(execution_start, execution_cached, executing, (progress_state + progress) × 20, executed,
execution_success, executing{null}: 46 frames) of 1,000 jobs in flight at once, interleaved, from
frames encoded before the clock starts, so the client is the bottleneck. In the same run, as
medians over alternating rounds:

* **raw ceiling**: aiohttp ``receive()`` + the typed decode (``decode_message``, one msgspec
  tagged union), no routing;
* **minimal hand-off** (a floor, for context): receive, decode, append the event to its job's
  deque by ``prompt_id`` and wake that job's task — the least any design that hands each event
  to its job's own task must do (no attribution, no overflow policy, no job state);
* **full path**: the library's real :class:`~comfy_async._live.connection.Connection` (reader →
  ``ProtocolState`` → ``Dispatcher.dispatch``) feeding 1,000 :class:`~comfy_async.job.Job`\\ s
  registered through ``LiveSession.submit``, each read by its own consumer task
  (``async for event in job``) until the job has settled. Only HTTP is stubbed out (an in-memory
  backend answers the submit and the lookup that confirms a success), so no request competes
  with the socket.

Target: full path ≥ 85 % of the minimal hand-off floor's frame rate (the ceiling is shown
beside them for context).

Run: ``python benchmarks/p1_dispatcher.py [--quick] [--runs N] [--jobs N]``.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from yarl import URL

from benchmarks._common import Report, ServerProcess, main_of, median
from benchmarks._servers import prompt_id_of
from comfy_async._live.connection import Connection
from comfy_async._live.session import LiveSession
from comfy_async.config import ClientOptions
from comfy_async.job import JobSnapshot
from comfy_async.models.prompts import PromptResponse
from comfy_async.protocol.frames import parse_binary_frame
from comfy_async.protocol.messages import decode_message

if TYPE_CHECKING:
    import argparse
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from comfy_async._live.connection import ReconnectInfo
    from comfy_async._live.session import SubmitOptions
    from comfy_async.events import Event
    from comfy_async.job import Job
    from comfy_async.models.files import OutputFile

PROMPT: dict[str, object] = {
    "3": {"class_type": "KSampler", "inputs": {"steps": 20}},
    "9": {"class_type": "SaveImage", "inputs": {"images": ["3", 0]}},
}
OUTPUTS = {"9": {"images": [{"filename": "ComfyUI_00001_.png", "subfolder": "", "type": "output"}]}}


class MemoryBackend:
    """The session's HTTP side, answered from memory (no request competes with the socket)."""

    finish_marker = True

    def __init__(self) -> None:
        self.lookups = 0

    async def submit(
        self,
        prompt: Mapping[str, object],
        *,
        prompt_id: str,
        client_id: str,
        options: SubmitOptions,
    ) -> PromptResponse:
        return PromptResponse(prompt_id=prompt_id, number=0)

    async def lookup(self, prompt_id: str) -> JobSnapshot | None:
        self.lookups += 1
        return JobSnapshot(status="success", outputs=OUTPUTS)

    async def in_flight(self) -> dict[str, str] | None:
        return {}

    async def cancel(self, prompt_id: str, *, running: bool) -> bool:
        return False

    async def save(
        self, files: Sequence[OutputFile], folder: object, *, overwrite: bool
    ) -> list[Path]:
        return []


def live_session(
    http: aiohttp.ClientSession, server: str, client_id: str, backend: Any, options: ClientOptions
) -> LiveSession:
    """A real live session whose WebSocket goes to ``server`` and whose HTTP side is ``backend``."""
    ws_url = URL(server.replace("http://", "ws://") + f"/ws?clientId={client_id}")

    def connect(
        dispatch: Callable[[Event], None], on_reconnect: Callable[[ReconnectInfo], Awaitable[None]]
    ) -> Connection:
        return Connection(
            http, ws_url, options=options, dispatch=dispatch, on_reconnect=on_reconnect
        )

    return LiveSession(backend, connect, client_id=client_id, options=options)


async def prepare(http: aiohttp.ClientSession, server: str, **params: object) -> int:
    async with http.post(f"{server}/prepare", json=params) as response:
        frames: int = (await response.json())["frames"]
    return frames


async def go(http: aiohttp.ClientSession, server: str, client_id: str) -> None:
    async with http.post(f"{server}/go", json={"client_id": client_id}) as response:
        await response.read()


async def raw_round(
    http: aiohttp.ClientSession, server: str, round_: int, scenario: dict[str, object]
) -> tuple[float, int]:
    """The ceiling: receive and decode every frame, no routing. Returns (seconds, frames)."""
    client_id = f"raw-{round_}"
    ws = await http.ws_connect(
        server.replace("http://", "ws://") + f"/ws?clientId={client_id}",
        decode_text=False,
        max_msg_size=0,
    )
    try:
        await ws.receive()  # the status greeting
        frames = await prepare(http, server, client_id=client_id, round=round_, **scenario)
        text, binary = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
        gc.collect()
        started = time.perf_counter()
        trigger = asyncio.create_task(go(http, server, client_id))
        for _ in range(frames):
            message = await ws.receive()
            if message.type is text:
                decode_message(message.data)
            elif message.type is binary:
                parse_binary_frame(message.data)
            else:
                raise RuntimeError(f"socket ended early: {message.type}")
        elapsed = time.perf_counter() - started
        await trigger
    finally:
        await ws.close()
    return elapsed, frames


def route_event(data: bytes) -> tuple[str | None, object]:
    """The minimal hand-off's routing of a text frame: decode it, read its prompt id."""
    event = decode_message(data)
    return event.prompt_id, event


async def handoff_round(
    http: aiohttp.ClientSession,
    server: str,
    round_: int,
    scenario: dict[str, object],
    *,
    per_job: int,
    route: Callable[[bytes], tuple[str | None, object]] = route_event,
) -> tuple[float, int]:
    """The floor of any per-job hand-off: ``route`` each frame, queue it, wake the job's task.

    One task per job of ``scenario`` reads ``per_job`` items from its deque. Returns (seconds,
    frames). P2 uses it too, routing previews instead of text events.
    """
    client_id = f"handoff-{round_}"
    buffers: dict[str | None, deque[object]] = {
        prompt_id_of(round_, index): deque() for index in range(int(str(scenario["jobs"])))
    }
    waiters: dict[str | None, asyncio.Future[None]] = {}
    loop = asyncio.get_running_loop()

    async def consume(prompt_id: str | None) -> None:
        buffer, count = buffers[prompt_id], 0
        while count < per_job:
            if buffer:
                buffer.popleft()
                count += 1
            else:
                waiter = waiters[prompt_id] = loop.create_future()
                await waiter

    ws = await http.ws_connect(
        server.replace("http://", "ws://") + f"/ws?clientId={client_id}",
        decode_text=False,
        max_msg_size=0,
    )
    try:
        await ws.receive()  # the status greeting
        frames = await prepare(http, server, client_id=client_id, round=round_, **scenario)
        gc.collect()
        started = time.perf_counter()
        consumers = [asyncio.create_task(consume(prompt_id)) for prompt_id in buffers]
        trigger = asyncio.create_task(go(http, server, client_id))
        for _ in range(frames):
            prompt_id, item = route((await ws.receive()).data)
            buffers[prompt_id].append(item)
            waiter = waiters.pop(prompt_id, None)
            if waiter is not None:
                waiter.set_result(None)
        await asyncio.gather(*consumers)
        elapsed = time.perf_counter() - started
        await trigger
    finally:
        await ws.close()
    return elapsed, frames


async def full_round(
    http: aiohttp.ClientSession, server: str, round_: int, jobs: int, scenario: dict[str, object]
) -> tuple[float, int, dict[str, int]]:
    """The library: Connection → ProtocolState → Dispatcher → Job streams → one task per job."""
    client_id = f"full-{round_}"
    live = live_session(http, server, client_id, MemoryBackend(), ClientOptions())
    try:
        handles: list[Job] = [
            await live.submit(PROMPT, prompt_id=prompt_id_of(round_, index))
            for index in range(jobs)
        ]
        frames = await prepare(http, server, client_id=client_id, round=round_, **scenario)

        async def consume(job: Job) -> int:
            count = 0
            async for _event in job:
                count += 1
            await job.result()
            return count

        gc.collect()
        started = time.perf_counter()
        consumers = [asyncio.create_task(consume(job)) for job in handles]
        await go(http, server, client_id)
        counts = await asyncio.gather(*consumers)
        elapsed = time.perf_counter() - started
        overflow = sum(
            job.stats.coalesced + job.stats.dropped_events + job.stats.dropped_previews
            for job in handles
        )
        seen = {"events": sum(counts), "overflowed": overflow, "orphaned": live.dispatcher.orphaned}
    finally:
        await live.aclose()
    return elapsed, frames, seen


async def wake_cost(tasks: int, rounds: int) -> float:
    """Seconds per task wake-up: ``tasks`` tasks, each woken once per round by a future.

    The least any design that hands each event to its job's own task can pay per event, on
    top of receiving and decoding it (the floor the full path is measured against).
    """
    loop = asyncio.get_running_loop()
    waiters: list[asyncio.Future[None]] = [loop.create_future() for _ in range(tasks)]

    async def consumer(index: int) -> None:
        for _ in range(rounds):
            await waiters[index]
            waiters[index] = loop.create_future()

    running = [asyncio.create_task(consumer(index)) for index in range(tasks)]
    await asyncio.sleep(0)
    gc.collect()
    started = time.perf_counter()
    for _ in range(rounds):
        for waiter in list(waiters):
            waiter.set_result(None)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    await asyncio.gather(*running)
    return (time.perf_counter() - started) / (tasks * rounds)


async def measure(server: str, runs: int, jobs: int, steps: int) -> dict[str, Any]:
    scenario: dict[str, object] = {"scenario": "events", "jobs": jobs, "steps": steps}
    rates: dict[str, list[float]] = {"raw": [], "handoff": [], "full": []}
    seen: dict[str, int] = {}
    frames = 0
    async with aiohttp.ClientSession() as http:
        await raw_round(http, server, 10_000, scenario)  # warm-up, not counted
        for round_ in range(runs):
            order = ("raw", "handoff", "full")
            for path in order[round_ % 3 :] + order[: round_ % 3]:  # rotate who goes first
                if path == "raw":
                    seconds, frames = await raw_round(http, server, round_, scenario)
                elif path == "handoff":
                    seconds, frames = await handoff_round(
                        http, server, 200 + round_, scenario, per_job=3 + 2 * steps + 3
                    )
                else:
                    seconds, frames, seen = await full_round(
                        http, server, 100 + round_, jobs, scenario
                    )
                rates[path].append(frames / seconds)
    wakes = [await wake_cost(jobs, 20) for _ in range(max(3, runs))]
    return {**rates, "frames": frames, "seen": seen, "wake_seconds": wakes}


def body(args: argparse.Namespace, report: Report) -> None:
    jobs = min(args.jobs, 50) if args.quick else args.jobs
    runs = 1 if args.quick else args.runs
    steps = 20
    with ServerProcess("push") as server:
        found = asyncio.run(measure(server.url, runs, jobs, steps))
    raw, full = median(found["raw"]), median(found["full"])
    table = report.table(
        f"Frames per second, {jobs} concurrent jobs × {3 + 2 * steps + 3} frames, median of {runs}",
        "path",
        "frames/s (median)",
        "runs",
        "vs ceiling",
    )
    table.add(
        "raw ceiling (receive + typed decode)",
        f"{raw:,.0f}",
        " ".join(f"{r:,.0f}" for r in found["raw"]),
        "100%",
    )
    table.add(
        "full path (dispatcher → job → task)",
        f"{full:,.0f}",
        " ".join(f"{r:,.0f}" for r in found["full"]),
        f"{full / raw:.0%}",
    )
    handoff = median(found["handoff"])
    table.add(
        "floor: minimal hand-off to one task per job",
        f"{handoff:,.0f}",
        " ".join(f"{r:,.0f}" for r in found["handoff"]),
        f"{handoff / raw:.0%}",
    )
    wake = median(found["wake_seconds"])
    report.notes.append(
        "The floor row decodes each event, appends it to its job's deque and wakes that job's "
        "task, nothing more: what any design that hands events to per-job tasks must pay. It "
        f"bounds such a design at {handoff / raw:.0%} of the ceiling here; the full path reaches "
        f"{full / handoff:.0%} of that floor. Waking a task costs {wake * 1e6:.2f} µs here "
        f"(median of {len(found['wake_seconds'])}), about as much as receiving and decoding a "
        f"frame ({1e6 / raw:.2f} µs)."
    )
    seen = found["seen"]
    report.notes.append(
        f"{found['frames']:,} frames per round; the consumers received {seen.get('events', 0):,} "
        f"events (+ none lost: {seen.get('overflowed', 0)} coalesced or dropped, "
        f"{seen.get('orphaned', 0)} orphaned)."
    )
    paired = " ".join(f"{f / h:.0%}" for f, h in zip(found["full"], found["handoff"], strict=True))
    report.notes.append(
        f"Full path / floor in each round (the two run next to each other): {paired}."
    )
    report.raw = found
    report.target("P1 full path / minimal hand-off floor", full / handoff, ">=", 0.85, "%")


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=1000, help="concurrent jobs")


main = main_of(
    __doc__.splitlines()[0], 5, body, name="p1_dispatcher", title="P1 dispatcher", setup=setup
)

if __name__ == "__main__":
    raise SystemExit(main(None))
