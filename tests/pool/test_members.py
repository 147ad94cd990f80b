"""What a pool learns of a server: needs of a workflow, held groups, warm models and costs."""

from __future__ import annotations

import time

import pytest

from comfy_async._live.session import SubmitOptions
from comfy_async._pool.held import Demand, Entry, HeldJobs
from comfy_async._pool.member import Member, MemberSettings
from comfy_async._pool.needs import ModelRef, needs_of
from comfy_async.client import ComfyClient
from tests.pool.conftest import txt2img


def test_needs_are_the_classes_and_the_model_files_the_loaders_name() -> None:
    needs = needs_of(txt2img(1, "a.safetensors"))
    assert "KSampler" in needs.classes
    assert "CheckpointLoaderSimple" in needs.classes
    assert needs.models == {
        ModelRef("checkpoints", "a.safetensors", "CheckpointLoaderSimple", "ckpt_name")
    }
    assert needs.model_names == {"checkpoints/a.safetensors"}
    assert needs_of(txt2img(2, "a.safetensors")) == needs  # jobs group by it


def entry(job: object, demand: Demand) -> Entry:
    return Entry(
        job=job,  # type: ignore[arg-type]
        prompt={},
        options=SubmitOptions(),
        demand=demand,
        retries=1,
        held_since=time.monotonic(),
    )


def test_held_groups_keep_their_order_and_a_moved_job_goes_first() -> None:
    a = Demand(needs_of(txt2img(1, "a.safetensors")))
    b = Demand(needs_of(txt2img(1, "b.safetensors")))
    held = HeldJobs()
    first, second, third = entry("j1", a), entry("j2", b), entry("j3", a)
    for item in (first, second, third):
        held.push(item)
    assert [demand for demand, _ in held.groups()] == [a, b]
    assert held.pop(a) is first
    assert [demand for demand, _ in held.groups()] == [b, a]  # b now holds the oldest job
    held.push(first, front=True)
    assert held.pop(a) is first
    assert held.remove(second)
    assert not held.remove(second)
    assert len(held) == 1


@pytest.fixture
async def member():
    client = ComfyClient("http://127.0.0.1:9")
    settings = MemberSettings("s", weight=2.0, max_queue=2, tags=frozenset(), warm_slots=2)
    yield Member(
        client, settings, owned=True, failures_to_trip=2, prior_duration=10.0, prior_load=0.0
    )
    await client.aclose()


async def test_a_server_learns_job_time_load_cost_and_evictions(member: Member) -> None:
    a = Demand(needs_of(txt2img(1, "a.safetensors")))
    b = Demand(needs_of(txt2img(1, "b.safetensors")))
    c = Demand(needs_of(txt2img(1, "c.safetensors")))
    assert member.mean_duration == 5.0  # the prior over the weight
    cold = entry("j1", a)
    member.placed(cold)
    assert cold.cold
    assert member.model_loads == 1
    assert member.finished(cold, 6.0) is None  # no warm baseline yet: kept for later
    warm = entry("j2", a)
    member.placed(warm)
    assert not warm.cold
    assert member.finished(warm, 1.0) == 5.0  # the cold run measured now: a 5 s load
    assert member.load_cost == 5.0
    member.placed(entry("j3", b))
    assert member.warm_models == {"checkpoints/a.safetensors", "checkpoints/b.safetensors"}
    member.placed(entry("j4", c))  # two slots: the least recent (a) is evicted
    assert member.warm_models == {"checkpoints/b.safetensors", "checkpoints/c.safetensors"}
    expected_warm = entry("j5", b)
    member.placed(expected_warm)
    assert not expected_warm.cold
    member.finished(expected_warm, 6.0)  # as slow as a load: the server keeps fewer
    assert member.warm_slots == 1
