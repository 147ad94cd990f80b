"""The live session against the fake server, with faults injected (issue scenarios 1–11).

Every duration is a multiple of ``UNIT`` (env ``COMFY_ASYNC_TEST_UNIT``, seconds), so the whole
set can be slowed down on a loaded machine without editing a test. Each scenario records its
figures (time, memory, counts) with the ``figures`` fixture; they are printed after the run.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc

import aiohttp
import pytest

from comfy_async import ComfyClient
from comfy_async._live.connection import ConnectionState
from comfy_async.config import (
    ReconcilePolicy,
    StreamLimits,
)
from comfy_async.errors import (
    AuthenticationError,
    ExecutionError,
    JobCancelled,
    JobInterrupted,
    JobLost,
)
from comfy_async.events import (
    Executed,
    ExecutionCached,
    ExecutionFailed,
    ExecutionStart,
    ExecutionSuccess,
    PreviewImage,
    ProgressText,
    Reconnected,
)
from comfy_async.job import Job, JobResult
from comfy_async.testing import (
    FakeComfyServer,
    malformed_binary_frame,
    malformed_text_frame,
    oversize_frame,
    unknown_binary_frame,
    unknown_text_frame,
)
from tests.session.conftest import UNIT, assert_clean, options, outcome
from tests.session.graphs import blocked, failing, sleeper

# --------------------------------------------------------------------------- 1


@pytest.mark.slow
async def test_500_jobs_with_the_socket_reset_every_2_units(server, figures) -> None:
    jobs_count = 500
    tracemalloc.start()
    started = time.perf_counter()
    comfy = ComfyClient(server.url, options=options())
    jobs = await asyncio.gather(*(comfy.submit(sleeper(steps=2)) for _ in range(jobs_count)))

    async def reset_periodically() -> int:
        resets = 0
        while True:
            await asyncio.sleep(20 * UNIT)
            resets += server.faults.drop_websocket()

    resetter = asyncio.create_task(reset_periodically())
    results = await asyncio.gather(*(outcome(job, 600 * UNIT) for job in jobs))
    resetter.cancel()
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    successes = [r for r in results if isinstance(r, JobResult)]
    assert len(successes) == jobs_count, [r for r in results if not isinstance(r, JobResult)][:3]
    assert len({r.prompt_id for r in successes}) == jobs_count  # each delivered once
    assert all(server.posts_for(job.prompt_id) == 1 for job in jobs)
    assert len(server.prompt_posts) == jobs_count
    reconnects = comfy._live.connection.connects - 1
    await comfy.aclose()
    assert_clean(comfy)
    figures(
        jobs=jobs_count,
        seconds=round(elapsed, 2),
        reconnects=reconnects,
        reconciled=sum(r.reconciled for r in successes),
        peak_mib=round(peak / 2**20, 1),
    )
    assert reconnects >= 1


# --------------------------------------------------------------------------- 2


async def test_a_zombie_link_is_detected_and_the_job_completes_once(server, figures) -> None:
    heartbeat = 5 * UNIT
    async with ComfyClient(server.url, options=options()) as comfy:
        job = await comfy.submit(sleeper(steps=5, delay=4 * UNIT))
        await asyncio.sleep(2 * UNIT)
        server.faults.stall_websocket(comfy.client_id)  # open, silent, no pongs
        stalled = time.perf_counter()
        await asyncio.wait_for(
            comfy._live.connection.wait_for_state(ConnectionState.RECONNECTING), 10 * heartbeat
        )
        detected = time.perf_counter() - stalled
        result = await asyncio.wait_for(job.result(), 100 * UNIT)
        assert result.prompt_id == job.prompt_id
        events = [event async for event in job]
        assert sum(isinstance(e, ExecutionSuccess) for e in events) <= 1
        assert any(isinstance(e, Reconnected) for e in events)
        server.faults.release_websocket()
    figures(heartbeat=heartbeat, detected_after=round(detected, 3), limit=1.5 * heartbeat + 0.5)
    assert detected <= 1.5 * heartbeat + 0.5


# --------------------------------------------------------------------------- 3


@pytest.mark.parametrize(
    "reconcile",
    [
        pytest.param(True, id="reconciled"),
        pytest.param(
            False,
            id="without-reconciliation",
            marks=pytest.mark.xfail(
                strict=True, raises=TimeoutError, reason="reconciliation is what saves these jobs"
            ),
        ),
    ],
)
async def test_reconnect_orphaning_bug_jobs_complete_through_reconciliation(
    server, figures, reconcile: bool
) -> None:
    assert server.faults.orphaning_bug
    policy = ReconcilePolicy(silent_after=5 * UNIT, max_silent_after=10 * UNIT, enabled=reconcile)
    async with ComfyClient(server.url, options=options(reconcile=policy)) as comfy:
        jobs = [await comfy.submit(sleeper(steps=2, delay=UNIT)) for _ in range(20)]
        await asyncio.sleep(2 * UNIT)
        # A zombie: the client gives up on the old socket and opens a new one; when the old one
        # is finally cleaned up, the server drops the sid the new socket uses (protocol §3.1).
        server.faults.stall_websocket(comfy.client_id)
        await asyncio.wait_for(
            comfy._live.connection.wait_for_state(ConnectionState.RECONNECTING), 40 * UNIT
        )
        await asyncio.wait_for(
            comfy._live.connection.wait_for_state(ConnectionState.OPEN), 40 * UNIT
        )
        server.faults.release_websocket()
        started = time.perf_counter()
        results = await asyncio.wait_for(
            asyncio.gather(*(job.result() for job in jobs)), 200 * UNIT
        )
        figures(
            jobs=len(results),
            reconciled=sum(r.reconciled for r in results),
            seconds_after_orphaning=round(time.perf_counter() - started, 2),
            sockets=comfy._live.connection.connects,
        )
    assert len(results) == 20


# --------------------------------------------------------------------------- 4


async def test_events_before_the_post_returns_are_not_lost(server) -> None:
    graph = sleeper(steps=1, color=4242)
    async with ComfyClient(server.url, options=options()) as comfy:
        first = await comfy.run(graph)
        server.faults.delay_prompt_response(3 * UNIT)  # the cached rerun ends during the POST
        job = await comfy.submit(graph)
        result = await asyncio.wait_for(job.result(), 20 * UNIT)
    kinds = [type(event) async for event in job]
    assert kinds[:2] == [ExecutionStart, ExecutionCached]
    assert Executed in kinds
    assert ExecutionSuccess in kinds
    assert result.outputs == first.outputs  # a fully cached run still has its outputs
    assert set(result.cached_nodes) == {"1", "2", "3"}


# --------------------------------------------------------------------------- 5


async def test_one_slow_consumer_does_not_delay_the_others(figures) -> None:
    limits = StreamLimits(job_events=32, job_previews=4)
    opts = options(limits=limits)
    async with FakeComfyServer(ws_send_buffer=16 * 1024) as fake:

        async def batch(with_slow: bool) -> tuple[float, Job | None]:
            async with ComfyClient(fake.url, options=opts) as comfy:
                await comfy.connect()
                started = time.perf_counter()
                slow = None
                if with_slow:  # it runs first and floods its stream, which nobody reads yet
                    slow = await comfy.submit(sleeper(steps=60, preview="JPEG"))
                others = await asyncio.gather(
                    *(comfy.submit(sleeper(steps=2, delay=UNIT / 10)) for _ in range(99))
                )

                async def consume(job: Job) -> None:
                    async for _ in job:
                        pass

                await asyncio.wait_for(asyncio.gather(*map(consume, others)), 300 * UNIT)
                elapsed = time.perf_counter() - started
                if slow is not None:
                    await asyncio.wait_for(slow.wait(), 100 * UNIT)
                    events = [event async for event in slow]  # iterated only now
                    kinds = [type(e) for e in events]
                    assert kinds.count(ExecutionStart) == 1
                    assert kinds.count(ExecutionSuccess) == 1
                    assert sum(isinstance(e, Executed) for e in events) == 1
                    assert slow.stats.dropped_previews > 0
                    assert slow.stats.coalesced > 0
                return elapsed, slow

        baseline, _ = await batch(with_slow=False)
        loaded, slow = await batch(with_slow=True)
        server_drops = fake.slow_socket_drops
    assert slow is not None
    figures(
        baseline_s=round(baseline, 3),
        with_slow_consumer_s=round(loaded, 3),
        dropped_previews=slow.stats.dropped_previews,
        coalesced=slow.stats.coalesced,
        server_slow_socket_drops=server_drops,
    )
    assert loaded <= baseline * 1.5 + 20 * UNIT


# --------------------------------------------------------------------------- 6


@pytest.mark.parametrize("metadata", [True, False], ids=["type-4", "legacy-type-1"])
async def test_previews_reach_only_their_own_job(server, metadata: bool) -> None:
    async with ComfyClient(server.url, options=options(preview_metadata=metadata)) as comfy:
        jpeg = await comfy.submit(sleeper(steps=3, preview="JPEG", text="from jpeg"))
        png = await comfy.submit(sleeper(steps=3, preview="PNG", text="from png"))
        results = await asyncio.gather(jpeg.result(), png.result())
        assert len(results) == 2
        by_job = {
            job.prompt_id: [e async for e in job if isinstance(e, PreviewImage | ProgressText)]
            for job in (jpeg, png)
        }
    for job, mime, text in ((jpeg, "image/jpeg", "from jpeg"), (png, "image/png", "from png")):
        previews = [e for e in by_job[job.prompt_id] if isinstance(e, PreviewImage)]
        texts = [e.text for e in by_job[job.prompt_id] if isinstance(e, ProgressText)]
        assert len(previews) == 3
        assert {p.mime for p in previews} == {mime}
        assert {p.frame_type for p in previews} == ({4} if metadata else {1})
        assert all(p.prompt_id == job.prompt_id for p in previews)
        assert texts == [text]


async def test_text_of_a_prompt_without_client_goes_to_the_session_stream(server) -> None:
    async with ComfyClient(server.url, options=options()) as comfy:
        tap = comfy.events()
        await comfy._live.connection.ensure_open()
        async with aiohttp.ClientSession() as raw:  # another client, no client_id
            body = {"prompt": sleeper(steps=1, text="stranger")}
            async with raw.post(f"{server.url}/prompt", json=body) as response:
                assert response.status == 200
        await server.wait_idle()
        await asyncio.sleep(2 * UNIT)
        tap.close()
        texts = [e for e in [e async for e in tap] if isinstance(e, ProgressText)]
    assert [t.text for t in texts] == ["stranger"]


# --------------------------------------------------------------------------- 7


async def test_only_the_failing_job_raises_and_a_blocker_does_not_end_its_job(server) -> None:
    async with ComfyClient(server.url, options=options()) as comfy:
        graphs = [sleeper(steps=1) for _ in range(8)]
        graphs[3] = failing("boom")
        graphs[5] = blocked()
        jobs = [await comfy.submit(graph) for graph in graphs]
        results = await asyncio.gather(*(outcome(job, 50 * UNIT) for job in jobs))
        blocked_events = [e async for e in jobs[5]]
    for index, result in enumerate(results):
        if index == 3:
            assert isinstance(result, ExecutionError)
            assert (result.node_id, result.node_type) == ("2", "ProbeRaise")
            assert result.exception_message.startswith("boom")
            assert result.traceback
        else:
            assert isinstance(result, JobResult), (index, result)
    assert any(isinstance(e, ExecutionFailed) and e.is_blocked for e in blocked_events)
    assert "4" in results[5].outputs  # type: ignore[union-attr]


# --------------------------------------------------------------------------- 8


async def test_cancelling_pending_and_running_jobs(server) -> None:
    async with ComfyClient(server.url, options=options()) as comfy:
        running = await comfy.submit(sleeper(steps=10, delay=2 * UNIT))
        bystander = await comfy.submit(sleeper(steps=1))
        pending = await comfy.submit(sleeper(steps=1))
        await asyncio.wait_for(_until_running(running), 20 * UNIT)

        waiter = asyncio.create_task(pending.result())
        await asyncio.sleep(UNIT)
        waiter.cancel()  # the awaiting task is cancelled: the pending job leaves the queue
        with pytest.raises(asyncio.CancelledError):
            await waiter
        with pytest.raises(JobCancelled):
            await asyncio.wait_for(pending.result(), 20 * UNIT)

        cancels = await asyncio.gather(running.cancel(), running.cancel())
        assert cancels == [True, True]
        with pytest.raises(JobCancelled):
            await asyncio.wait_for(running.result(), 20 * UNIT)
        assert await running.cancel() is True  # idempotent: no new request
        assert isinstance(await asyncio.wait_for(bystander.result(), 20 * UNIT), JobResult)
    assert server.request_counts["POST /jobs/{job_id}/cancel"] == 2  # one per cancelled job
    assert server.request_counts["POST /interrupt"] == 0  # never a global interrupt


async def _until_running(job: Job) -> None:
    async for event in job:
        if isinstance(event, ExecutionStart):
            return


# --------------------------------------------------------------------------- 9


async def test_a_restart_mid_batch_loses_jobs_and_none_reports_success(figures) -> None:
    async with FakeComfyServer() as fake, ComfyClient(fake.url, options=options()) as comfy:
        jobs = [await comfy.submit(sleeper(steps=2, delay=UNIT)) for _ in range(12)]
        await asyncio.wait_for(jobs[2].wait(), 50 * UNIT)
        restarted_at = time.time()
        await fake.restart()
        results = await asyncio.gather(*(outcome(job, 100 * UNIT) for job in jobs))
    succeeded = [r for r in results if isinstance(r, JobResult)]
    lost = [r for r in results if isinstance(r, JobLost)]
    assert len(succeeded) + len(lost) == len(jobs), results
    assert lost
    for result in succeeded:  # every success really finished before the restart
        assert result.finished_at is None or result.finished_at <= restarted_at + UNIT
    figures(succeeded_before_restart=len(succeeded), lost=len(lost))


# --------------------------------------------------------------------------- 10


async def test_a_wrong_cloud_key_fails_fast_without_a_reconnect_storm(figures) -> None:
    async with FakeComfyServer(flavour="cloud", api_key="right-key") as fake:
        comfy = ComfyClient.cloud(api_key="wrong-key", base_url=fake.url, options=options())
        started = time.perf_counter()
        with pytest.raises(AuthenticationError) as caught:
            await comfy.submit(sleeper())
        elapsed = time.perf_counter() - started
        await asyncio.sleep(10 * UNIT)  # would a background loop keep trying?
        attempts = fake.request_counts["GET /ws"]
        with pytest.raises(AuthenticationError):
            await comfy.submit(sleeper())
        await comfy.aclose()
    assert "wrong-key" not in str(caught.value)
    assert "wrong-key" not in repr(caught.value)
    figures(ws_attempts=attempts, seconds=round(elapsed, 3))
    assert attempts <= 3


# --------------------------------------------------------------------------- 11


async def test_malformed_unknown_and_oversized_frames_do_not_break_the_session(server) -> None:
    async with ComfyClient(server.url, options=options(max_message_size=64 * 1024)) as comfy:
        tap = comfy.events()
        jobs = [await comfy.submit(sleeper(steps=3, delay=UNIT)) for _ in range(5)]
        for frame in (
            malformed_text_frame(),
            unknown_text_frame(),
            malformed_binary_frame(),
            unknown_binary_frame(),
            oversize_frame(128 * 1024),  # over the limit: the socket is replaced
            malformed_text_frame(),
        ):
            server.faults.inject(frame, comfy.client_id)
            await asyncio.sleep(UNIT)
        results = await asyncio.wait_for(asyncio.gather(*(j.result() for j in jobs)), 100 * UNIT)
        tap.close()
        kinds = {event.type async for event in tap}
    assert len(results) == 5
    assert {"malformed_frame", "unknown_binary"} <= kinds
    assert comfy._live.connection.connects >= 2


async def test_interrupt_by_another_client_is_not_a_cancel(server) -> None:
    async with ComfyClient(server.url, options=options()) as comfy:
        job = await comfy.submit(sleeper(steps=10, delay=2 * UNIT))
        await asyncio.wait_for(_until_running(job), 20 * UNIT)
        async with aiohttp.ClientSession() as raw:
            async with raw.post(f"{server.url}/interrupt", json={}) as response:
                assert response.status == 200
        with pytest.raises(JobInterrupted) as caught:
            await asyncio.wait_for(job.result(), 20 * UNIT)
    assert not isinstance(caught.value, JobCancelled)


# --------------------------------------------------------------------------- Cloud


async def test_cloud_parallel_jobs_and_two_sessions_of_one_user(figures) -> None:
    async with FakeComfyServer(flavour="cloud", api_key="k", cloud_concurrency=3) as fake:
        first = ComfyClient.cloud(api_key="k", base_url=fake.url, options=options())
        second = ComfyClient.cloud(api_key="k", base_url=fake.url, options=options())
        async with first, second:
            tap = second.events()
            mine = [
                await first.submit(sleeper(steps=4, delay=UNIT / 2, preview="JPEG"))
                for _ in range(4)
            ]
            theirs = [
                await second.submit(sleeper(steps=4, delay=UNIT / 2, preview="PNG"))
                for _ in range(2)
            ]
            started = time.perf_counter()
            results = await asyncio.wait_for(
                asyncio.gather(*(job.result() for job in mine + theirs)), 100 * UNIT
            )
            elapsed = time.perf_counter() - started
            tap.close()
            # every socket of the user gets every job's events: the other session's ones are
            # not its jobs, so they reach its session stream, never one of its jobs
            foreign = {e.prompt_id async for e in tap if e.prompt_id is not None}
            for job, mime in [(j, "image/jpeg") for j in mine] + [(j, "image/png") for j in theirs]:
                previews = [e async for e in job if isinstance(e, PreviewImage)]
                assert len(previews) == 4
                assert {p.mime for p in previews} == {mime}
    assert len(results) == 6
    assert {job.prompt_id for job in mine} <= foreign
    serial = 6 * 4 * (UNIT / 2)
    # They ran in parallel, as the server's own clock says (a stall of this loop cannot hide
    # it), and never more than the account's 3 at once.
    spans = [(r.started_at, r.finished_at) for r in results]
    assert all(start is not None and end is not None for start, end in spans)
    ticks = sorted((t, step) for start, end in spans for t, step in ((start, 1), (end, -1)))
    running = peak = 0
    for _, step in ticks:  # at equal times an end sorts first: touching spans do not overlap
        running += step
        peak = max(peak, running)
    figures(jobs=6, seconds=round(elapsed, 2), serial_would_take=round(serial, 2), peak=peak)
    assert 2 <= peak <= 3


async def test_the_cloud_key_never_reaches_logs_reprs_or_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = "sk-cloud-0123456789abcdef"
    caplog.set_level("DEBUG")
    async with FakeComfyServer(flavour="cloud", api_key=key) as fake:
        async with ComfyClient.cloud(api_key=key, base_url=fake.url, options=options()) as comfy:
            job = await comfy.submit(sleeper(steps=2, delay=UNIT))
            fake.faults.drop_websocket()  # a reconnect: the URL with its token is used again
            await asyncio.wait_for(job.result(), 50 * UNIT)
            texts = [repr(comfy), repr(comfy._live.connection), repr(job)]
        wrong = ComfyClient.cloud(api_key=key + "x", base_url=fake.url, options=options())
        with pytest.raises(AuthenticationError) as caught:
            await wrong.submit(sleeper())
        await wrong.aclose()
    chain: list[BaseException] = []
    error: BaseException | None = caught.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    texts += [str(e) for e in chain] + [repr(e) for e in chain]
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(record.exc_info) for record in caplog.records if record.exc_info]
    assert comfy._live.connection.connects >= 2
    assert not [text for text in texts if key in text]
