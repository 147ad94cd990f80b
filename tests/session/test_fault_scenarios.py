"""Fault scenarios beyond the basic ones: a blocked loop, an idle proxy, cancellation storms,
pruned history, and jobs nobody consumes beside another client.

Every duration is a multiple of ``UNIT`` (see ``tests/session/conftest.py``). Each scenario
records its figures with the ``figures`` fixture; they are printed after the run and quoted in
``tests/RELIABILITY.md``.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import time
import tracemalloc
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from blockbuster import blockbuster_ctx
from hypothesis import given, settings
from hypothesis import strategies as st

from comfy_async import ComfyClient
from comfy_async._live.connection import ReconnectInfo
from comfy_async.config import DEFAULT_HEARTBEAT, HeartbeatPolicy, ReconcilePolicy
from comfy_async.errors import JobExpired, JobLost
from comfy_async.events import Event, Executed, ExecutionSuccess
from comfy_async.job import Job, JobResult
from comfy_async.testing import FakeComfyServer
from tests.session.conftest import UNIT, ChaosProxy, assert_clean, options, outcome
from tests.session.graphs import sleeper, two_outputs
from tests.session.server_process import server_process

_THIS_FILE = "/".join(Path(__file__).parts[-3:])

# --------------------------------------------------------------------------- a blocked loop


async def test_a_blocked_event_loop_delays_a_job_but_it_completes_once(
    server, figures, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A consumer and a reconnect callback that block the loop for 2 units, heartbeat 0.5 s.

    The whole scenario runs under blockbuster, watching every call made from the library's own
    code (the fake server is excluded: it is test scaffolding): any blocking call there (sleep,
    file or socket I/O, a lock acquired without a timeout...) raises ``BlockingError``. Only the
    two user functions of this test are allowed to block.
    """
    heartbeat, block = 0.5, 2 * UNIT
    reconnects: list[ReconnectInfo] = []

    async def on_reconnect(info: ReconnectInfo) -> None:
        reconnects.append(info)
        time.sleep(block)  # a careless user callback

    def careless_consumer_step(event: Event) -> None:
        time.sleep(block)

    caplog.set_level(logging.INFO, logger="comfy_async")
    opts = options(heartbeat=HeartbeatPolicy(interval=heartbeat))
    with blockbuster_ctx(["comfy_async"], excluded_modules=["comfy_async.testing"]) as watch:
        watch.functions["time.sleep"].can_block_in(_THIS_FILE, {"on_reconnect"})
        started = time.perf_counter()
        comfy = ComfyClient(server.url, options=opts, on_reconnect=on_reconnect)
        async with comfy:
            job = await comfy.submit(sleeper(steps=6, delay=UNIT, preview="JPEG"))
            events: list[Event] = []
            async for event in job:
                events.append(event)
                careless_consumer_step(event)
            result = await job.result()
            saved = await result.save(tmp_path)
            # A forced reconnect runs the blocking callback on the library's reconnect path.
            server.faults.drop_websocket()
            second = await comfy.submit(sleeper(steps=2, delay=UNIT))
            again = await asyncio.wait_for(second.result(), 100 * UNIT)
            connects = comfy._live.connection.connects
        elapsed = time.perf_counter() - started
    assert_clean(comfy)
    blocking = [r for r in caplog.records if "Blocking call" in r.getMessage() or r.exc_info]
    assert blocking == []
    assert result.prompt_id == job.prompt_id
    assert again.prompt_id == second.prompt_id
    assert sum(isinstance(e, ExecutionSuccess) for e in events) == 1
    assert server.posts_for(job.prompt_id) == 1
    assert server.posts_for(second.prompt_id) == 1
    assert [path.name for path in saved]
    assert reconnects  # the callback ran (and blocked) at least once
    figures(
        heartbeat_s=heartbeat,
        block_s=block,
        blocked_events=len(events),
        loop_blocked_s=round(block * (len(events) + len(reconnects)), 2),
        reconnects=connects - 1,
        seconds=round(elapsed, 2),
    )


