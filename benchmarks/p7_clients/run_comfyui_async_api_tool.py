"""P7 adapter: comfyui-async-api-tool — ``ComfyClient.run`` per job, all at once.

``run`` posts the prompt, opens one WebSocket per job (after the submit), polls ``/queue``
every 5 s per job, then polls ``/history`` and downloads the image (yielded as bytes).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
from _job import arguments, digest, graph, run_all, write_result
from comfyui_async_api_tool.client import ComfyClient


async def main() -> None:
    url, jobs, base, deadline, result = arguments()
    logging.disable(logging.ERROR)
    results: dict[int, dict[str, object]] = {}
    async with aiohttp.ClientSession() as http:
        client = ComfyClient(http, url, max_listen_seconds=deadline, fetch_image_timeout=deadline)

        async def one(index: int) -> None:
            try:
                prompt_id = None
                async for event in client.run(graph(index, base), server=url):
                    if event["type"] == "start":
                        prompt_id = event["data"]["prompt_id"]
                    elif event["type"] == "image":
                        results[index] = {"sha256": digest(event["data"]), "prompt_id": prompt_id}
                    elif event["type"] == "error":
                        results[index] = {"error": event["msg"]}
                results.setdefault(index, {"error": "ended without an image"})
            except Exception as error:
                results[index] = {"error": f"{type(error).__name__}: {error}"}

        wall = await run_all(one, jobs, deadline)
    write_result(result, wall, results, "ComfyClient(session, url).run(workflow, server=url)")


if __name__ == "__main__":
    asyncio.run(main())
