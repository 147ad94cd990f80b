"""P11 adapter: comfy-sdk (Comfy-Org's Python SDK for the Comfy API v2), its async client.

``AsyncComfy`` reads the server from ``COMFY_BASE_URL``; each job is ``client.run(workflow)``
(submit, then poll the job to a terminal state), and the image is read with
``output.to_bytes()``. Runs in its own virtual environment (``benchmarks/.venv-comfy-sdk``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "p7_clients"))

from _job import arguments, digest, graph, run_all, write_result

KEY = "bench-v2-key"


async def main() -> None:
    url, jobs, base, deadline, result = arguments()
    os.environ["COMFY_BASE_URL"] = url
    from comfy_sdk import AsyncComfy

    results: dict[int, dict[str, object]] = {}
    async with AsyncComfy(api_key=KEY) as client:

        async def one(index: int) -> None:
            try:
                workflow = client.workflows.from_json(graph(index, base))
                job = await client.run(workflow)
                data = await job.outputs[0].to_bytes()
                results[index] = {"sha256": digest(data), "prompt_id": job.id}
            except Exception as error:
                results[index] = {"error": f"{type(error).__name__}: {error}"}

        wall = await run_all(one, jobs, deadline)
    write_result(result, wall, results, "AsyncComfy.run + outputs[0].to_bytes()")


if __name__ == "__main__":
    asyncio.run(main())