# --------------------------------------------------------------------------- an idle proxy

#: A common idle timeout of reverse proxies and load balancers (nginx ``proxy_read_timeout``,
#: AWS ALB): the default heartbeat is a third of it.
COMMON_PROXY_IDLE_TIMEOUT = 60.0


@pytest.mark.parametrize("heartbeat", [True, False], ids=["default-heartbeat", "heartbeat-off"])
async def test_an_idle_proxy_does_not_cut_a_socket_kept_alive_by_the_heartbeat(
    figures, heartbeat: bool
) -> None:
    """A proxy cuts connections silent for ``idle``; a job has a silent phase of 3 × ``idle``.

    The heartbeat keeps the proportion of the library's default to a common proxy timeout
    (20 s to 60 s): with it no WebSocket is cut and nothing reconnects; without it the proxy cuts
    the socket and the job is still delivered, once.
    """
    assert DEFAULT_HEARTBEAT * 3 <= COMMON_PROXY_IDLE_TIMEOUT
    idle = 10 * UNIT
    interval = idle * DEFAULT_HEARTBEAT / COMMON_PROXY_IDLE_TIMEOUT if heartbeat else None
    opts = options(heartbeat=HeartbeatPolicy(interval=interval))
    silent = {"EmptyImage": 3 * idle}  # the first node runs silently for 3 × idle
    async with (
        FakeComfyServer(node_durations=silent) as fake,
        ChaosProxy(fake.port, idle) as proxy,
        ComfyClient(proxy.url, options=opts) as comfy,
    ):
        started = time.perf_counter()
        job = await comfy.submit(sleeper(steps=2))
        result = await asyncio.wait_for(job.result(), 200 * UNIT)
        events = [event async for event in job]
        elapsed = time.perf_counter() - started
        reconnects = comfy._live.connection.connects - 1
        assert fake.posts_for(job.prompt_id) == 1
    figures(
        idle_s=idle,
        heartbeat_s=None if interval is None else round(interval, 3),
        silent_phase_s=3 * idle,
        websocket_cuts=proxy.websocket_closes,
        http_keepalive_cuts=proxy.http_closes,
        reconnects=reconnects,
        reconciled=result.reconciled,
        seconds=round(elapsed, 2),
    )
    assert result.prompt_id == job.prompt_id
    assert sum(isinstance(e, ExecutionSuccess) for e in events) <= 1
    if heartbeat:
        assert proxy.websocket_closes == 0
        assert reconnects == 0
    else:
        assert proxy.websocket_closes >= 1
        assert reconnects >= 1


# --------------------------------------------------------------------------- cancellation storms

STORM_TASKS = 8
STORM_ROUNDS = 20


@st.composite
def storms(draw: st.DrawFn) -> tuple[list[str], dict[int, float]]:
    """How each task consumes its job, and when each cancelled half of them is cancelled."""
    modes = draw(
        st.lists(st.sampled_from(["await", "iterate"]), min_size=STORM_TASKS, max_size=STORM_TASKS)
    )
    chosen = draw(
        st.sets(
            st.integers(0, STORM_TASKS - 1), min_size=STORM_TASKS // 2, max_size=STORM_TASKS // 2
        )
    )
    # 0 to 1 unit: before or during the POST (answered after 1 unit); later: queued or running.
    delays = {i: draw(st.floats(0.0, 12 * UNIT, allow_nan=False)) for i in sorted(chosen)}
    return modes, delays


@pytest.mark.slow
def test_cancellation_storms_cancel_exactly_the_abandoned_jobs(figures) -> None:
    """Hypothesis cancels half of the tasks awaiting or iterating jobs, at any moment, 20 rounds.

    Each round runs in its own loop (debug mode) against its own fake server.
    """
    rounds: list[dict[str, int]] = []

    @settings(max_examples=STORM_ROUNDS)
    @given(storm=storms())
    def storm_round(storm: tuple[list[str], dict[int, float]]) -> None:
        modes, delays = storm
        rounds.append(asyncio.run(_storm_round(modes, delays), debug=True))

    storm_round()
    figures(
        rounds=len(rounds),
        tasks=sum(r["tasks"] for r in rounds),
        cancelled=sum(r["cancelled"] for r in rounds),
        cancelled_in_post=sum(r["in_post"] for r in rounds),
        server_cancels=sum(r["server_cancels"] for r in rounds),
        delivered=sum(r["delivered"] for r in rounds),
    )
    assert len(rounds) >= STORM_ROUNDS


