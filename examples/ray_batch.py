"""Scaling out on Ray: a batch over a fleet, each item run once, by workers that may die.

python examples/ray_batch.py --count 12 --workers 2 --url http://gpu1:8188 --url http://gpu2:8188

Without ``--url`` two embedded fake servers run it, and Ray runs locally (no cluster needed;
give ``--address`` for one). Each worker is an actor that keeps one pool per process; each item
has a prompt id made from the batch id and its key, so a restarted worker or a re-run of the
command finds the items already done on the servers (or in ``--out``) and runs nothing twice.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter

from _server import SD15_WORKFLOW, arguments, server_urls

from comfy_async.ray import ComfyWorker


async def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__ or "", workflow=SD15_WORKFLOW, fleet=True)
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-id", default="example-batch")
    parser.add_argument("--out", default="ray-output", help="where each item's outputs go")
    parser.add_argument("--address", help="a Ray cluster (default: start Ray locally)")
    args = parser.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves this machine
    import ray  # noqa: PLC0415 - the [ray] extra, imported once the variable above is set

    async with server_urls(args.url) as urls:
        if args.address:
            ray.init(address=args.address)
        else:
            ray.init(
                num_cpus=max(2, args.workers),
                include_dashboard=False,
                log_to_driver=False,
                _node_ip_address="127.0.0.1",
            )
        try:
            worker = ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=0.5)(ComfyWorker)
            workers = [
                worker.remote(urls, str(args.workflow), batch_id=args.batch_id, storage=args.out)
                for _ in range(args.workers)
            ]
            items = [{"key": f"seed-{n}", "seed": n} for n in range(args.count)]
            shares = [items[index :: len(workers)] for index in range(len(workers))]
            batches = await asyncio.gather(
                *(
                    actor.run_many.remote(share)
                    for actor, share in zip(workers, shares, strict=True)
                )
            )
        finally:
            ray.shutdown()
    results = [result for batch in batches for result in batch]
    statuses = Counter(result["status"] for result in results)
    servers = Counter(result["server"] for result in results)
    print(f"{statuses['success']}/{args.count} done: {dict(statuses)}")
    for server, count in sorted(servers.items()):
        print(f"  {server}: {count}")
    return 0 if statuses["success"] == args.count else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
