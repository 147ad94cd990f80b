"""P8's clients: the same jobs through ComfyPool, a round-robin over ComfyClients, or one client.

``python -m benchmarks.p8_drive MODE CONFIG RESULT`` runs in its own process, so that its CPU
time is its own (the peer's driver, ``p8_peer/run_peer.mjs``, takes the same CONFIG and writes the
same RESULT). CONFIG is JSON: ``urls``, ``jobs`` (``[seed, checkpoint]`` pairs), ``steps``,
``deadline`` (seconds) and ``pool`` (ComfyPool's settings). MODE is

* ``pool``: one :class:`~comfy_async.pool.ComfyPool` over every URL; every job submitted at once
  (the pool holds them client-side and places them);
* ``round-robin``: one :class:`~comfy_async.client.ComfyClient` per URL, each job sent to the
  next server in turn that has fewer than two of its jobs queued (a dead server's submit fails
  and that job is counted as failed: nothing moves jobs between servers);
* ``single``: one ComfyClient on the first URL, the jobs two at a time (the CPU reference).

It prints ``started`` when it submits its first job (the parent times the kills from then),
and writes RESULT: ``wall`` (first submit → every job ended, or the deadline), ``cpu`` (this
process's CPU seconds over the same span), ``last_outcome`` (when the last job that ended did),
``outcomes`` (seed → ``ok`` or the error) and ``servers`` (seed → URL).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from comfy_async.client import ComfyClient
from comfy_async.pool import ComfyPool

if TYPE_CHECKING:
    from comfy_async.job import Job

SD15 = Path(__file__).resolve().parent.parent / "examples" / "workflows" / "sd15_txt2img_api.json"
WINDOW = 2
"""Jobs each server is given at once by the round-robin and single drivers."""


def workflow_of(template: dict[str, Any], seed: int, checkpoint: str, steps: int) -> dict[str, Any]:
    """The SD 1.5 text-to-image graph with this checkpoint, seed and step count (64×64)."""
    prompt = json.loads(json.dumps(template))
    prompt["4"]["inputs"]["ckpt_name"] = checkpoint
    prompt["3"]["inputs"]["seed"] = seed
    prompt["3"]["inputs"]["steps"] = steps
    prompt["5"]["inputs"].update(width=64, height=64)
    return prompt


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


def _clock_start(result: dict[str, Any]) -> None:
    """The first submit: wall and CPU are counted from here."""
    result["_t0"] = time.perf_counter()
    result["_cpu0"] = time.process_time()
    print("started", flush=True)


def _record(result: dict[str, Any], seed: int, outcome: str, server: str | None) -> None:
    """One job's outcome, and when the last one came."""
    result["outcomes"][str(seed)] = outcome
    result["servers"][str(seed)] = server
    result["last_outcome"] = time.perf_counter() - result["_t0"]


async def drive_pool(config: dict[str, Any], result: dict[str, Any]) -> None:
    template = json.loads(SD15.read_text(encoding="utf-8"))
    async with ComfyPool(config["urls"], **config.get("pool", {})) as pool:
        print("ready", flush=True)

        async def outcome_of(job: Job, seed: int) -> None:
            try:
                await job.result()
            except Exception as exc:
                _record(result, seed, _error(exc), job.server)
            else:
                _record(result, seed, "ok", job.server)

        _clock_start(result)
        waiting = []
        for seed, checkpoint in config["jobs"]:
            job = await pool.submit(workflow_of(template, seed, checkpoint, config["steps"]))
            waiting.append(outcome_of(job, seed))
        await asyncio.gather(*waiting)
        result["stats"] = {
            name: {
                "done": s.done,
                "failed": s.failed,
                "moved_away": s.moved_away,
                "model_loads": s.model_loads,
                "health": s.health,
            }
            for name, s in pool.stats().items()
        }


async def _run_one(
    client: ComfyClient, prompt: dict[str, Any], seed: int, result: dict[str, Any]
) -> None:
    try:
        job = await client.submit(prompt)
        await job.result()
    except Exception as exc:
        _record(result, seed, _error(exc), client.base_url)
    else:
        _record(result, seed, "ok", client.base_url)


async def drive_spread(config: dict[str, Any], result: dict[str, Any], *, single: bool) -> None:
    template = json.loads(SD15.read_text(encoding="utf-8"))
    urls = config["urls"][:1] if single else config["urls"]
    clients = [ComfyClient(url) for url in urls]
    try:
        for client in clients:
            await client.connect()
        print("ready", flush=True)
        busy = [0] * len(clients)
        room = asyncio.Condition()
        tasks: list[asyncio.Task[None]] = []

        async def one(index: int, prompt: dict[str, Any], seed: int) -> None:
            try:
                await _run_one(clients[index], prompt, seed, result)
            finally:
                async with room:
                    busy[index] -= 1
                    room.notify_all()

        _clock_start(result)
        turn = 0
        for seed, checkpoint in config["jobs"]:
            prompt = workflow_of(template, seed, checkpoint, config["steps"])
            async with room:
                await room.wait_for(lambda: min(busy) < WINDOW)
                while busy[turn % len(clients)] >= WINDOW:
                    turn += 1
                index = turn % len(clients)
                turn += 1
                busy[index] += 1
            tasks.append(asyncio.create_task(one(index, prompt, seed)))
        await asyncio.gather(*tasks)
    finally:
        for client in clients:
            await client.aclose()


async def main_async(mode: str, config: dict[str, Any], target: Path) -> None:
    if os.environ.get("P8_DEBUG_LOG"):  # the pool's reasons, for a run that looks wrong
        logging.basicConfig(filename=os.environ["P8_DEBUG_LOG"], level=logging.DEBUG)
    result: dict[str, Any] = {"mode": mode, "outcomes": {}, "servers": {}}
    try:
        async with asyncio.timeout(config["deadline"]):
            if mode == "pool":
                await drive_pool(config, result)
            else:
                await drive_spread(config, result, single=mode == "single")
    except TimeoutError:
        result["note"] = f"stopped at the deadline ({config['deadline']:.0f} s)"
    if "_t0" in result:
        result["wall"] = time.perf_counter() - result.pop("_t0")
        result["cpu"] = time.process_time() - result.pop("_cpu0")
    target.write_text(json.dumps(result))


def main(argv: list[str]) -> int:
    mode, config, target = argv
    asyncio.run(main_async(mode, json.loads(Path(config).read_text()), Path(target)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
