"""P11 adapter: comfy_async on the Comfy API v2 — ``ComfyClient.v2``, every job iterated.

Each job is ``comfy.submit(graph)``; its events are read (``async for event in job``, from the
job's SSE stream, reconciled with the job object), ``job.result()`` gives its outputs, and the
image is fetched by following the output's content link (``result.save``).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "p7_clients"))

from _job import arguments, digest, graph, run_all, write_result

from comfy_async import ComfyClient

KEY = "bench-v2-key"


async def main() -> None:
    url, jobs, base, deadline, result = arguments()
    results: dict[int, dict[str, object]] = {}
    events = {"progress": 0}

    async with ComfyClient.v2(url, api_key=KEY) as comfy:

        async def one(index: int) -> None:
            try:
                job = await comfy.submit(graph(index, base))
                async for event in job:
                    if event.type == "progress":
                        events["progress"] += 1
                outcome = await job.result()
                with tempfile.TemporaryDirectory() as folder:
                    saved = await outcome.save(folder)
                    data = saved[0].read_bytes()
                results[index] = {"sha256": digest(data), "prompt_id": job.prompt_id}
            except Exception as error:
                results[index] = {"error": f"{type(error).__name__}: {error}"}

        wall = await run_all(one, jobs, deadline)
    write_result(
        result,
        wall,
        results,
        "ComfyClient.v2 submit + async for event in job + job.result() + result.save",
        events=events,
    )


if __name__ == "__main__":
    asyncio.run(main())
