"""A fake ComfyUI in a process of its own that reports, on request, what it was asked to run.

``python -m tests.distributed.fake_process [--time-scale S]`` prints ``listening on URL``, then
answers each ``counts`` line on its standard input with one JSON line: the POSTs per prompt id
and the prompts that finished (``[prompt_id, outcome]``, in order). It stops when its input closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter

from comfy_async.testing import FakeComfyServer


async def serve(time_scale: float) -> None:
    async with FakeComfyServer(time_scale=time_scale, history_max_items=100_000) as server:
        print(f"listening on {server.url}", flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            if line.strip() == b"counts":
                posts = Counter(record.prompt_id for record in server.prompt_posts)
                answer = {"posts": dict(posts), "finished": [list(f) for f in server.finished]}
                print(json.dumps(answer), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--time-scale", type=float, default=0.0)
    asyncio.run(serve(parser.parse_args().time_scale))


if __name__ == "__main__":
    main()
