"""``batch``: run a workflow over the items of a JSON Lines file, each once, on one or many servers.

Each line of ``ITEMS.jsonl`` is one item (:class:`~comfy_async.ray.BatchItem`)::

    {"key": "cat-1", "inputs": {"6": {"text": "a cat"}}, "seed": 1}

``key`` names the item (unique in the file); ``inputs`` maps a node (id, title or class type) to
the inputs to set on it; ``seed`` sets every seed-like input. Blank lines are skipped. Every item
is read and checked against the workflow before anything is queued.

Each item's prompt id comes from the batch id and its key, so the command can be run again (after
a crash, Ctrl-C, a lost worker): items the servers already hold are followed there, items whose
record is in the output folder are not asked for at all, and nothing runs twice. The batch id
defaults to the items file's name plus a hash of the workflow. ``--engine local`` runs the items
from this process on a :class:`~comfy_async.ComfyPool` of the ``--url`` servers; ``--engine ray``
spreads them over ``--workers`` Ray actors (:class:`~comfy_async.ray.ComfyWorker`), on a local
Ray or the cluster at ``--address``.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from comfy_async.cli.failures import ExitCode, UsageError
from comfy_async.cli.registry import add_command, positive_int, positive_seconds
from comfy_async.cli.workflows import read_workflow
from comfy_async.errors import ConfigurationError
from comfy_async.ray import BatchItem, ItemResult, run_item
from comfy_async.workflow import Workflow

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

    from comfy_async.cli.output import Output
    from comfy_async.cli.registry import SubParsers
    from comfy_async.cli.session import Context

__all__ = ["BatchRun", "batch_command", "default_batch_id", "read_items", "register"]

_EXAMPLES = """\
examples:
  comfy-async batch items.jsonl --workflow txt2img_api.json -o out/
  comfy-async batch items.jsonl --workflow txt2img_api.json --url http://gpu1:8188 \\
      --url http://gpu2:8188 --concurrency 8 --json
  comfy-async batch items.jsonl --workflow txt2img_api.json --engine ray --workers 4 \\
      --url http://gpu1:8188 --url http://gpu2:8188 -o /shared/out
  comfy-async batch items.jsonl --workflow txt2img_api.json --engine ray --address auto

ITEMS.jsonl holds one item per line: {"key": "cat-1", "inputs": {"6": {"text": "a cat"}},
"seed": 1}. Run the same command again to resume: finished items are not run again.
Ctrl-C stops the command; prompts already on a server run on, and a re-run follows them.
With -o, each item's files and a result.json go to OUT_DIR/BATCH_ID/KEY/. Saved paths go to
stdout (one JSON line per item with --json); progress and the summary go to stderr.
Exit codes: 0 every item succeeded, 1 some failed, 2 usage (a bad item or workflow),
4 no server reachable, 130 interrupted.
"""


def read_items(path: str | Path, workflow: Workflow) -> list[BatchItem]:
    """The items of a JSON Lines file, each checked against ``workflow``.

    Raises:
        UsageError: the file cannot be read, a line is not an item, a key repeats, or an item
            names a node or input the workflow does not have (with its line number).

    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {path}: {error}") from error
    items: list[BatchItem] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = BatchItem.from_mapping(orjson.loads(line))
            item.apply(workflow)
        except orjson.JSONDecodeError as error:
            raise UsageError(f"{path} line {number}: not JSON: {error}") from error
        except (ConfigurationError, KeyError, ValueError) as error:
            raise UsageError(f"{path} line {number}: {error}") from error
        if item.key in seen:
            raise UsageError(
                f"{path} line {number}: key {item.key!r} is already on line {seen[item.key]}"
            )
        seen[item.key] = number
        items.append(item)
    if not items:
        raise UsageError(f"{path} holds no items")
    return items


