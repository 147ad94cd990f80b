"""Admission on a client against a fake server: fairness between tenants, limits, position."""

from __future__ import annotations

import asyncio

import pytest

from comfy_async import ComfyClient
from comfy_async.config import AdmissionPolicy, TenantLimits
from comfy_async.errors import AdmissionRefused, ConfigurationError, JobCancelled
from comfy_async.events import JobAdmitted
from comfy_async.job import JobState
from comfy_async.testing import FakeComfyServer
from tests.pool.conftest import FAST, txt2img

#: Every job a short, fixed time: the order of finishing is the order of running.
DURATIONS = {"KSampler": 0.02}


async def test_light_tenants_are_not_starved_by_a_heavy_one(figures) -> None:
    """The bound: with a server queue ``d`` deep and a lookahead of one job, each light tenant's
    ``k`` jobs are all released before the heavy tenant's ``d + 1 + k``-th job (here 5th)."""
    depth, light_jobs = 2, 2
    async with FakeComfyServer(node_durations=DURATIONS) as server:
        policy = AdmissionPolicy(max_queue=depth)
        async with ComfyClient(server.url, options=FAST, admission=policy) as comfy:
            heavy = [await comfy.submit(txt2img(seed), tenant="heavy") for seed in range(200)]
            light = [
                await comfy.submit(txt2img(1000 + 10 * user + n), tenant=f"user{user}")
                for user in range(20)
                for n in range(light_jobs)
            ]
            finished: list[str] = []

            async def note(job, tenant: str) -> None:
                await job.result(timeout=120)
                finished.append(tenant)

            await asyncio.gather(
                *(note(job, "heavy") for job in heavy), *(note(job, "light") for job in light)
            )
    heavy_before_last_light = finished[: max(i for i, t in enumerate(finished) if t == "light")]
    heavy_ahead = heavy_before_last_light.count("heavy")
    figures(heavy_jobs_before_the_last_light_one=heavy_ahead, bound=depth + light_jobs)
    assert heavy_ahead <= depth + light_jobs  # all 40 light jobs done before the heavy 5th
    assert len(finished) == 240


async def test_limits_refuse_at_once_and_nothing_is_queued() -> None:
    limits = TenantLimits(max_in_flight=2, per_minute=3)
    async with FakeComfyServer(node_durations={"KSampler": 5.0}) as server:
        async with ComfyClient(
            server.url, options=FAST, admission=AdmissionPolicy(limits=limits)
        ) as comfy:
            jobs = [await comfy.submit(txt2img(n), tenant="u") for n in range(2)]
            posts = server.request_counts["POST /prompt"]
            with pytest.raises(AdmissionRefused) as refused:
                await comfy.submit(txt2img(9), tenant="u")
            assert refused.value.limit == "max_in_flight"
            await jobs[1].cancel()
            assert await jobs[1].wait(timeout=10)
            await comfy.submit(txt2img(10), tenant="u")  # the 3rd of the minute
            with pytest.raises(AdmissionRefused) as rate:
                await comfy.submit(txt2img(11), tenant="u")
            assert rate.value.limit in {"max_in_flight", "per_minute"}
            await comfy.submit(txt2img(12), tenant="other")  # another tenant is not limited
            assert server.request_counts["POST /prompt"] <= posts + 2
            for job in list(comfy.in_flight.values()):
                await job.cancel()


async def test_tenant_and_priority_need_admission() -> None:
    async with FakeComfyServer(time_scale=0) as server, ComfyClient(server.url) as comfy:
        with pytest.raises(ConfigurationError, match="admission"):
            await comfy.submit(txt2img(1), tenant="u")


async def test_held_jobs_know_their_place_and_leave_the_line_without_a_request() -> None:
    async with FakeComfyServer(node_durations={"KSampler": 0.3}) as server:
        policy = AdmissionPolicy(max_queue=1)
        async with ComfyClient(server.url, options=FAST, admission=policy) as comfy:
            jobs = [await comfy.submit(txt2img(n), tenant=f"t{n % 2}") for n in range(6)]
            await asyncio.sleep(0.1)
            places = [job.position for job in jobs]
            assert places[0] is None  # running
            waiting = [place for place in places if place is not None]
            assert sorted(waiting) == list(range(1, len(waiting) + 1))  # 1st, 2nd, 3rd…
            last = jobs[-1]
            before = last.position
            assert before is not None
            posts = server.request_counts["POST /prompt"]
            assert last.state is JobState.HELD
            assert await last.cancel()
            with pytest.raises(JobCancelled):
                await last.result()
            assert server.request_counts["POST /prompt"] == posts  # no server call
            await jobs[0].result(timeout=10)
            await asyncio.sleep(0.05)
            assert jobs[4].position is not None
            assert jobs[4].position < before  # it moved up
            async with asyncio.timeout(20):
                events = [event async for event in jobs[4]]
            assert any(isinstance(event, JobAdmitted) for event in events)
            await asyncio.gather(*(job.wait() for job in jobs))


async def test_a_higher_priority_goes_first() -> None:
    async with FakeComfyServer(node_durations=DURATIONS) as server:
        policy = AdmissionPolicy(max_queue=1)
        async with ComfyClient(server.url, options=FAST, admission=policy) as comfy:
            order: list[int] = []
            jobs = [await comfy.submit(txt2img(n), tenant="bulk") for n in range(10)]
            urgent = await comfy.submit(txt2img(99), tenant="bulk", priority=10)

            async def note(job, name: int) -> None:
                await job.result(timeout=30)
                order.append(name)

            await asyncio.gather(*(note(job, n) for n, job in enumerate(jobs)), note(urgent, 99))
    assert order.index(99) <= 3  # past what was on the server and in the lookahead


async def test_held_jobs_survive_a_server_outage() -> None:
    async with FakeComfyServer(node_durations={"KSampler": 0.05}) as server:
        policy = AdmissionPolicy(max_queue=2)
        async with ComfyClient(server.url, options=FAST, admission=policy) as comfy:
            jobs = [await comfy.submit(txt2img(n), tenant="u") for n in range(12)]
            await asyncio.sleep(0.12)
            await server.suspend()
            await asyncio.sleep(1.0)
            await server.resume()
            results = await asyncio.gather(*(job.result(timeout=60) for job in jobs))
    assert len(results) == 12
    done = [prompt_id for prompt_id, outcome in server.finished if outcome == "success"]
    assert sorted(done) == sorted(job.prompt_id for job in jobs)  # each exactly once


async def test_in_flight_counts_the_held_jobs_too() -> None:
    async with FakeComfyServer(node_durations={"KSampler": 1.0}) as server:
        policy = AdmissionPolicy(max_queue=1)
        async with ComfyClient(server.url, options=FAST, admission=policy) as comfy:
            jobs = [await comfy.submit(txt2img(n), tenant="u") for n in range(4)]
            assert set(comfy.in_flight) == {job.prompt_id for job in jobs}
            for job in jobs:
                await job.cancel()
            await asyncio.gather(*(job.wait() for job in jobs))
            assert not comfy.in_flight
