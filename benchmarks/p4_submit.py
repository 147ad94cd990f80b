"""P4 submit: ``POST /prompt`` at concurrency 1, 16 and 64, ours against bare aiohttp.

A minimal ``POST /prompt`` server runs in another process (``_servers prompt``: it reads the
body and answers ``{prompt_id, number, node_errors}`` like ComfyUI). In the same run, as medians
over alternating rounds, the same number of requests with the same body (the default text-to-image
graph, a fresh ``prompt_id`` and the ``client_id``):

* **ours**: ``comfy.prompts.submit(graph, prompt_id=…, client_id=…)``. This is the whole submit
  path of the library minus the WebSocket: body building, orjson encoding, the single request
  path (URL, headers, credentials, timeouts, the error seam), the ambiguous-failure wrapper and a
  typed ``PromptResponse``. ``comfy.submit`` would add opening the WebSocket and registering a
  :class:`~comfy_async.job.Job` per prompt, whose events this server does not send: P1 and P6
  measure that part.
* **bare aiohttp**: ``session.post(url, data=orjson.dumps(body))``, ``await response.read()``,
  ``orjson.loads`` — the least a client can do.

Each round runs both back to back, in alternating order; the ratios are the medians of the
rounds' own ratios. Targets: ours ≥ 90 % of bare aiohttp's requests per second at each
concurrency (one target each), and client CPU per request ≤ 1.2× at the worst concurrency.

Run: ``python benchmarks/p4_submit.py [--quick] [--runs N]``.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
import orjson

from benchmarks._common import Report, ServerProcess, cpu_seconds, main_of, median, percentile
from comfy_async import ComfyClient

if TYPE_CHECKING:
    import argparse
    from collections.abc import Awaitable, Callable

GRAPH: dict[str, Any] = {
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 156680208700286,
            "steps": 20,
            "cfg": 8,
            "sampler_name": "euler",
            "scheduler": "normal",
            "denoise": 1,
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
    },
    "4": {
        "class_type": "CheckpointLoaderSimple",
        "inputs": {"ckpt_name": "v1-5-pruned.safetensors"},
    },
    "5": {
        "class_type": "EmptyLatentImage",
        "inputs": {"width": 512, "height": 512, "batch_size": 1},
    },
    "6": {
        "class_type": "CLIPTextEncode",
        "inputs": {
            "text": "beautiful scenery nature glass bottle landscape, purple galaxy bottle,",
            "clip": ["4", 1],
        },
    },
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["4", 1]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
}
CONCURRENCY = (1, 16, 64)


async def run_round(
    send: Callable[[], Awaitable[object]], requests: int, concurrency: int
) -> tuple[float, float]:
    """``requests`` sends by ``concurrency`` workers. Returns (seconds, client CPU seconds)."""
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await send()

    gc.collect()
    cpu = cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, cpu_seconds() - cpu


async def measure(url: str, runs: int, requests: int) -> dict[str, Any]:
    client_id = uuid.uuid4().hex
    found: dict[str, Any] = {}
    async with ComfyClient(url, client_id=client_id) as comfy, aiohttp.ClientSession() as bare:
        prompts = comfy.prompts
        endpoint = f"{url}/prompt"

        async def ours() -> object:
            return await prompts.submit(GRAPH, prompt_id=str(uuid.uuid4()), client_id=client_id)

        async def plain() -> object:
            body = {"prompt": GRAPH, "prompt_id": str(uuid.uuid4()), "client_id": client_id}
            async with bare.post(
                endpoint, data=orjson.dumps(body), headers={"Content-Type": "application/json"}
            ) as response:
                return orjson.loads(await response.read())

        for concurrency in CONCURRENCY:
            await run_round(ours, 50, concurrency)  # warm-up: connections open, code paths hot
            await run_round(plain, 50, concurrency)
            rows: dict[str, list[tuple[float, float]]] = {"ours": [], "bare": []}
            for round_ in range(runs):
                order = ("ours", "bare") if round_ % 2 == 0 else ("bare", "ours")
                for name in order:
                    rows[name].append(
                        await run_round(ours if name == "ours" else plain, requests, concurrency)
                    )
            found[str(concurrency)] = {
                name: {
                    "rps": [requests / seconds for seconds, _ in values],
                    "cpu_per_request": [cpu / requests for _, cpu in values],
                }
                for name, values in rows.items()
            }
    return found


def paired(rows: dict[str, Any], key: str) -> list[float]:
    """ours / bare of ``key`` round by round (each round runs both back to back)."""
    return [
        mine / theirs for mine, theirs in zip(rows["ours"][key], rows["bare"][key], strict=True)
    ]


def body(args: argparse.Namespace, report: Report) -> None:
    runs = 1 if args.quick else args.runs
    requests = 40 if args.quick else 400
    with ServerProcess("prompt") as server:
        found = asyncio.run(measure(server.url, runs, requests))
    table = report.table(
        f"POST /prompt, {requests} requests per round, median of {runs} paired rounds",
        "concurrency",
        "ours req/s",
        "bare req/s",
        "ours/bare",
        "ours/bare p25–p75",
        "ours CPU µs/req",
        "bare CPU µs/req",
        "CPU ours/bare",
    )
    rates: dict[str, float] = {}
    worst_cpu = 0.0
    for concurrency, rows in found.items():
        rate_ratios = paired(rows, "rps")
        rate = median(rate_ratios)
        cpu = median(paired(rows, "cpu_per_request"))
        table.add(
            concurrency,
            f"{median(rows['ours']['rps']):,.0f}",
            f"{median(rows['bare']['rps']):,.0f}",
            f"{rate:.0%}",
            f"{percentile(rate_ratios, 0.25):.0%}–{percentile(rate_ratios, 0.75):.0%}",
            f"{median(rows['ours']['cpu_per_request']) * 1e6:.0f}",
            f"{median(rows['bare']['cpu_per_request']) * 1e6:.0f}",
            f"{cpu:.2f}x",
        )
        rates[concurrency] = rate
        worst_cpu = max(worst_cpu, cpu)
    report.notes.append(
        "ours is comfy.prompts.submit: the submit path without the WebSocket part (see the "
        "script's docstring for why); the CPU is the client process's only (the server runs in "
        "another process)."
    )
    report.notes.append(
        "Each round runs ours and bare aiohttp back to back (in alternating order); the ratios "
        "are medians of the rounds' own ratios, so that a slow spell of this shared machine "
        "falls on both sides of a ratio. p25–p75 is the spread of those ratios."
    )
    report.raw = found
    for concurrency, rate in rates.items():
        report.target(
            f"P4 req/s ours / bare aiohttp at concurrency {concurrency}", rate, ">=", 0.90, "%"
        )
    report.target("P4 client CPU ours / bare aiohttp (worst concurrency)", worst_cpu, "<=", 1.2)


main = main_of(__doc__.splitlines()[0], 15, body, name="p4_submit", title="P4 submit")

if __name__ == "__main__":
    raise SystemExit(main(None))
