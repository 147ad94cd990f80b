"""P7 adapter: comfy-api-simplified — ``queue_and_wait_images`` per job, one thread per job.

The library is synchronous (``requests``; its WebSocket wait runs ``asyncio.run`` inside), so
concurrency means threads: 256 at once. ``queue_and_wait_images`` opens one WebSocket per job
after the submit and returns the binary frames it saw, if any, else the saved image.
"""

from __future__ import annotations

import logging
import sys
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _job import Clock, arguments, digest, graph, write_result
from comfy_api_simplified import ComfyApiWrapper, ComfyWorkflowWrapper


def main() -> None:
    url, jobs, base, deadline, result = arguments()
    logging.disable(logging.WARNING)
    results: dict[int, dict[str, object]] = {}
    api = ComfyApiWrapper(url)

    def one(index: int) -> None:
        try:
            images = api.queue_and_wait_images(
                ComfyWorkflowWrapper(graph(index, base)), "Save Image"
            )
            data = next(iter(images.values()))
            results[index] = {"sha256": digest(data), "images": len(images)}
        except Exception as error:
            results[index] = {"error": f"{type(error).__name__}: {error}"}

    clock = Clock()
    pool = ThreadPoolExecutor(max_workers=jobs)
    futures = [pool.submit(one, index) for index in range(jobs)]
    wait(futures, timeout=deadline)
    wall = clock.seconds()
    write_result(result, wall, results, "ComfyApiWrapper.queue_and_wait_images, one thread per job")
    pool.shutdown(wait=False, cancel_futures=True)


if __name__ == "__main__":
    main()
