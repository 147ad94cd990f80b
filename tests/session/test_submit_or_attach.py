"""Idempotent submission by a deterministic prompt id: a retried item never runs twice."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from comfy_async import ComfyClient, batch_prompt_id
from comfy_async.errors import ConfigurationError
from comfy_async.testing import FakeComfyServer
from tests.session.graphs import sleeper


def test_a_batch_item_has_the_same_canonical_id_every_time() -> None:
    first = batch_prompt_id("nightly-2026-12-04", "item-17")
    assert first == batch_prompt_id("nightly-2026-12-04", "item-17")
    assert str(uuid.UUID(first)) == first  # canonical, lowercase
    assert uuid.UUID(first).version == 4  # the form every server accepts
    assert first != batch_prompt_id("nightly-2026-12-04", "item-18")
    assert first != batch_prompt_id("nightly-2026-12-05", "item-17")
    with pytest.raises(ConfigurationError):
        batch_prompt_id("", "item")


def successes(server: FakeComfyServer, prompt_id: str) -> int:
    return sum(1 for pid, outcome in server.finished if pid == prompt_id and outcome == "success")


async def test_a_retried_item_attaches_instead_of_running_again() -> None:
    prompt_id = batch_prompt_id("b", "1")
    async with FakeComfyServer(time_scale=0.2) as server:
        async with ComfyClient(server.url) as comfy:
            job = await comfy.submit_or_attach(sleeper(steps=3, delay=0.5), prompt_id=prompt_id)
            again = await comfy.submit_or_attach(sleeper(steps=3, delay=0.5), prompt_id=prompt_id)
            assert again is job  # in flight here: the same job
            first = await job.result(timeout=10)
        async with ComfyClient(server.url) as retry:  # a restarted worker, after the end
            attached = await retry.submit_or_attach(sleeper(), prompt_id=prompt_id)
            second = await attached.result(timeout=10)
    assert server.posts_for(prompt_id) == 1
    assert successes(server, prompt_id) == 1
    assert [f.filename for f in second.files] == [f.filename for f in first.files]


async def test_tasks_of_one_process_asking_at_once_make_one_submission() -> None:
    prompt_id = batch_prompt_id("b", "2")
    async with FakeComfyServer(time_scale=0) as server, ComfyClient(server.url) as comfy:
        jobs = await asyncio.gather(
            *(comfy.submit_or_attach(sleeper(), prompt_id=prompt_id) for _ in range(5))
        )
        await asyncio.gather(*(job.result(timeout=10) for job in jobs))
    assert server.posts_for(prompt_id) == 1


async def test_two_processes_racing_on_one_item_run_it_once() -> None:
    """Both look it up (nowhere), both POST; the later one withdraws an entry: one run."""
    prompt_id = batch_prompt_id("b", "3")
    async with FakeComfyServer(node_durations={"ProbeSleepProgress": 0.3}) as server:
        blocker = sleeper(steps=2, delay=0.3)
        async with ComfyClient(server.url) as one, ComfyClient(server.url) as other:
            busy = await one.submit(blocker)  # the server is busy: both entries stay pending
            jobs = await asyncio.gather(
                one.submit_or_attach(sleeper(steps=2), prompt_id=prompt_id),
                other.submit_or_attach(sleeper(steps=2), prompt_id=prompt_id),
            )
            results = await asyncio.gather(*(job.result(timeout=20) for job in jobs))
            await busy.result(timeout=20)
    assert server.posts_for(prompt_id) == 2  # the server offers no lock: both POSTed
    assert successes(server, prompt_id) == 1  # … and it ran once
    assert results[0].files == results[1].files
