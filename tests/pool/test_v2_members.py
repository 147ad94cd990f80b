"""Comfy API v2 servers in a pool beside native ones, with faults injected.

The promises are the pool's own: the same Job whichever server runs it, each job one outcome,
no prompt run twice over the fleet. Runs are counted on the fakes: a native fake logs every
prompt it ran by its prompt id; a v2 fake's jobs run on its own native fake under the server's
job id, and each v2 job records the ``Idempotency-Key`` (the pool's prompt id) it came with.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from comfy_async import ComfyClient
from comfy_async.config import (
    Backoff,
    ClientOptions,
    HeartbeatPolicy,
    ReconcilePolicy,
    ReconnectPolicy,
    RetryPolicy,
)
from comfy_async.errors import JobLost, NoCapableServerError, PromptValidationError
from comfy_async.events import (
    ExecutionSuccess,
    JobMoved,
    PreviewImage,
    Progress,
    ServerDown,
    ServerUp,
)
from comfy_async.pool import ComfyPool, PoolServer
from comfy_async.testing import FakeComfyApiV2, FakeComfyServer
from tests.session.graphs import sleeper

if TYPE_CHECKING:
    from collections.abc import Callable

    from comfy_async.job import Job

UNIT = float(os.environ.get("COMFY_ASYNC_TEST_UNIT", "0.1"))

#: Quick to notice trouble, quick to retry: the scenarios break servers on purpose.
QUICK = ClientOptions(
    heartbeat=HeartbeatPolicy(interval=0.5),
    reconnect=ReconnectPolicy(backoff=Backoff(initial=0.05, maximum=0.3)),
    reconcile=ReconcilePolicy(silent_after=1.0, max_silent_after=2.0, follow_every=0.2),
    retry=RetryPolicy(max_retries=2, backoff=Backoff(initial=0.02, maximum=0.1)),
)

#: A custom node only the native server of these tests has.
RARE_NODES = {
    "RareSharpen": {
        "input": {"required": {"image": ["IMAGE"]}},
        "output": ["IMAGE"],
        "output_is_list": [False],
        "output_name": ["IMAGE"],
        "name": "RareSharpen",
        "display_name": "Rare Sharpen",
        "description": "",
        "category": "rare",
        "output_node": False,
    }
}


def graph(
    seed: int, *, steps: int = 3, preview: str = "none", delay: float = UNIT / 2
) -> dict[str, dict[str, object]]:
    """A job of ``steps`` steps of ``delay`` seconds, saving ``p{seed}_00001_.png``."""
    return sleeper(steps=steps, delay=delay, color=seed, prefix=f"p{seed}", preview=preview)


def rare_graph(seed: int) -> dict[str, dict[str, object]]:
    prompt = graph(seed)
    prompt["4"] = {"class_type": "RareSharpen", "inputs": {"image": ["2", 0]}}
    prompt["3"]["inputs"]["images"] = ["4", 0]  # type: ignore[index]
    return prompt


def runs(native: FakeComfyServer, v2: FakeComfyApiV2) -> Counter[str]:
    """How many times each pool prompt ran to success over the native and the v2 fake."""
    counted = Counter(pid for pid, outcome in native.finished if outcome == "success")
    for job_id, outcome in v2.native.finished:
        key = v2.jobs[job_id].key if job_id in v2.jobs else None
        if outcome == "success" and key is not None:
            counted[key] += 1
    return counted


async def wait_for(condition: Callable[[], bool], limit: float = 30.0) -> None:
    async with asyncio.timeout(limit):
        while not condition():
            await asyncio.sleep(0.01)


def v2_member(fake: FakeComfyApiV2, **options: Any) -> PoolServer:
    """The v2 fake as a pool server given by URL (the pool makes and closes its client)."""
    return PoolServer(fake.url, api="v2", api_key=fake.api_key, **options)


async def test_a_v2_server_runs_the_pools_jobs_beside_a_native_one() -> None:
    async with (
        FakeComfyServer(time_scale=1.0) as native,
        FakeComfyApiV2(time_scale=1.0) as v2,
    ):
        given = ComfyClient.v2(v2.url, api_key=v2.api_key, options=QUICK)
        async with (
            given,
            ComfyPool(
                [
                    PoolServer(native.url, max_queue=2),
                    PoolServer(given, name="v2", max_queue=2),
                ],
                options=QUICK,
                probe_every=0.1,
            ) as pool,
        ):
            # long enough that a job's stream is open before it ends, even on a loaded machine
            jobs = [
                await pool.submit(graph(seed, steps=6, delay=UNIT, preview="JPEG"))
                for seed in range(8)
            ]
            events = await asyncio.gather(*(collect(job) for job in jobs))
            results = [await job.result() for job in jobs]
            stats = pool.stats()
    on = Counter(job.server for job in jobs)
    assert set(on) == {native.url, given.base_url.rstrip("/")}  # both took work
    assert stats["v2"].api == "v2"
    assert stats[native.url].api == "native"
    assert stats["v2"].done + stats[native.url].done == 8
    for job, seen, result in zip(jobs, events, results, strict=True):
        assert [file.filename for file in result.files] == [f"p{jobs.index(job)}_00001_.png"]
        assert sum(isinstance(event, ExecutionSuccess) for event in seen) == 1
        assert any(isinstance(event, Progress) for event in seen)
        assert any(isinstance(event, PreviewImage) for event in seen)
    assert max(runs(native, v2).values()) == 1
    assert sum(runs(native, v2).values()) == 8


async def collect(job: Job) -> list[object]:
    return [event async for event in job]


async def test_a_v2_url_joins_with_api_v2_and_a_bad_key_keeps_it_down() -> None:
    async with (
        FakeComfyServer(time_scale=1.0) as native,
        FakeComfyApiV2(time_scale=1.0) as v2,
        ComfyPool(
            [
                native.url,
                PoolServer(v2.url, api="v2", api_key="not-the-key", name="v2"),
            ],
            options=QUICK,
            probe_every=0.1,
        ) as pool,
    ):
        assert pool.stats()["v2"].health == "down"  # its credentials are refused
        results = [await pool.run(graph(seed), timeout=60) for seed in range(3)]
    assert {result.prompt_id for result in results} == {pid for pid, _ in native.finished}
    assert v2.submissions == 0


async def test_a_v2_server_that_refuses_a_workflow_is_taught_and_the_job_moves() -> None:
    async with (
        FakeComfyServer(time_scale=1.0, extra_nodes=[RARE_NODES]) as native,
        FakeComfyApiV2(time_scale=1.0) as v2,
        ComfyPool(
            [v2_member(v2, name="v2", max_queue=4), PoolServer(native.url, max_queue=1)],
            options=QUICK,
            probe_every=0.1,
        ) as pool,
    ):
        first = await pool.submit(rare_graph(1))  # the v2 server has room first: refused there
        moved = [event async for event in first if isinstance(event, JobMoved)]
        result = await first.result()
        assert pool.stats()["v2"].moved_away == 1
        assert v2.submissions == 1
        later = await pool.run(rare_graph(2), timeout=60)  # not sent there again
        assert v2.submissions == 1
    assert len(moved) == 1
    assert moved[0].server == "v2"
    assert not moved[0].started
    assert "refused" in moved[0].reason
    assert first.servers == (v2.url, native.url)
    assert result.files
    assert later.files


async def test_a_workflow_only_a_v2_server_could_run_ends_with_its_refusal() -> None:
    async with (
        FakeComfyApiV2(time_scale=1.0) as v2,
        ComfyPool([v2_member(v2, name="v2")], options=QUICK, probe_every=0.1) as pool,
    ):
        job = await pool.submit(rare_graph(1))
        with pytest.raises(PromptValidationError, match="RareSharpen"):
            await job.result()
        with pytest.raises(NoCapableServerError, match="refused"):
            await pool.submit(rare_graph(2))  # learned: no server of the pool runs it


async def test_cancelling_a_pool_job_on_a_v2_server_cancels_it_there() -> None:
    async with (
        FakeComfyApiV2(time_scale=1.0) as v2,
        ComfyPool([v2_member(v2, name="v2")], options=QUICK, probe_every=0.1) as pool,
    ):
        job = await pool.submit(graph(1, steps=40))
        await wait_for(lambda: job.progress.fraction > 0)
        assert await job.cancel()
        with pytest.raises(Exception, match="cancelled"):
            await job.result()
        await wait_for(lambda: bool(v2.native.finished))
    assert v2.native.finished[-1][1] == "interrupted"


async def test_the_v2_server_frozen_mid_batch_moves_its_jobs_and_runs_none_twice() -> None:
    async with (
        FakeComfyServer(time_scale=1.0) as native,
        FakeComfyApiV2(time_scale=1.0) as v2,
        ComfyPool(
            [v2_member(v2, name="v2", max_queue=3), PoolServer(native.url, max_queue=3)],
            options=QUICK,
            probe_every=0.1,
            down_after=0.5,
            retries=1,
        ) as pool,
        pool.events() as pool_events,
    ):
        jobs = [await pool.submit(graph(seed, steps=4)) for seed in range(24)]
        await wait_for(lambda: sum(job.done() for job in jobs) >= 4)
        await wait_for(lambda: any(job.server == v2.url and not job.done() for job in jobs))
        await v2.suspend()  # the whole box freezes: its queue and its running job kept
        await wait_for(lambda: pool.stats()["v2"].health == "down")
        outcomes = await asyncio.gather(
            *(job.result(timeout=120) for job in jobs), return_exceptions=True
        )
        await v2.resume(run_after=1.0)  # answers at once, runs again a second later
        await wait_for(lambda: pool.stats()["v2"].health == "up")
        seen = [await anext(pool_events), await anext(pool_events)]
        await asyncio.sleep(1.5)  # let its thawed worker run whatever it still had
        ran = runs(native, v2)
        stats = pool.stats()
    failed = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    assert failed == []
    assert stats["v2"].moved_away >= 1
    assert max(ran.values()) == 1  # nothing ran twice over the fleet
    assert set(ran) == {job.prompt_id for job in jobs}  # nothing lost
    down, up = seen
    assert isinstance(down, ServerDown)
    assert isinstance(up, ServerUp)
    assert down.server == up.server == "v2"
    assert up.purged >= 1  # what moved off it was cancelled there before it got new work


async def test_a_lost_submission_answer_is_never_run_elsewhere() -> None:
    async with (
        FakeComfyServer(time_scale=1.0) as native,
        FakeComfyApiV2(time_scale=1.0) as v2,
        ComfyPool(
            [v2_member(v2, name="v2"), native.url],  # the v2 server is asked first
            options=QUICK,
            probe_every=0.1,
            retries=1,
        ) as pool,
    ):
        v2.faults.lose_submit_answers = 1
        job = await pool.submit(graph(1))
        with pytest.raises(JobLost, match="Idempotency-Key"):
            await job.result(timeout=60)
        await wait_for(lambda: bool(v2.native.finished))
        ran = runs(native, v2)
        submissions = v2.submissions
    # the first attempt created the job: it ran there once, and was sent nowhere else
    assert job.servers == (v2.url,)
    assert ran == Counter({job.prompt_id: 1})
    assert native.finished == []
    assert submissions == 2  # the key was presented again, and found claimed


async def test_partial_execution_goes_to_native_servers_only() -> None:
    async with (
        FakeComfyServer(time_scale=1.0) as native,
        FakeComfyApiV2(time_scale=1.0) as v2,
        ComfyPool(
            [v2_member(v2, name="v2", max_queue=4), native.url], options=QUICK, probe_every=0.1
        ) as pool,
    ):
        jobs = [
            await pool.submit(graph(seed), partial_execution_targets=["3"]) for seed in range(3)
        ]
        await asyncio.gather(*(job.result(timeout=60) for job in jobs))
    assert {job.server for job in jobs} == {native.url}
    assert v2.submissions == 0
    async with (
        FakeComfyApiV2(time_scale=1.0) as v2,
        ComfyPool([v2_member(v2, name="v2")], options=QUICK) as pool,
    ):
        with pytest.raises(NoCapableServerError, match="native-api"):
            await pool.submit(graph(1), partial_execution_targets=["3"])


@pytest.mark.parametrize("retries", [0, 1])
async def test_a_lost_answer_from_a_server_that_stays_away_moves_only_within_retries(
    retries: int,
) -> None:
    async with (
        FakeComfyServer(time_scale=1.0) as native,
        FakeComfyApiV2(time_scale=1.0) as v2,
        ComfyPool(
            [v2_member(v2, name="v2"), native.url],  # the v2 server is asked first
            options=QUICK,
            probe_every=0.3,
            down_after=0.6,
            retries=retries,
        ) as pool,
    ):
        v2.faults.lose_submit_answers = 1
        job = await pool.submit(graph(1))
        await wait_for(lambda: bool(v2.jobs), limit=10)
        await v2.suspend()  # before the key is presented again: no answer for good
        if retries:
            moved = [event async for event in job if isinstance(event, JobMoved)]
            await job.result(timeout=60)
        else:
            with pytest.raises(JobLost, match="no answer"):
                await job.result(timeout=60)
        await v2.resume()
    if retries:  # like a job running on a server that died: it may run there, and runs here
        assert len(moved) == 1
        assert moved[0].started
        assert job.servers == (v2.url, native.url)
        assert [outcome for _, outcome in native.finished] == ["success"]
    else:  # at most once: it may run on the v2 server, and nowhere else
        assert job.servers == (v2.url,)
        assert native.finished == []
