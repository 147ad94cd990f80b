"""ComfyPool against several fake servers: routing by capability, load and warm models."""

from __future__ import annotations

import asyncio

import pytest

from comfy_async import ComfyClient
from comfy_async.errors import NoCapableServerError
from comfy_async.job import JobState
from comfy_async.pool import ComfyPool, PoolServer
from comfy_async.testing.fleet import fake_fleet
from tests.pool.conftest import FAST, txt2img

SD15 = "v1-5-pruned-emaonly.safetensors"
XL = "sd_xl_base_1.0.safetensors"


async def test_jobs_run_on_the_servers_that_hold_their_models() -> None:
    async with fake_fleet(
        {"models": {"checkpoints": [SD15]}},
        {"models": {"checkpoints": [SD15, XL]}},
        time_scale=0.01,
    ) as (plain, both):
        async with ComfyPool([plain.url, both.url], options=FAST) as pool:
            jobs = [
                await pool.submit(txt2img(seed, XL if seed % 2 else SD15)) for seed in range(12)
            ]
            assert jobs[0].state is JobState.HELD or jobs[0].server is not None
            results = [await job.result(timeout=30) for job in jobs]
            stats = pool.stats()
    assert all(result.files for result in results)
    for seed, job in enumerate(jobs):
        if seed % 2:
            assert job.server == both.url  # only it holds the SDXL checkpoint
    assert stats[plain.url].done + stats[both.url].done == 12
    assert stats[plain.url].done > 0  # SD 1.5 jobs spread over both


async def test_a_workflow_no_server_can_run_is_refused_at_once_naming_what_is_missing() -> None:
    async with fake_fleet({"models": {"checkpoints": [SD15]}}, {}, time_scale=0) as (a, b):
        async with ComfyPool([PoolServer(a.url, name="a"), PoolServer(b.url, name="b")]) as pool:
            graph = txt2img(1, "missing.safetensors")
            graph["10"] = {"class_type": "AcmeSharpen", "inputs": {"image": ["8", 0]}}
            with pytest.raises(NoCapableServerError) as refused:
                await pool.submit(graph)
            with pytest.raises(NoCapableServerError, match="tag big-gpu"):
                await pool.submit(txt2img(1), tags={"big-gpu"})
    assert refused.value.missing == {
        "a": ["node AcmeSharpen", "model checkpoints/missing.safetensors"],
        "b": ["node AcmeSharpen", "model checkpoints/missing.safetensors"],
    }


async def test_a_held_job_is_cancelled_without_any_request() -> None:
    async with fake_fleet({}, time_scale=1) as (server,):
        async with ComfyPool([PoolServer(server.url, max_queue=1)], options=FAST) as pool:
            first = await pool.submit(txt2img(1, steps=20))
            second = await pool.submit(txt2img(2))
            await asyncio.sleep(0.1)
            assert second.state in (JobState.HELD, JobState.ADMITTED)
            posts_before = server.request_counts["POST /prompt"]
            assert await second.cancel()
            assert second.done()
            assert server.request_counts["POST /prompt"] == posts_before
            await first.cancel()


async def test_the_pool_takes_clients_and_leaves_them_open() -> None:
    async with fake_fleet({}, time_scale=0) as (server,):
        async with ComfyClient(server.url) as comfy:
            async with ComfyPool([comfy]) as pool:
                result = await pool.run(txt2img(3))
                assert result.files
            assert not comfy.closed


async def test_submit_or_attach_finds_an_item_on_whichever_server_ran_it() -> None:
    from comfy_async import batch_prompt_id

    prompt_id = batch_prompt_id("nightly", "item-1")
    async with fake_fleet({}, {}, time_scale=0) as servers:
        async with ComfyPool([server.url for server in servers]) as pool:
            job = await pool.submit_or_attach(txt2img(1), prompt_id=prompt_id)
            assert await pool.submit_or_attach(txt2img(1), prompt_id=prompt_id) is job
            first = await job.result(timeout=30)
        async with ComfyPool([server.url for server in reversed(servers)]) as retry:
            again = await retry.submit_or_attach(txt2img(1), prompt_id=prompt_id)
            second = await again.result(timeout=30)
    assert sum(server.posts_for(prompt_id) for server in servers) == 1
    assert second.files == first.files
    assert again.server == job.server


async def test_a_job_whose_deadline_passes_during_its_submission_never_runs() -> None:
    from comfy_async.errors import JobTimeout

    async with fake_fleet({}, node_durations={"KSampler": 1.0}) as (server,):
        server.faults.delay_route("POST", "/prompt", 0.5)  # the POST reaches the queue late
        async with ComfyPool([server.url], options=FAST) as pool:
            job = await pool.submit(txt2img(5), timeout=0.2)
            with pytest.raises(JobTimeout):
                await job.result()
            await asyncio.sleep(0.6)  # the POST lands, and is withdrawn
            await server.wait_idle()
    assert server.posts_for(job.prompt_id) == 1
    assert (job.prompt_id, "success") not in server.finished
