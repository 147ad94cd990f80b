"""A batch over a fleet: many seeds of one workflow, spread over servers, results as they finish.

python examples/batch.py --count 20 --url http://gpu1:8188 --url http://gpu2:8188

Without ``--url`` two embedded fake servers run it (one twice as fast as the other). The pool
holds the jobs and sends each server what it has room for, so a fast server takes more; a
server that fails is taken out and its jobs run on the others, once.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator

from _server import SD15_WORKFLOW, arguments, server_urls

from comfy_async import ComfyPool, Workflow


async def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__ or "", workflow=SD15_WORKFLOW, fleet=True)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--out", default="batch-output")
    args = parser.parse_args(argv)
    async with server_urls(args.url) as urls, ComfyPool(urls) as pool:
        base = Workflow.from_file(args.workflow, catalogue=await pool.servers[0].nodes())

        def variants() -> Iterator[Workflow]:  # read lazily, one at a time
            for _ in range(args.count):
                workflow = base.copy()
                workflow.randomize_seeds()
                yield workflow

        started = time.perf_counter()
        failures = 0
        async for outcome in pool.submit_many(variants()):
            if outcome.result is not None:
                paths = await outcome.result.save(f"{args.out}/{outcome.index:04}")
                print(f"#{outcome.index}: {', '.join(p.name for p in paths)}")
            else:
                failures += 1
                print(f"#{outcome.index}: {outcome.error}", file=sys.stderr)
        elapsed = time.perf_counter() - started
        print(f"{args.count - failures}/{args.count} done in {elapsed:.1f} s")
        for name, stats in pool.stats().items():
            print(f"{name}: {stats.done} done, {stats.mean_duration:.2f} s per job")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
