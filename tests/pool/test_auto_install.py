"""ComfyPool(auto_install=...) against fake servers with ComfyUI-Manager.

A job that no server can run is held while one server (the least loaded with the Manager)
installs what it lacks, then runs there once; many such jobs make one install; what the policy
does not cover, a missing Manager or a failed install end in typed errors; new nodes a server
loads only at its next start are loaded by a planned restart, with no job lost or run twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from comfy_async import ComfyClient
from comfy_async._pool.announcer import PoolEventStream
from comfy_async.config import AutoInstall
from comfy_async.errors import (
    AutoInstallError,
    ConfigurationError,
    NoCapableServerError,
    UnsafePathError,
    UnsafeURLError,
)
from comfy_async.events import (
    PoolEvent,
    ServerDown,
    ServerInstalled,
    ServerInstallFailed,
    ServerInstalling,
)
from comfy_async.pool import ComfyPool, PoolServer
from comfy_async.testing import EXAMPLE_PACK_NODES, EXAMPLE_PACK_URL, FakeComfyServer
from comfy_async.testing.fleet import fake_fleet
from tests.pool.conftest import FAST, txt2img

NODE = EXAMPLE_PACK_NODES[0]
NODES = AutoInstall(nodes={NODE: EXAMPLE_PACK_URL})
MANAGER: dict[str, Any] = {"manager": True, "manager_task_duration": 0.05}
UNKNOWN_PACK = "https://github.com/acme/comfyui-not-in-any-channel"
EXTRA = "extra-finetune.safetensors"


def with_pack_node(seed: int, checkpoint: str = "v1-5-pruned-emaonly.safetensors") -> dict:
    """The text-to-image graph whose image goes through the example pack's node before saving."""
    graph = txt2img(seed, checkpoint)
    graph["10"] = {"class_type": NODE, "inputs": {"image": ["8", 0]}}
    graph["9"]["inputs"]["images"] = ["10", 0]
    return graph


def successes(servers: list[FakeComfyServer]) -> Counter[str]:
    return Counter(
        prompt_id
        for server in servers
        for prompt_id, outcome in server.finished
        if outcome == "success"
    )


async def drained(stream: PoolEventStream) -> list[PoolEvent]:
    """The events a pool's stream holds (it buffers them), once closed."""
    stream.close()
    return [event async for event in stream]


async def test_many_jobs_needing_a_node_none_has_make_one_install_on_the_least_loaded() -> None:
    async with fake_fleet(MANAGER, MANAGER, time_scale=0.02) as servers:
        busy, idle = servers
        async with ComfyClient(busy.url) as other_client:  # another client keeps `busy` busy
            foreign = await other_client.submit(txt2img(99, steps=2000))
            async with ComfyPool(
                [PoolServer(busy.url, name="busy"), PoolServer(idle.url, name="idle")],
                options=FAST,
                probe_every=0.05,
                auto_install=NODES,
            ) as pool:
                stream = pool.events()
                await asyncio.sleep(0.3)  # the probes see the foreign prompt
                jobs = [await pool.submit(with_pack_node(seed)) for seed in range(6)]
                results = [await job.result(timeout=30) for job in jobs]
                seen = await drained(stream)
            await foreign.cancel()
    assert all(result.files for result in results)
    assert {job.server for job in jobs} == {idle.url}  # the only server that has the node
    assert len(idle.manager_tasks) == 1  # six jobs, one install
    assert busy.manager_tasks == []  # the loaded server was not chosen, nor were both
    assert NODE in idle.object_info
    assert NODE not in busy.object_info
    counts = successes(servers)
    assert all(counts[job.prompt_id] == 1 for job in jobs)  # each ran once
    installs = [event for event in seen if isinstance(event, ServerInstalling | ServerInstalled)]
    assert [type(event) for event in installs] == [ServerInstalling, ServerInstalled]
    assert all(event.server == "idle" and event.items == (f"node {NODE}",) for event in installs)
    assert not any(isinstance(event, ServerDown) for event in seen)


async def test_a_model_no_server_holds_is_downloaded_into_its_folder() -> None:
    url = "https://models.example/extra-finetune.safetensors"
    policy = AutoInstall(models={f"checkpoints/{EXTRA}": url})
    async with fake_fleet(MANAGER, time_scale=0.01) as (server,):
        async with ComfyPool([server.url], options=FAST, auto_install=policy) as pool:
            result = await pool.run(txt2img(1, EXTRA), timeout=30)
    assert result.files
    assert EXTRA in server.models["checkpoints"]
    (task,) = server.manager_tasks
    assert (task["url"], task["save_path"], task["filename"]) == (url, "checkpoints", EXTRA)