def default_batch_id(items_path: str | Path, workflow: Workflow) -> str:
    """The items file's stem and a hash of the workflow: the same command, the same batch."""
    digest = hashlib.sha256(orjson.dumps(workflow.to_prompt(), option=orjson.OPT_SORT_KEYS))
    return f"{Path(items_path).stem or 'batch'}-{digest.hexdigest()[:10]}"


class BatchRun:
    """What the command tells as items end: saved paths or JSON lines, progress, a summary."""

    def __init__(self, out: Output, total: int, batch_id: str) -> None:
        self.out = out
        self.total = total
        self.batch_id = batch_id
        self.results: list[ItemResult] = []
        self._next_note = 0

    def record(self, result: ItemResult) -> None:
        """One item ended: print what it gave, and progress every tenth of the batch."""
        self.results.append(result)
        if self.out.json:
            self.out.json_line(result.to_dict())
        else:
            for path in result.saved:
                self.out.line(path)
        if not result.ok:
            self.out.warn(f"item {result.key} {result.status}: {result.error}")
        done = len(self.results)
        if done >= self._next_note or done == self.total:
            failed = sum(1 for item in self.results if not item.ok)
            self.out.note(f"batch {self.batch_id}: {done}/{self.total} ended, {failed} failed")
            self._next_note = done + max(1, math.ceil(self.total / 10))

    def summary(self) -> ExitCode:
        """Write the summary line; the exit code (1 when an item did not succeed)."""
        succeeded = [result for result in self.results if result.ok]
        resumed = sum(1 for result in succeeded if result.resumed)
        failed = len(self.results) - len(succeeded)
        self.out.note(
            f"batch {self.batch_id}: {len(self.results)} items, {len(succeeded)} succeeded "
            f"({resumed} already in the output folder), {failed} did not"
        )
        return ExitCode.OK if failed == 0 else ExitCode.FAILED


async def _run_local(
    servers: Sequence[str],
    workflow: Workflow,
    items: Sequence[BatchItem],
    run: BatchRun,
    *,
    storage: Path | None,
    timeout: float | None,
    concurrency: int,
    pool_options: dict[str, Any],
) -> None:
    from comfy_async.pool import ComfyPool  # noqa: PLC0415 - built on first use

    queue = iter(items)
    async with ComfyPool(servers, **pool_options) as pool:

        async def worker() -> None:
            for item in queue:
                result = await run_item(
                    pool, workflow, item, batch_id=run.batch_id, storage=storage, timeout=timeout
                )
                run.record(result)

        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, len(items))):
                group.create_task(worker())


def _run_on_ray(
    servers: Sequence[str],
    workflow: Workflow,
    items: Sequence[BatchItem],
    record: Callable[[ItemResult], None],
    *,
    batch_id: str,
    storage: Path | None,
    timeout: float | None,
    address: str | None,
    workers: int,
    chunk: int,
    pool_options: dict[str, Any],
) -> None:
    """Spread the items over restartable actors, ``chunk`` per call, two calls per actor."""
    try:
        import ray  # noqa: PLC0415 - the ray extra
    except ImportError:
        raise UsageError("--engine ray needs Ray: pip install 'comfy-async[ray]'") from None
    from comfy_async.ray import ComfyWorker  # noqa: PLC0415

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=address, include_dashboard=False, log_to_driver=False, configure_logging=False
        )
    actors: list[Any] = []
    try:
        actor_class = ray.remote(max_restarts=-1, max_task_retries=-1)(ComfyWorker)
        actors = [
            actor_class.remote(
                list(servers),
                workflow.to_prompt(),
                batch_id=batch_id,
                storage=storage,
                timeout=timeout,
                pool_options=pool_options,
            )
            for _ in range(workers)
        ]
        rows = [{"key": item.key, "inputs": item.inputs, "seed": item.seed} for item in items]
        chunks = [rows[start : start + chunk] for start in range(0, len(rows), chunk)]
        waiting = list(reversed(chunks))
        pending: dict[Any, int] = {}
        load = [0] * workers

        def feed() -> None:
            while waiting:
                index = min(range(workers), key=load.__getitem__)
                if load[index] >= 2:  # one call running, one queued, per actor
                    return
                pending[actors[index].run_many.remote(waiting.pop())] = index
                load[index] += 1

        feed()
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            load[pending.pop(done[0])] -= 1
            feed()
            for row in ray.get(done[0]):
                record(ItemResult.from_dict(row))
    finally:
        for actor in actors:
            ray.kill(actor)
        if started_here:
            ray.shutdown()


