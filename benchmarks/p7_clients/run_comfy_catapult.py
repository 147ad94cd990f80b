"""P7 adapter: comfy-catapult — ``ComfyCatapult.Catapult`` per job, all at once.

Catapult submits each prompt, follows them with one WebSocket plus a poll loop (``/queue``,
``/system_stats`` and ``/history/{id}`` every 2 s) and resolves each job with its history; the
adapter then fetches the image with the client's ``GetView``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _job import arguments, digest, graph, run_all, write_result
from comfy_catapult.api_client import ComfyAPIClient
from comfy_catapult.catapult import ComfyCatapult


async def main() -> None:
    url, jobs, base, deadline, result = arguments()
    logging.disable(logging.CRITICAL)
    results: dict[int, dict[str, object]] = {}
    async with (
        ComfyAPIClient(comfy_api_url=url + "/") as client,
        ComfyCatapult(comfy_client=client, debug_path=None) as catapult,
    ):

        async def one(index: int) -> None:
            try:
                history = await catapult.Catapult(
                    job_id=f"job-{base}-{index}",
                    prepared_workflow=graph(index, base),
                    important=["4"],
                )
                image = history["outputs"]["4"]["images"][0]
                data = await client.GetView(
                    folder_type=image["type"],
                    subfolder=image["subfolder"],
                    filename=image["filename"],
                )
                results[index] = {"sha256": digest(data)}
            except Exception as error:
                results[index] = {"error": f"{type(error).__name__}: {error}"}

        wall = await run_all(one, jobs, deadline)
    write_result(result, wall, results, "ComfyCatapult.Catapult + ComfyAPIClient.GetView")


if __name__ == "__main__":
    asyncio.run(main())