async def test_a_node_and_then_the_model_its_loader_reads_are_installed() -> None:
    # The model is read by a loader the server lacks too: it shows once the node is there.
    policy = AutoInstall(
        nodes={NODE: EXAMPLE_PACK_URL},
        models={("checkpoints", EXTRA): "https://models.example/extra.safetensors"},
    )
    async with fake_fleet(MANAGER, time_scale=0.01) as (server,):
        async with ComfyPool([server.url], options=FAST, auto_install=policy) as pool:
            result = await pool.run(with_pack_node(2, EXTRA), timeout=30)
    assert result.files
    assert sorted(task.get("kind", "install-model") for task in server.manager_tasks) == [
        "install",
        "install-model",
    ]


async def test_without_auto_install_or_outside_its_policy_the_refusal_is_as_before() -> None:
    async with fake_fleet(MANAGER, time_scale=0) as (server,):
        async with ComfyPool([PoolServer(server.url, name="s")], options=FAST) as pool:
            with pytest.raises(NoCapableServerError) as plain:
                await pool.submit(with_pack_node(1))
        other = AutoInstall(nodes={"SomeOtherNode": EXAMPLE_PACK_URL})
        async with ComfyPool(
            [PoolServer(server.url, name="s")], options=FAST, auto_install=other
        ) as pool:
            with pytest.raises(NoCapableServerError) as outside:
                await pool.submit(with_pack_node(1))
            with pytest.raises(NoCapableServerError, match="tag gpu"):
                await pool.submit(txt2img(1), tags={"gpu"})
    assert type(plain.value) is NoCapableServerError
    assert type(outside.value) is NoCapableServerError
    assert outside.value.missing == plain.value.missing == {"s": [f"node {NODE}"]}
    assert server.manager_tasks == []


async def test_without_a_manager_the_held_jobs_end_with_a_typed_error() -> None:
    async with fake_fleet({}, {}, time_scale=0) as servers:
        names = [PoolServer(server.url, name=f"s{i}") for i, server in enumerate(servers)]
        async with ComfyPool(names, options=FAST, auto_install=NODES) as pool:
            jobs = [await pool.submit(with_pack_node(seed)) for seed in range(3)]
            for job in jobs:
                with pytest.raises(AutoInstallError) as failed:
                    await job.result(timeout=10)
            with pytest.raises(AutoInstallError) as refused:  # known now: refused at once
                await pool.submit(with_pack_node(9))
    for error in (failed.value, refused.value):
        assert error.missing == {"s0": [f"node {NODE}"], "s1": [f"node {NODE}"]}
        assert error.failures == {
            "s0": "it has no ComfyUI-Manager",
            "s1": "it has no ComfyUI-Manager",
        }
        assert isinstance(error, NoCapableServerError)
    assert all(server.prompt_posts == [] for server in servers)


async def test_a_server_without_the_manager_is_skipped_for_one_that_has_it() -> None:
    async with fake_fleet({}, MANAGER, time_scale=0.01) as (plain, managed):
        async with ComfyPool(
            [PoolServer(plain.url, name="plain"), PoolServer(managed.url, name="managed")],
            options=FAST,
            auto_install=NODES,
        ) as pool:
            job = await pool.submit(with_pack_node(1))
            await job.result(timeout=30)
    assert job.server == managed.url
    assert plain.request_counts["POST /v2/manager/queue/task"] == 0


async def test_a_failed_install_is_tried_once_per_server_then_fails_the_jobs() -> None:
    policy = AutoInstall(nodes={NODE: UNKNOWN_PACK})
    async with fake_fleet(MANAGER, MANAGER, time_scale=0.01) as servers:
        names = [PoolServer(server.url, name=f"s{i}") for i, server in enumerate(servers)]
        async with ComfyPool(names, options=FAST, auto_install=policy) as pool:
            stream = pool.events()
            jobs = [await pool.submit(with_pack_node(seed)) for seed in range(4)]
            errors = []
            for job in jobs:
                with pytest.raises(AutoInstallError) as failed:
                    await job.result(timeout=30)
                errors.append(failed.value)
            seen = await drained(stream)
    assert [len(server.manager_tasks) for server in servers] == [1, 1]  # each tried once
    error = errors[0]
    assert set(error.failures) == {"s0", "s1"}
    assert "ManagerTaskError" in error.failures["s0"]
    assert "not found" in error.failures["s0"]
    assert f"node {NODE}" in str(error)
    failures = [event for event in seen if isinstance(event, ServerInstallFailed)]
    assert sorted(event.server for event in failures) == ["s0", "s1"]
    assert all(server.prompt_posts == [] for server in servers)