async def _storm_round(modes: list[str], delays: dict[int, float]) -> dict[str, int]:
    """One round: every rule of the job scope checked (see ``Job``'s docstring)."""
    problems: list[logging.LogRecord] = []
    handler = _Collect(problems)
    logging.getLogger("asyncio").addHandler(handler)
    logging.getLogger("comfy_async").addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            figures = await _storm(modes, delays)
            gc.collect()
    finally:
        logging.getLogger("asyncio").removeHandler(handler)
        logging.getLogger("comfy_async").removeHandler(handler)
    assert [str(w.message) for w in caught] == []
    assert [r.getMessage() for r in problems] == []
    return figures


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(UNIT / 10)


class _Collect(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.WARNING)
        self._into = into

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.name == "asyncio" and message.startswith("Executing ") and " took " in message:
            return  # debug mode's slow-callback notice: the machine's load, not a leftover
        self._into.append(record)


async def _storm(modes: list[str], delays: dict[int, float]) -> dict[str, int]:
    ids = [str(uuid.uuid4()) for _ in modes]
    jobs: dict[int, Job] = {}
    expected_cancels: set[str] = set()
    async with FakeComfyServer() as fake:
        fake.faults.delay_prompt_response(UNIT, times=len(modes))
        comfy = ComfyClient(fake.url, options=options())
        await comfy.connect()
        supervisor = comfy._live.connection._supervisor
        assert supervisor is not None

        async def consume(index: int) -> JobResult:
            job = jobs[index] = await comfy.submit(
                sleeper(steps=2, delay=UNIT), prompt_id=ids[index]
            )
            if modes[index] == "await":
                return await job.result()
            async for _ in job:
                pass
            return await job.result()

        tasks = [asyncio.create_task(consume(i)) for i in range(len(modes))]

        async def cancel_later(index: int, delay: float) -> None:
            await asyncio.sleep(delay)
            job = jobs.get(index)
            if tasks[index].cancel() and (job is None or not job.done()):
                expected_cancels.add(ids[index])  # abandoned: in the POST, queued or running

        await asyncio.gather(*(cancel_later(i, d) for i, d in delays.items()))
        outcomes = await asyncio.wait_for(
            asyncio.gather(*tasks, return_exceptions=True), 200 * UNIT
        )
        # the cancellations sent in the background reach the server; then the queue drains
        await asyncio.wait_for(
            _until(lambda: set(fake.cancel_requests) >= expected_cancels), 50 * UNIT
        )
        await fake.wait_idle(100 * UNIT)
        assert not supervisor.done()  # the reader never died
        assert comfy._live.connection.connects == 1
        for index, result in enumerate(outcomes):
            if index not in delays:  # never cancelled: delivered
                assert isinstance(result, JobResult), (index, result)
                assert result.prompt_id == ids[index]
        cancels = Counter(fake.cancel_requests)
        assert set(cancels) == expected_cancels
        assert all(count == 1 for count in cancels.values()), cancels
        for index in delays:  # an abandoned job ends cancelled, or done if it finished first
            job = jobs.get(index)
            if job is not None:
                assert await job.wait(50 * UNIT)
        await comfy.aclose()
        assert_clean(comfy)
    return {
        "tasks": len(modes),
        "cancelled": len(delays),
        "server_cancels": len(expected_cancels),
        "in_post": sum(1 for i in delays if i not in jobs),
        "delivered": sum(isinstance(r, JobResult) for r in outcomes),
    }


