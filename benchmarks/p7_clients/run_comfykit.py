"""P7 adapter: comfykit — ``ComfyKit.execute_json`` per job, all at once (``asyncio.gather``).

``executor`` is ``http`` (its default: a new aiohttp session per request, ``/history`` polled
every second) or ``websocket`` (one WebSocket per job, opened before the submit). The result
names the image by URL only, so the adapter fetches it with one shared aiohttp session.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
from _job import arguments, digest, graph, run_all, write_result
from comfykit import ComfyKit


async def main() -> None:
    url, jobs, base, deadline, result = arguments()
    executor = sys.argv[6] if len(sys.argv) > 6 else "http"
    logging.disable(logging.INFO)
    results: dict[int, dict[str, object]] = {}
    kit = ComfyKit(comfyui_url=url, executor_type=executor)
    async with aiohttp.ClientSession() as http:

        async def one(index: int) -> None:
            try:
                outcome = await kit.execute_json(graph(index, base))
                if outcome.status != "completed" or not outcome.images:
                    results[index] = {"error": f"{outcome.status}: {outcome.msg}"}
                    return
                async with http.get(outcome.images[0]) as response:
                    data = await response.read()
                results[index] = {"sha256": digest(data), "prompt_id": outcome.prompt_id}
            except Exception as error:
                results[index] = {"error": f"{type(error).__name__}: {error}"}

        wall = await run_all(one, jobs, deadline)
    note = f"ComfyKit(executor_type={executor!r}).execute_json"
    try:
        await kit.close()
    except AttributeError as error:  # 0.1.12: its executors have no close()
        note += f"; ComfyKit.close() fails ({error})"
    write_result(result, wall, results, note)


if __name__ == "__main__":
    asyncio.run(main())