async def test_jobs_whose_install_failed_on_one_server_stay_held_for_another() -> None:
    cannot = {**MANAGER, "manager_packs": {}}  # its Manager's channel does not list the pack
    async with fake_fleet(cannot, MANAGER, time_scale=0.01) as servers:
        first, second = servers
        async with ComfyPool(
            [PoolServer(first.url, name="first"), PoolServer(second.url, name="second")],
            options=FAST,
            auto_install=NODES,
        ) as pool:
            stream = pool.events()
            jobs = [await pool.submit(with_pack_node(seed)) for seed in range(3)]
            results = [await job.result(timeout=30) for job in jobs]
            seen = await drained(stream)
    assert all(result.files for result in results)
    assert {job.server for job in jobs} == {second.url}
    assert [len(server.manager_tasks) for server in servers] == [1, 1]
    assert [type(event).__name__ for event in seen] == [
        "ServerInstalling",
        "ServerInstallFailed",
        "ServerInstalling",
        "ServerInstalled",
    ]
    assert [event.server for event in seen] == ["first", "first", "second", "second"]


async def test_nodes_loaded_at_the_next_start_need_the_reboot_the_policy_allows() -> None:
    late = {**MANAGER, "manager_load_at_start": True}
    async with fake_fleet(late, time_scale=0.01) as (server,):
        async with ComfyPool(
            [PoolServer(server.url, name="s")], options=FAST, auto_install=NODES
        ) as pool:
            job = await pool.submit(with_pack_node(1))
            with pytest.raises(AutoInstallError, match="next start") as failed:
                await job.result(timeout=30)
        assert NODE not in server.object_info  # installed, loaded at the next start
    assert "reboot=True" in failed.value.failures["s"]
    assert server.manager_reboots == 0


async def test_a_planned_restart_loses_no_job_and_runs_none_twice() -> None:
    # Down for a while when it restarts, as a real server is: probes would take it down.
    late = {**MANAGER, "manager_load_at_start": True, "manager_reboot_time": 100.0}
    policy = AutoInstall(nodes={NODE: EXAMPLE_PACK_URL}, reboot=True, timeout=60)
    async with fake_fleet(late, time_scale=0.02) as (server,):
        async with ComfyPool(
            [PoolServer(server.url, name="s", max_queue=2)],
            options=FAST,
            probe_every=0.02,
            probe_timeout=0.5,
            failures_to_trip=2,  # two failed probes in the restart would take it down
            auto_install=policy,
        ) as pool:
            stream = pool.events()
            running = [await pool.submit(txt2img(seed, steps=100)) for seed in range(2)]
            await asyncio.sleep(0.2)  # both on the server before the install asks for a restart
            needy = [await pool.submit(with_pack_node(seed)) for seed in range(10, 13)]
            after = [await pool.submit(txt2img(seed)) for seed in range(20, 22)]
            healths: set[str] = set()

            async def watch() -> None:
                while True:
                    healths.add(pool.stats()["s"].health)
                    await asyncio.sleep(0.005)

            watcher = asyncio.create_task(watch())
            results = [await job.result(timeout=60) for job in [*running, *needy, *after]]
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            seen = await drained(stream)
            moved_away = pool.stats()["s"].moved_away
    assert moved_away == 0
    assert healths == {"up", "restarting"}
    assert all(len(job.servers) == 1 for job in [*running, *needy, *after])  # none moved
    assert all(result.files for result in results)
    assert server.manager_reboots == 1
    assert NODE in server.object_info
    counts = successes([server])
    assert all(counts[job.prompt_id] == 1 for job in [*running, *needy, *after])
    assert not any(outcome == "interrupted" for _, outcome in server.finished)
    installed = [event for event in seen if isinstance(event, ServerInstalled)]
    assert len(installed) == 1
    assert installed[0].rebooted
    assert not any(isinstance(event, ServerDown) for event in seen)  # a planned outage


@pytest.mark.parametrize(
    ("policy", "error"),
    [
        ({"nodes": {NODE: "file:///etc/passwd"}}, UnsafeURLError),
        ({"nodes": {NODE: "https://user:secret@example.com/pack"}}, UnsafeURLError),
        ({"nodes": {NODE: "not a registry id@"}}, ConfigurationError),
        ({"nodes": {NODE: "comfyui-pack@"}}, ConfigurationError),
        ({"nodes": {NODE: "owner/pack"}}, ConfigurationError),
        ({"models": {"checkpoints/../x.safetensors": "https://e.example/x"}}, UnsafePathError),
        ({"models": {"../models/x.safetensors": "https://e.example/x"}}, UnsafePathError),
        ({"models": {"x.safetensors": "https://e.example/x"}}, ConfigurationError),
        ({"models": {"checkpoints/x.safetensors": "ftp://e.example/x"}}, UnsafeURLError),
        ({"timeout": 0}, ConfigurationError),
    ],
)
def test_unsafe_or_malformed_policies_are_refused_when_the_pool_is_made(
    policy: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        ComfyPool(["http://127.0.0.1:1"], auto_install=AutoInstall(**policy))
