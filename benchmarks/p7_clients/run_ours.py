"""P7 adapter: comfy_async — one session, one WebSocket, every job iterated for its events.

Each job is ``comfy.submit(graph)`` (registered before the POST, so no event is missed), its
events are read (``async for event in job``: progress and previews, as a UI would show them),
``job.result()`` gives its outputs, and ``comfy.files.read`` fetches the saved image.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _job import arguments, digest, graph, run_all, write_result

from comfy_async import ComfyClient


async def main() -> None:
    url, jobs, base, deadline, result = arguments()
    results: dict[int, dict[str, object]] = {}
    events = {"progress": 0, "previews": 0}

    async with ComfyClient(url) as comfy:

        async def one(index: int) -> None:
            try:
                job = await comfy.submit(graph(index, base))
                async for event in job:
                    if event.type == "progress":
                        events["progress"] += 1
                    elif event.type == "preview_image":
                        events["previews"] += 1
                outcome = await job.result()
                data = await comfy.files.read(outcome.files[0])
                results[index] = {"sha256": digest(data), "prompt_id": job.prompt_id}
            except Exception as error:
                results[index] = {"error": f"{type(error).__name__}: {error}"}

        wall = await run_all(one, jobs, deadline)
    write_result(
        result,
        wall,
        results,
        "ComfyClient.submit + async for event in job + job.result() + files.read",
        events=events,
    )


if __name__ == "__main__":
    asyncio.run(main())