async def batch_command(ctx: Context) -> ExitCode:
    """``comfy-async batch``: run a workflow over the items of a JSON Lines file, resumably."""
    args, out = ctx.args, ctx.out
    choices = ctx.servers
    choice = choices[0]
    if choice.bearer_token or choice.basic_auth or choice.headers:
        raise UsageError("batch takes --url servers (and --cloud); proxy auth options are not used")
    servers = [item.url or "http://127.0.0.1:8188" for item in choices]
    pool_options: dict[str, Any] = {"retries": 0}  # a prompt runs at most once
    if choice.cloud:
        pool_options["api_key"] = choice.api_key
    try:
        workflow = Workflow.from_dict(read_workflow(args.workflow))
    except ConfigurationError as error:
        raise UsageError(f"{args.workflow}: {error}") from error
    items = read_items(args.items, workflow)
    batch_id = args.batch_id or default_batch_id(args.items, workflow)
    storage = _absolute(args.output) if args.output else None
    run = BatchRun(out, len(items), batch_id)
    out.note(
        f"batch {batch_id}: {len(items)} items, {len(servers)} server(s), {args.engine} engine"
    )
    if args.engine == "ray":
        loop = asyncio.get_running_loop()

        def record(result: ItemResult) -> None:
            loop.call_soon_threadsafe(run.record, result)

        await asyncio.to_thread(
            _run_on_ray,
            servers,
            workflow,
            items,
            record,
            batch_id=batch_id,
            storage=storage,
            timeout=args.timeout,
            address=args.address,
            workers=args.workers,
            chunk=args.chunk,
            pool_options=pool_options,
        )
        await asyncio.sleep(0)  # the last records scheduled from the Ray thread
    else:
        await _run_local(
            servers,
            workflow,
            items,
            run,
            storage=storage,
            timeout=args.timeout,
            concurrency=args.concurrency,
            pool_options=pool_options,
        )
    return run.summary()


def _absolute(folder: str) -> Path:
    """``folder`` as an absolute path: Ray's workers run in other directories."""
    return Path(os.path.abspath(folder))


def register(subparsers: SubParsers, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``batch`` to the command line."""
    parser = add_command(
        subparsers,
        "batch",
        parents,
        summary="run a workflow over a JSON Lines file of items, each once, resumably",
        handler=batch_command,
        description=(__doc__ or "").split("\n\n", 1)[0],
        examples=_EXAMPLES,
    )
    parser.add_argument("items", metavar="ITEMS.jsonl", help="one item per line")
    parser.add_argument(
        "--workflow", required=True, metavar="WORKFLOW.json", help="the API-format workflow"
    )
    parser.add_argument(
        "--engine", choices=("local", "ray"), default="local", help="where items run from"
    )
    parser.add_argument(
        "--address", metavar="ADDR", help="the Ray cluster (auto: the running one; default: local)"
    )
    parser.add_argument(
        "--workers", type=positive_int, default=2, metavar="N", help="Ray actors (default: 2)"
    )
    parser.add_argument(
        "--chunk",
        type=positive_int,
        default=16,
        metavar="N",
        help="items per Ray call (default: 16)",
    )
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=16,
        metavar="K",
        help="items in flight with --engine local (default: 16)",
    )
    parser.add_argument(
        "--batch-id", metavar="ID", help="names the batch (default: from the files)"
    )
    parser.add_argument("-o", "--output", metavar="OUT_DIR", help="save files and records here")
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        metavar="S",
        help="an item still running after S seconds fails",
    )
