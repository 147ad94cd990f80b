"""P7 adapter: comfy-headless — its async ``ComfyWSClient`` (one WebSocket for every job).

Each job: ``queue_prompt`` (a new httpx client per call), ``wait_for_completion`` (a listener on
the shared socket, registered after the submit returns), then ``get_history`` and ``get_image``.
The synchronous ``ComfyClient`` polls ``/history`` from one thread per job; the WebSocket client
is the library's concurrent way.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _job import arguments, digest, graph, run_all, write_result
from comfy_headless import ComfyWSClient


async def main() -> None:
    url, jobs, base, deadline, result = arguments()
    logging.disable(logging.WARNING)
    results: dict[int, dict[str, object]] = {}
    async with ComfyWSClient(base_url=url) as client:

        async def one(index: int) -> None:
            try:
                prompt_id = await client.queue_prompt(graph(index, base))
                final = await client.wait_for_completion(prompt_id, timeout=deadline)
                if final.status != "completed":
                    results[index] = {"error": f"ended as {final.status}"}
                    return
                history = await client.get_history(prompt_id)
                image = history[prompt_id]["outputs"]["4"]["images"][0]
                data = await client.get_image(image["filename"], image["subfolder"], image["type"])
                results[index] = {"sha256": digest(data or b""), "prompt_id": prompt_id}
            except Exception as error:
                results[index] = {"error": f"{type(error).__name__}: {error}"}

        wall = await run_all(one, jobs, deadline)
    write_result(
        result, wall, results, "ComfyWSClient.queue_prompt + wait_for_completion + get_image"
    )


if __name__ == "__main__":
    asyncio.run(main())