# --------------------------------------------------------------------------- pruned history


@pytest.mark.parametrize("jobs_api", [True, False], ids=["jobs-api", "history-and-queue"])
async def test_jobs_pruned_from_history_before_the_client_looked_end_as_expired(
    figures, jobs_api: bool
) -> None:
    """A history of 5; 20 jobs complete while the WebSocket is black-holed; then it comes back.

    The first job's first output was seen before the black hole, its end was not. The newest 5
    are still in history: reconciled successes. The 15 others were pruned before anything was
    seen of their end: each ends with ``JobExpired`` (the oldest record kept was queued after
    it), the first one keeping the output it showed, within a reconcile interval of the link's
    return. The whole history is never listed.
    """
    silent = 20 * UNIT  # no silent-job check during the black hole: nothing is seen early
    opts = options(reconcile=ReconcilePolicy(silent_after=silent, max_silent_after=2 * silent))
    async with FakeComfyServer(history_max_items=5) as fake, ChaosProxy(fake.port) as proxy:
        async with ComfyClient(proxy.url, options=opts, jobs_api=jobs_api) as comfy:
            first = await comfy.submit(two_outputs(delay=UNIT))
            async for event in first:
                if isinstance(event, Executed):
                    break  # its first output is seen; the second stage is still running
            proxy.blackhole_websockets()
            others = [await comfy.submit(sleeper(steps=1)) for _ in range(19)]
            await fake.wait_idle(100 * UNIT)
            proxy.restore()
            restored = time.perf_counter()
            jobs = [first, *others]
            outcomes = await asyncio.gather(*(outcome(job, 10 * silent) for job in jobs))
            settled_after = time.perf_counter() - restored
            reconnects = comfy._live.connection.connects - 1
    expired = [o for o in outcomes if isinstance(o, JobExpired)]
    kept = [o for o in outcomes if isinstance(o, JobResult)]
    figures(
        history_max_items=5,
        jobs=len(jobs),
        reconciled_successes=len(kept),
        expired=len(expired),
        lost=sum(isinstance(o, JobLost) for o in outcomes),
        reconcile_interval_s=silent,
        settled_after_return_s=round(settled_after, 2),
        reconnects=reconnects,
        history_listings=len(fake.history_listings),
    )
    assert isinstance(outcomes[0], JobExpired)
    assert set(outcomes[0].outputs) == {"3"}  # the output it showed is kept
    assert [type(o) for o in outcomes[1:15]] == [JobExpired] * 14
    assert all(o.outputs == {} for o in expired[1:])
    assert [o.prompt_id for o in kept] == [job.prompt_id for job in others[14:]]
    assert all(o.reconciled and "3" in o.outputs for o in kept)
    assert reconnects >= 1
    assert settled_after <= 2 * silent
    assert all(listing.get("max_items") for listing in fake.history_listings)  # never unbounded
    if jobs_api:  # the oldest record kept is read from the jobs API, never from history
        assert not any("offset" in listing for listing in fake.history_listings)


# --------------------------------------------------------------------------- absent consumers

ABSENT_JOBS = 200
SAMPLERS = 5  # 200 steps each: 1,000 progress events a job (200 steps are never throttled)
PREVIEW_BYTES = 100_000


def _many_samplers() -> dict[str, dict[str, object]]:
    graph = sleeper(steps=200)
    del graph["3"]
    upstream = "2"
    for index in range(SAMPLERS - 1):
        node = str(10 + index)
        graph[node] = {**graph["2"], "inputs": {**graph["2"]["inputs"], "image": [upstream, 0]}}  # type: ignore[dict-item]
        upstream = node
    graph["3"] = {
        "class_type": "SaveImage",
        "inputs": {"images": [upstream, 0], "filename_prefix": "a"},
    }
    return graph


