"""A batch: many seeds of one workflow, a bounded number in flight, results as they finish.

python examples/batch.py --count 20 --concurrency 4
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator

from _server import SD15_WORKFLOW, arguments, server_url

from comfy_async import ComfyClient, Workflow


async def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__ or "", workflow=SD15_WORKFLOW)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--out", default="batch-output")
    args = parser.parse_args(argv)
    async with server_url(args.url) as url, ComfyClient(url) as comfy:
        base = Workflow.from_file(args.workflow, catalogue=await comfy.nodes())

        def variants() -> Iterator[Workflow]:  # read lazily, one at a time
            for _ in range(args.count):
                workflow = base.copy()
                workflow.randomize_seeds()
                yield workflow

        started = time.perf_counter()
        failures = 0
        async for outcome in comfy.submit_many(variants(), concurrency=args.concurrency):
            if outcome.result is not None:
                paths = await outcome.result.save(f"{args.out}/{outcome.index:04}")
                print(f"#{outcome.index}: {', '.join(p.name for p in paths)}")
            else:
                failures += 1
                print(f"#{outcome.index}: {outcome.error}", file=sys.stderr)
        elapsed = time.perf_counter() - started
        print(f"{args.count - failures}/{args.count} done in {elapsed:.1f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
