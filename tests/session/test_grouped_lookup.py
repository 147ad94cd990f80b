"""Lookups close together answered by one history read, and the per-prompt fallback."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from comfy_async import ComfyClient
from comfy_async._live.grouped_lookup import GroupedLookup, window_size
from comfy_async.errors import ComfyError, TransportError
from comfy_async.job import Job, JobResult, JobSnapshot
from comfy_async.testing import FakeComfyServer

from .conftest import UNIT, assert_clean, options, outcome
from .graphs import sleeper


class Server:
    """``one`` and ``many`` over a table of finished prompts, counting what they are asked."""

    def __init__(self, finished: Sequence[str], *, window: Sequence[str] | None = None) -> None:
        self.finished = {key: JobSnapshot(status="success", outputs={key: {}}) for key in finished}
        self.window = set(finished if window is None else window)
        self.ones: list[str] = []
        self.manys: list[list[str]] = []
        self.fail_many = 0
        self.hold = asyncio.Event()
        self.hold.set()

    async def one(self, prompt_id: str) -> JobSnapshot | None:
        self.ones.append(prompt_id)
        await self.hold.wait()
        return self.finished.get(prompt_id)

    async def many(self, prompt_ids: Sequence[str]) -> Mapping[str, JobSnapshot]:
        self.manys.append(list(prompt_ids))
        await self.hold.wait()
        if self.fail_many:
            self.fail_many -= 1
            raise TransportError("the read failed")
        return {key: self.finished[key] for key in prompt_ids if key in self.window}


def keys(count: int) -> list[str]:
    return [f"p{index}" for index in range(count)]


async def test_lookups_of_one_turn_go_as_one_read() -> None:
    server = Server(keys(20))
    grouped = GroupedLookup(server.one, server.many)
    answers = await asyncio.gather(*(grouped.lookup(key) for key in keys(20)))
    assert server.manys == [keys(20)]
    assert server.ones == []
    assert [next(iter(a.outputs)) for a in answers if a is not None] == keys(20)


async def test_a_lone_lookup_is_the_per_prompt_read() -> None:
    server = Server(["a"])
    grouped = GroupedLookup(server.one, server.many)
    assert await grouped.lookup("a") == server.finished["a"]
    assert await grouped.lookup("nowhere") is None
    assert server.ones == ["a", "nowhere"]
    assert server.manys == []


async def test_lookups_made_during_a_read_wait_and_go_together() -> None:
    server = Server(keys(11))
    grouped = GroupedLookup(server.one, server.many, tick=0.0)
    server.hold.clear()
    first = asyncio.ensure_future(grouped.lookup("p0"))
    await asyncio.sleep(0.01)
    assert server.ones == ["p0"]
    rest = [asyncio.ensure_future(grouped.lookup(key)) for key in keys(11)[1:]]
    await asyncio.sleep(0.01)
    assert server.manys == []  # they wait for the read under way
    server.hold.set()
    answers = await asyncio.gather(first, *rest)
    assert server.manys == [keys(11)[1:]]
    assert all(a is not None and a.status == "success" for a in answers)


async def test_reads_are_a_tick_apart() -> None:
    server = Server(keys(6))
    tick = 5 * UNIT
    grouped = GroupedLookup(server.one, server.many, tick=tick)
    await asyncio.gather(grouped.lookup("p0"), grouped.lookup("p1"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    later = [asyncio.ensure_future(grouped.lookup(key)) for key in keys(6)[2:]]
    await asyncio.sleep(tick / 5)
    assert len(server.manys) == 1  # the next read waits for its tick
    await asyncio.gather(*later)
    assert loop.time() - started >= tick * 0.9
    assert server.manys == [keys(2), keys(6)[2:]]


async def test_a_lookup_with_no_other_job_in_flight_does_not_wait_for_the_tick() -> None:
    server = Server(keys(3))
    tick = 50 * UNIT
    grouped = GroupedLookup(server.one, server.many, tick=tick, crowded=lambda: False)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for key in keys(3):  # one job after another, as a bot runs them
        assert await grouped.lookup(key) is not None
    assert loop.time() - started < tick / 2
    assert server.ones == keys(3)


async def test_a_prompt_the_window_does_not_hold_is_looked_up_on_its_own() -> None:
    server = Server(keys(5), window=keys(5)[:3])
    grouped = GroupedLookup(server.one, server.many)
    answers = await asyncio.gather(*(grouped.lookup(key) for key in [*keys(5), "nowhere"]))
    assert sorted(server.ones) == ["nowhere", "p3", "p4"]
    assert [a.outputs if a else None for a in answers] == [
        *({key: {}} for key in keys(5)),
        None,
    ]


async def test_a_failed_read_falls_back_to_one_read_per_prompt() -> None:
    server = Server(keys(4))
    server.fail_many = 1
    grouped = GroupedLookup(server.one, server.many)
    answers = await asyncio.gather(*(grouped.lookup(key) for key in keys(4)))
    assert len(server.manys) == 1
    assert sorted(server.ones) == keys(4)
    assert all(a is not None for a in answers)


async def test_a_failed_lone_lookup_raises_for_its_callers() -> None:
    async def one(prompt_id: str) -> JobSnapshot | None:
        raise TransportError("down")

    async def many(prompt_ids: Sequence[str]) -> Mapping[str, JobSnapshot]:
        raise AssertionError("not for one prompt")

    grouped = GroupedLookup(one, many)
    results = await asyncio.gather(grouped.lookup("a"), grouped.lookup("a"), return_exceptions=True)
    assert all(isinstance(r, ComfyError) for r in results)


async def test_a_cancelled_leader_leaves_no_one_waiting() -> None:
    server = Server(keys(5))
    grouped = GroupedLookup(server.one, server.many, tick=0.0)
    server.hold.clear()
    leader = asyncio.ensure_future(grouped.lookup("p0"))
    await asyncio.sleep(0.01)
    followers = [asyncio.ensure_future(grouped.lookup(key)) for key in keys(5)[1:]]
    await asyncio.sleep(0.01)
    followers[0].cancel()  # a waiting lookup cancelled too
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    server.hold.set()
    answers = await asyncio.wait_for(asyncio.gather(*followers[1:]), 5)
    assert [a.outputs if a else None for a in answers] == [{key: {}} for key in keys(5)[2:]]
    assert await grouped.lookup("p1") is not None  # idle again, not stuck


def test_the_window_is_a_little_larger_than_the_prompts() -> None:
    assert window_size(1) >= 2
    assert 100 < window_size(100) <= 120


# --------------------------------------------------------------------------- against the fake


def confirmations(fake: FakeComfyServer) -> dict[str, int]:
    counts = fake.request_counts
    return {
        "per_prompt": counts["GET /jobs/{job_id}"] + counts["GET /history/{prompt_id}"],
        "windows": counts["GET /history"],
    }


async def run_jobs(comfy: ComfyClient, count: int) -> list[JobResult]:
    jobs = [await comfy.submit(sleeper(steps=1, prefix=f"job{index}_")) for index in range(count)]
    return await results_of(jobs)


async def results_of(jobs: Sequence[Job]) -> list[JobResult]:
    results = await asyncio.gather(*(outcome(job, 100 * UNIT) for job in jobs))
    assert all(isinstance(r, JobResult) for r in results), results
    return [r for r in results if isinstance(r, JobResult)]


def assert_own_outputs(results: Sequence[JobResult]) -> None:
    """Each job got its own record: its own file, under its own prefix, in node order."""
    for index, result in enumerate(results):
        assert list(result.outputs) == ["3"]
        assert [f.filename.split("_")[0] for f in result.files] == [f"job{index}"]


@pytest.mark.parametrize("jobs_api", [True, False], ids=["jobs-api", "history-and-queue"])
async def test_many_jobs_ending_together_are_confirmed_by_far_fewer_requests(
    jobs_api: bool,
) -> None:
    async with FakeComfyServer(time_scale=1.0) as fake:
        route = "/jobs/{job_id}" if jobs_api else "/history/{prompt_id}"
        fake.faults.delay_route("GET", route, 10 * UNIT)  # the others end while it is held
        async with ComfyClient(fake.url, options=options(), jobs_api=jobs_api) as comfy:
            results = await run_jobs(comfy, 20)
            await comfy.aclose()
            assert_clean(comfy)
        counts = confirmations(fake)
    assert_own_outputs(results)
    assert counts["per_prompt"] + counts["windows"] <= 4, counts
    assert counts["windows"] >= 1


async def test_jobs_pushed_out_of_the_window_are_confirmed_one_by_one() -> None:
    """An old job among new ones: the window of the newest holds the new ones, not it."""
    async with FakeComfyServer(time_scale=1.0) as fake:
        async with ComfyClient(fake.url, options=options()) as comfy:
            old, *newer = await run_jobs(comfy, 12)  # ended in order: the old one first
            before = confirmations(fake)
            wanted = [old.prompt_id, newer[-1].prompt_id, newer[-2].prompt_id]
            found = await asyncio.gather(*(comfy._live.backend.lookup(key) for key in wanted))
        after = confirmations(fake)
    assert [f.outputs if f else None for f in found] == [
        old.outputs,
        newer[-1].outputs,
        newer[-2].outputs,
    ]
    assert after["windows"] - before["windows"] == 1  # 3 + a few of the newest: not the old one
    assert after["per_prompt"] - before["per_prompt"] == 1  # the old one, on its own


async def test_a_failed_window_read_falls_back_to_the_per_prompt_reads() -> None:
    async with FakeComfyServer(time_scale=1.0) as fake:
        fake.faults.delay_route("GET", "/jobs/{job_id}", 10 * UNIT)
        fake.faults.fail_route("GET", "/history", status=404, times=10)
        async with ComfyClient(fake.url, options=options()) as comfy:
            results = await run_jobs(comfy, 12)
        counts = confirmations(fake)
    assert_own_outputs(results)
    assert counts["windows"] >= 1
    assert counts["per_prompt"] >= 12
