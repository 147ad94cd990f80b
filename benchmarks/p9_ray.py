"""P9 Ray: a batch spread over Ray workers, how it scales on this machine, and a worker killed.

A batch of 2,000 items (EmptyImage with the item's colour → ProbeSleepProgress, 4 steps →
SaveImage) runs over eight ComfyUI-faithful fake servers, each in its own process (``_servers
fake``, durations scaled to zero, so the client side is what is measured): **local** (one
process, one ``ComfyPool``, ``run_item`` 32 items at a time), then **Ray with 1, 2 and 4
workers** (restartable ``ComfyWorker`` actors on a local Ray, 16 items per call, two calls in
flight per actor). Per run: items per second, throughput per worker relative to one worker, and
client CPU per item (the worker processes' CPU, Ray's own threads in them included; the driver's
apart). Then the **kill run**: 2 workers, one killed (``ray.kill``, restarted by Ray) when a
quarter of the items have ended; items lost (no success returned), and items run twice or POSTed
twice to one server, counted by the servers.

Targets: 0 items lost, 0 run twice, 0 POSTed twice after a worker kill.

Run: ``python benchmarks/p9_ray.py [--quick] [--items N] [--servers N]``.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import Report, ServerProcess, cpu_seconds, main_of, median
from benchmarks.p6_scale import graph
from comfy_async import ComfyPool, Workflow
from comfy_async.ray import ComfyWorker, run_item

if TYPE_CHECKING:
    import argparse
    from contextlib import ExitStack

CHUNK = 16
LOCAL_AT_ONCE = 32


class MeasuredWorker(ComfyWorker):
    """A :class:`ComfyWorker` that tells its process id (for its CPU time)."""

    async def pid(self) -> int:
        """This worker's process id."""
        return os.getpid()


def batch_items(count: int) -> list[dict[str, Any]]:
    """``count`` items, each with its own colour (so no server cache)."""
    return [{"key": f"i{index}", "inputs": {"1": {"color": index}}} for index in range(count)]


def totals(servers: list[ServerProcess]) -> dict[str, int]:
    """The servers' counters, summed."""
    summed: dict[str, int] = {}
    for server in servers:
        stats = server.ask("stats")
        for name in ("prompt_posts", "posted_twice", "successes", "ran_twice"):
            summed[name] = summed.get(name, 0) + int(stats[name])
    return summed


def run_local(urls: list[str], items: list[dict[str, Any]], batch_id: str) -> tuple[float, float]:
    """Wall seconds and this process's CPU seconds for the batch on one pool."""
    workflow = Workflow(graph(0, steps=4))

    async def main() -> None:
        queue = iter(items)
        async with ComfyPool(urls, retries=0) as pool:

            async def worker() -> None:
                for item in queue:
                    result = await run_item(pool, workflow, item, batch_id=batch_id)
                    assert result.ok, result

            await asyncio.gather(*(worker() for _ in range(LOCAL_AT_ONCE)))

    cpu, wall = cpu_seconds(), time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - wall, cpu_seconds() - cpu


def run_on_ray(
    ray: Any,
    urls: list[str],
    items: list[dict[str, Any]],
    batch_id: str,
    workers: int,
    *,
    kill_after: int | None = None,
) -> dict[str, Any]:
    """Run the batch on ``workers`` actors; wall time, worker CPU, outcomes."""
    actor_class = ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=0.5)(MeasuredWorker)
    actors = [
        actor_class.remote(urls, graph(0, steps=4), batch_id=batch_id, pool_options={"retries": 0})
        for _ in range(workers)
    ]
    pids = ray.get([actor.pid.remote() for actor in actors])
    cpu_before = {pid: cpu_seconds(pid) for pid in pids}
    waiting = [items[start : start + CHUNK] for start in range(0, len(items), CHUNK)][::-1]
    pending: dict[Any, int] = {}
    load = [0] * workers
    outcomes: dict[str, str] = {}
    killed = False
    driver_cpu, wall = cpu_seconds(), time.perf_counter()

    def feed() -> None:
        while waiting:
            index = min(range(workers), key=load.__getitem__)
            if load[index] >= 2:
                return
            pending[actors[index].run_many.remote(waiting.pop())] = index
            load[index] += 1

    feed()
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        load[pending.pop(done[0])] -= 1
        for row in ray.get(done[0]):
            if outcomes.get(row["key"]) != "success":
                outcomes[row["key"]] = row["status"]
        feed()
        if kill_after is not None and not killed and len(outcomes) >= kill_after:
            cpu_before.pop(pids[0])  # its CPU dies with it
            ray.kill(actors[0], no_restart=False)
            killed = True
    elapsed = time.perf_counter() - wall
    worker_cpu = sum(cpu_seconds(pid) - before for pid, before in cpu_before.items())
    for actor in actors:
        ray.kill(actor)
    return {
        "wall": elapsed,
        "worker_cpu": worker_cpu,
        "measured_workers": len(cpu_before),
        "driver_cpu": cpu_seconds() - driver_cpu,
        "outcomes": outcomes,
    }


