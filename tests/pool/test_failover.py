"""ComfyPool under faults: servers killed, frozen and brought back, silent, slow.

Every scenario checks the pool's promises: each job has exactly one outcome, no prompt runs to
success twice on the fleet (each fake server logs every prompt it ran, across restarts), and
jobs go only where they can run.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from comfy_async.errors import JobCancelled, JobLost
from comfy_async.events import JobMoved, ServerDown, ServerUp
from comfy_async.job import JobState
from comfy_async.pool import ComfyPool, PoolServer
from comfy_async.testing import FakeComfyServer
from comfy_async.testing.fleet import fake_fleet
from tests.pool.conftest import FAST, txt2img

SD15 = "v1-5-pruned-emaonly.safetensors"
RARE = "rare-finetune.safetensors"


def successes(servers: list[FakeComfyServer]) -> Counter[str]:
    """How many times each prompt ran to success, over the whole fleet."""
    return Counter(
        prompt_id
        for server in servers
        for prompt_id, outcome in server.finished
        if outcome == "success"
    )


async def wait_for(condition, limit: float = 20.0) -> None:
    async with asyncio.timeout(limit):
        while not condition():
            await asyncio.sleep(0.01)


async def test_200_jobs_over_4_servers_one_killed_mid_batch(figures) -> None:
    async with fake_fleet(
        {"models": {"checkpoints": [SD15, RARE]}},
        {"models": {"checkpoints": [SD15]}},
        {"models": {"checkpoints": [SD15]}, "speed": 2.0},
        {"models": {"checkpoints": [SD15]}},
        time_scale=0.03,
    ) as servers:
        rare_server, _, _, victim = servers
        async with ComfyPool(
            [server.url for server in servers], options=FAST, probe_every=0.1, down_after=1.0
        ) as pool:
            jobs = [
                await pool.submit(txt2img(seed, RARE if seed % 10 == 0 else SD15))
                for seed in range(200)
            ]
            await wait_for(lambda: sum(job.done() for job in jobs) >= 50)
            await victim.close()  # dies with jobs queued and running there
            outcomes = await asyncio.gather(
                *(job.result(timeout=60) for job in jobs), return_exceptions=True
            )
            stats = pool.stats()
    failed = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    ran = successes(servers)
    figures(
        done=200 - len(failed),
        failed=len(failed),
        moved=stats[victim.url].moved_away,
        most_runs_of_one_prompt=max(ran.values()),
        per_server=[stats[server.url].done for server in servers],
    )
    assert failed == []
    assert len(outcomes) == 200
    assert max(ran.values()) == 1  # no prompt ran to success twice
    assert set(ran) == {job.prompt_id for job in jobs}
    rare_jobs = [job for seed, job in enumerate(jobs) if seed % 10 == 0]
    assert {job.server for job in rare_jobs} == {rare_server.url}
    assert stats[victim.url].health == "down"


async def test_a_frozen_server_comes_back_and_runs_nothing_that_moved() -> None:
    async with fake_fleet({}, {}, time_scale=0.05) as servers:
        frozen, other = servers
        async with (
            ComfyPool(
                [PoolServer(frozen.url, max_queue=4), PoolServer(other.url, max_queue=4)],
                options=FAST,
                probe_every=0.1,
                down_after=0.5,
                retries=1,
            ) as pool,
            pool.events() as pool_events,
        ):
            jobs = [await pool.submit(txt2img(seed, steps=8)) for seed in range(16)]
            await wait_for(lambda: frozen.queue_remaining >= 2)
            await frozen.suspend()  # its queue is kept, its worker frozen
            await wait_for(lambda: pool.stats()[frozen.url].health == "down")
            await frozen.resume(run_after=1.0)  # serves at once, runs a second later
            outcomes = await asyncio.gather(*(job.result(timeout=60) for job in jobs))
            await wait_for(lambda: pool.stats()[frozen.url].health == "up")
            seen = []
            while len(seen) < 2:
                seen.append(await anext(pool_events))
            await asyncio.sleep(1.2)  # let the thawed worker run whatever it still had
            assert frozen.queue_remaining == 0
    ran = successes(servers)
    moved = [job for job in jobs if len(job.servers) > 1]
    assert len(outcomes) == 16
    assert moved, "the frozen server had jobs to move"
    assert max(ran.values()) == 1
    down, up = seen
    assert isinstance(down, ServerDown)
    assert down.server == frozen.url
    assert isinstance(up, ServerUp)
    assert up.purged >= 1  # what it still held was cleared before it got new jobs


async def test_a_job_running_on_a_dead_server_is_retried_or_lost_by_its_retries() -> None:
    async with fake_fleet({}, {}, node_durations={"KSampler": 4.0}) as servers:
        async with ComfyPool(
            [PoolServer(server.url, max_queue=1) for server in servers],
            options=FAST,
            probe_every=0.1,
            down_after=0.5,
        ) as pool:
            kept = await pool.submit(txt2img(1), retries=1)
            dropped = await pool.submit(txt2img(2), retries=0)
            await wait_for(lambda: kept.state is JobState.RUNNING)
            await wait_for(lambda: dropped.state is JobState.RUNNING)
            first = kept.server
            assert first is not None
            assert dropped.server not in (None, first)
            for server in servers:
                await server.close()  # both die mid-run
            with pytest.raises(JobLost, match="went down"):
                await dropped.result(timeout=10)
            await wait_for(lambda: kept.state is JobState.ADMITTED)
            # no server is up: the job waits in the pool, and is cancelled there
            await asyncio.sleep(0.3)
            assert kept.state is JobState.ADMITTED
            assert kept.servers == (first,)
            async with asyncio.timeout(5):
                assert await kept.cancel()
                events = [event async for event in kept]
            with pytest.raises(JobCancelled):
                await kept.result()
    moved = [event for event in events if isinstance(event, JobMoved)]
    assert len(moved) == 1
    assert moved[0].started
    assert moved[0].server == first


async def test_jobs_spread_by_speed() -> None:
    durations = {"KSampler": 0.2}
    async with fake_fleet({"speed": 4.0}, {"speed": 1.0}, node_durations=durations) as (fast, slow):
        async with ComfyPool([fast.url, slow.url], options=FAST) as pool:
            jobs = [await pool.submit(txt2img(seed, steps=4)) for seed in range(40)]
            await asyncio.gather(*(job.result(timeout=60) for job in jobs))
            stats = pool.stats()
    assert stats[fast.url].done > 2 * stats[slow.url].done
    assert stats[slow.url].done > 0


async def test_a_silent_server_still_delivers_and_gets_no_new_jobs() -> None:
    async with fake_fleet({}, {}, time_scale=0.05) as (silent, other):
        async with ComfyPool(
            [silent.url, other.url], options=FAST, probe_every=0.1, down_after=0.5
        ) as pool:
            first = [await pool.submit(txt2img(seed, steps=4)) for seed in range(8)]
            await wait_for(lambda: len(pool.stats()[silent.url].warm_models) > 0)
            silent.faults.stall_websocket()
            rest = [await pool.submit(txt2img(seed, steps=4)) for seed in range(8, 24)]
            outcomes = await asyncio.gather(*(job.result(timeout=60) for job in first + rest))
    assert len(outcomes) == 24
    assert max(successes([silent, other]).values()) == 1
