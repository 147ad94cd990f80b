"""The fake server as a GPU box: warm models, cold-load cost, VRAM, /free, speed; a fleet."""

from __future__ import annotations

import json
import time
from pathlib import Path

import aiohttp
import pytest

from comfy_async import ComfyClient
from comfy_async.errors import ConfigurationError
from comfy_async.testing import FakeComfyServer, fake_fleet
from comfy_async.testing._gpu import MODEL_BYTES, Gpu

SD15 = Path(__file__).resolve().parents[2] / "examples" / "workflows" / "sd15_txt2img_api.json"
GIB = 1024**3


def with_checkpoint(name: str, seed: int) -> dict[str, dict[str, object]]:
    prompt = json.loads(SD15.read_text(encoding="utf-8"))
    prompt["4"]["inputs"]["ckpt_name"] = name
    prompt["3"]["inputs"]["seed"] = seed
    return prompt  # type: ignore[no-any-return]


def test_warm_models_are_evicted_least_recently_used_first() -> None:
    gpu = Gpu(10 * GIB)
    assert gpu.use("checkpoints", "a") is True  # 4 GiB, cold
    assert gpu.use("checkpoints", "b") is True  # 8 GiB
    assert gpu.use("checkpoints", "a") is False  # warm: a is now the most recent
    assert gpu.use("checkpoints", "c") is True  # 12 > 10: b, the least recent, goes
    assert gpu.warm == [("checkpoints", "a"), ("checkpoints", "c")]
    assert gpu.used == 2 * MODEL_BYTES["checkpoints"]
    assert gpu.loads == 3
    gpu.unload_all()
    assert gpu.warm == []
    with pytest.raises(ValueError, match="vram_budget"):
        Gpu(0)


async def test_a_cold_model_costs_its_load_and_free_unloads_it() -> None:
    models = {"checkpoints": ["a.safetensors", "b.safetensors"]}
    async with FakeComfyServer(time_scale=0, models=models) as server:
        async with ComfyClient(server.url) as comfy:
            await comfy.run(with_checkpoint("a.safetensors", 1), timeout=30)
            await comfy.run(with_checkpoint("a.safetensors", 2), timeout=30)
            assert server.model_loads == 1  # the second job found it warm
            await comfy.run(with_checkpoint("b.safetensors", 3), timeout=30)
            assert server.warm_models == [
                ("checkpoints", "a.safetensors"),
                ("checkpoints", "b.safetensors"),
            ]
            stats = await comfy.system.stats()
            assert stats.devices[0].vram_free == stats.devices[0].vram_total - 8 * GIB
            async with aiohttp.ClientSession() as http:
                await http.post(f"{server.url}/free", json={"unload_models": True})
            assert server.warm_models == []
            await comfy.run(with_checkpoint("a.safetensors", 4), timeout=30)
            assert server.model_loads == 3


async def test_a_faster_server_and_a_warm_model_take_less_time() -> None:
    async def timed(server: FakeComfyServer, seed: int) -> float:
        async with ComfyClient(server.url) as comfy:
            started = time.perf_counter()
            await comfy.run(with_checkpoint("v1-5-pruned-emaonly.safetensors", seed), timeout=60)
            return time.perf_counter() - started

    async with fake_fleet({"speed": 1.0}, {"speed": 4.0}, time_scale=0.1, load_time=4.0) as (
        slow,
        fast,
    ):
        cold_slow = await timed(slow, 1)  # 0.4 s load + 0.1 s sampler
        warm_slow = await timed(slow, 2)  # 0.1 s sampler
        cold_fast = await timed(fast, 1)  # a quarter of the cold slow run
    assert cold_slow >= 0.5
    assert warm_slow < cold_slow * 0.6
    assert cold_fast < cold_slow * 0.6


def test_bad_gpu_options_get_clear_errors() -> None:
    with pytest.raises(ConfigurationError, match="speed must be positive"):
        FakeComfyServer(speed=0)
    with pytest.raises(ConfigurationError, match="load_time must not be negative"):
        FakeComfyServer(load_time=-1)


async def test_a_fleet_differs_as_asked_and_closes_every_server() -> None:
    async with fake_fleet(
        {"models": {"checkpoints": ["only-here.safetensors"]}}, {"speed": 2.0}, time_scale=0
    ) as servers:
        assert len({server.url for server in servers}) == 2
        assert servers[0].models["checkpoints"] == ("only-here.safetensors",)
        assert "only-here.safetensors" not in servers[1].models["checkpoints"]
        assert servers[1].speed == 2.0
        url = servers[0].url
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(f"{url}/system_stats")