def body(args: argparse.Namespace, report: Report) -> None:
    try:
        import ray
    except ImportError:
        report.skipped = "Ray is not installed (pip install -e '.[ray]')"
        report.target("P9 items lost after a worker kill (Ray absent: not run)", 0, "<=", 0, "")
        return
    from contextlib import ExitStack

    count = args.items or (60 if args.quick else 2000)
    server_count = args.servers or (3 if args.quick else 8)
    worker_counts = (1, 2) if args.quick else (1, 2, 4)
    items = batch_items(count)
    with ExitStack() as stack:
        servers = start_servers(stack, server_count)
        urls = [server.url for server in servers]
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(
            num_cpus=max(worker_counts),
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            _node_ip_address="127.0.0.1",
        )
        stack.callback(ray.shutdown)
        table = report.table(
            f"{count} items over {server_count} fake servers (median of {args.runs} runs)",
            "engine",
            "items/s",
            "per worker vs 1",
            "worker CPU ms/item",
            "driver CPU ms/item",
        )
        raw: dict[str, Any] = {"items": count, "servers": server_count, "cpus": os.cpu_count()}
        walls, cpus = [], []
        for run in range(args.runs):
            wall, cpu = run_local(urls, items, f"local-{run}")
            walls.append(wall)
            cpus.append(cpu)
        local_rate = count / median(walls)
        table.add(
            "local (one process)",
            f"{local_rate:.0f}",
            "-",
            f"{1000 * median(cpus) / count:.2f}",
            "-",
        )
        raw["local"] = {"items_per_s": local_rate, "cpu_ms_per_item": 1000 * median(cpus) / count}
        one_worker_rate = 0.0
        for workers in worker_counts:
            runs = [
                run_on_ray(ray, urls, items, f"ray{workers}-{run}", workers)
                for run in range(args.runs)
            ]
            rate = count / median([run["wall"] for run in runs])
            one_worker_rate = one_worker_rate or rate
            relative = (rate / workers) / one_worker_rate
            worker_ms = 1000 * median([run["worker_cpu"] for run in runs]) / count
            driver_ms = 1000 * median([run["driver_cpu"] for run in runs]) / count
            table.add(
                f"Ray, {workers} worker(s)",
                f"{rate:.0f}",
                f"{relative:.2f}x",
                f"{worker_ms:.2f}",
                f"{driver_ms:.2f}",
            )
            raw[f"ray_{workers}"] = {
                "items_per_s": rate,
                "per_worker_vs_one": relative,
                "worker_cpu_ms_per_item": worker_ms,
                "driver_cpu_ms_per_item": driver_ms,
            }
        before = totals(servers)
        kill = run_on_ray(ray, urls, items, "kill", 2, kill_after=count // 4)
        after = totals(servers)
        lost = sum(1 for item in items if kill["outcomes"].get(item["key"]) != "success")
        ran_twice = after["ran_twice"] - before["ran_twice"]
        posted_twice = after["posted_twice"] - before["posted_twice"]
        raw["kill"] = {
            "lost": lost,
            "ran_twice": ran_twice,
            "posted_twice": posted_twice,
            "posts": after["prompt_posts"] - before["prompt_posts"],
            "successes": after["successes"] - before["successes"],
            "wall": kill["wall"],
        }
        report.raw = raw
    kills = report.table(
        "a worker killed at 25% (2 workers)", "items", "POSTs", "runs", "lost", "run twice"
    )
    kills.add(count, raw["kill"]["posts"], raw["kill"]["successes"], lost, ran_twice)
    report.notes.append(
        f"This machine has {os.cpu_count()} cores shared by the fake servers, Ray's own processes "
        "and the workers: more workers cannot add throughput here, and the per-worker figure "
        "shows what the extra processes cost. On a cluster each worker brings its own cores; "
        "the client CPU per item is what a worker spends, whatever the fleet."
    )
    report.target("P9 items lost after a worker kill", lost, "<=", 0, "")
    report.target("P9 items run twice after a worker kill", ran_twice, "<=", 0, "")
    report.target(
        "P9 prompts POSTed twice to a server after a worker kill", posted_twice, "<=", 0, ""
    )


def start_servers(stack: ExitStack, count: int) -> list[ServerProcess]:
    """``count`` fake servers, each in its own process."""
    return [stack.enter_context(ServerProcess("fake", "--no-validation")) for _ in range(count)]


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--items", type=int, help="items per batch (default 2,000; quick: 60)")
    parser.add_argument("--servers", type=int, help="fake servers (default 8; quick: 3)")


main = main_of(__doc__.splitlines()[0], 1, body, name="p9_ray", title="P9 Ray", setup=setup)

if __name__ == "__main__":
    raise SystemExit(main(None))