@pytest.mark.slow
async def test_jobs_nobody_consumes_beside_another_client(figures) -> None:
    """200 jobs nobody iterates (1,000 progress events and 50 previews of 100 KB each) on Comfy
    Cloud, where every socket of the user gets every event, beside a raw WebSocket client.

    The server writes to its sockets one after another: a client that stopped reading would stall
    the other one. The library reads on whatever its consumers do, so the other client's message
    rate never drops to zero for a second; the jobs' streams drop and coalesce (and say so), and
    memory stays bounded. The server runs in a child process: the memory traced is the client's.
    """
    sampler = {
        "steps": 200,
        "preview": "image/jpeg",
        "preview_every": 20,
        "preview_size": PREVIEW_BYTES,
    }
    config = {
        "flavour": "cloud",
        "api_key": "absent-consumers",
        "time_scale": 0.0,
        "cloud_concurrency": 3,
        "behaviours": {"ProbeSleepProgress": sampler},
    }
    arrivals: list[float] = []
    stalls: list[tuple[float, float]] = []  # when this process's own loop could not run

    async def watch_own_loop() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(UNIT / 10)
            now = time.perf_counter()
            if now - last > UNIT:
                stalls.append((last, now))
            last = now

    async def observe(ws: aiohttp.ClientWebSocketResponse) -> None:
        async for _ in ws:
            arrivals.append(time.perf_counter())  # noqa: PERF401 - timed as each one comes

    async with server_process(**config) as (url, observer_url), aiohttp.ClientSession() as raw:
        tracemalloc.start()
        observer_ws = await raw.ws_connect(observer_url, max_msg_size=0)
        observer = asyncio.create_task(observe(observer_ws))
        comfy = ComfyClient.cloud(api_key="absent-consumers", base_url=url, options=options())
        async with comfy:
            await comfy.connect()
            watchdog = asyncio.create_task(watch_own_loop())
            started = time.perf_counter()
            jobs = [await comfy.submit(_many_samplers()) for _ in range(ABSENT_JOBS)]
            outcomes = await asyncio.gather(*(outcome(job, 1500 * UNIT) for job in jobs))
            finished = time.perf_counter()
            watchdog.cancel()
            _, peak = tracemalloc.get_traced_memory()
            reconnects = comfy._live.connection.connects - 1
            late = comfy._live.dispatcher.late
        tracemalloc.stop()
        await observer_ws.close()
        await observer
    # From the first message the jobs caused to the last one before they all ended. Both clients
    # live in this process: a gap while this process itself could not run (a loaded machine) is
    # not the server waiting for a client, so the time of such stalls inside a gap is not counted.
    during = [t for t in arrivals if started <= t <= finished]
    gaps = [
        (later - earlier) - _overlap(stalls, earlier, later)
        for earlier, later in itertools.pairwise(during)
    ]
    dropped_previews = sum(job.stats.dropped_previews for job in jobs)
    coalesced = sum(job.stats.coalesced for job in jobs)
    figures(
        jobs=len(jobs),
        delivered=sum(isinstance(o, JobResult) for o in outcomes),
        reconciled=sum(isinstance(o, JobResult) and o.reconciled for o in outcomes),
        reconnects=reconnects,
        seconds=round(finished - started, 1),
        peak_traced_mib=round(peak / 2**20, 1),
        dropped_previews=dropped_previews,
        coalesced=coalesced,
        late_events_dropped=late,
        observer_messages=len(during),
        observer_rate_per_s=round(len(during) / (finished - started)),
        observer_longest_gap_s=round(max(gaps), 3),
        own_loop_longest_stall_s=round(max((b - a for a, b in stalls), default=0.0), 3),
    )
    assert all(isinstance(o, JobResult) for o in outcomes), [
        o for o in outcomes if not isinstance(o, JobResult)
    ][:3]
    assert peak < 64 * 2**20
    assert dropped_previews > 0
    assert coalesced > 0
    assert max(gaps) < 10 * UNIT


def _overlap(intervals: list[tuple[float, float]], start: float, end: float) -> float:
    """How much of ``[start, end]`` the ``intervals`` cover (they do not overlap each other)."""
    return sum(max(0.0, min(end, b) - max(start, a)) for a, b in intervals)
