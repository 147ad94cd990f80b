"""``run``: submit a workflow file, show its progress live, save its outputs and previews.

The workflow (API format, or UI format converted with the server's catalogue) is edited as the
options ask (``--upload``, ``--set``, ``--seed``), checked offline against the server's
catalogue unless ``--no-validate`` (a refusal exits with 3 before anything is queued), then run
once or ``--count`` times (:mod:`comfy_async.cli.execution`). With several servers (``--url``
repeated, or ``$COMFY_URLS``) the runs go through a :class:`~comfy_async.pool.ComfyPool`: the
workflow passes validation if one server's catalogue accepts it (the pool routes each job to a
server that has its nodes and models), ``--upload`` files go to every server that answers, each
server's outputs go to a folder of their own, and each server gets a progress line. Saved file
paths go to stdout, one per line (or one JSON object per run with ``--json``); progress and
messages go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from comfy_async.cli.edits import apply_uploads, apply_values
from comfy_async.cli.execution import RunPlan, execute
from comfy_async.cli.failures import ExitCode, FleetUnreachable
from comfy_async.cli.registry import add_command, positive_int, positive_seconds
from comfy_async.cli.workflows import (
    add_edit_options,
    load_workflow,
    node_labels,
    read_workflow,
    refuse,
)
from comfy_async.workflow import is_ui_format

if TYPE_CHECKING:
    from collections.abc import Sequence

    from comfy_async.catalogue import Catalogue
    from comfy_async.cli.registry import SubParsers
    from comfy_async.cli.session import Context
    from comfy_async.client import ComfyClient
    from comfy_async.pool import ComfyPool

__all__ = ["DEFAULT_CONCURRENCY", "fleet_clients", "prepare_plan", "register", "run_command"]

DEFAULT_CONCURRENCY = 2
"""Jobs of a batch queued at once by default: one running, one waiting, the GPU never idle."""

_EXAMPLES = """\
examples:
  comfy-async run txt2img_api.json -o out/
  comfy-async run txt2img_api.json --set 6.text="a lighthouse at dawn" --seed random
  comfy-async run img2img_api.json --upload "Load Image.image=cat.png" --previews previews/
  comfy-async run txt2img_api.json --count 20 --concurrency 4 --seed random --json
  comfy-async --cloud run txt2img_api.json          # key in $COMFY_CLOUD_API_KEY
  comfy-async --url http://gpu1:8188 --url http://gpu2:8188 run txt2img_api.json --count 40

NODE is a node id, a title or a class type (when only one node has it). Saved files are printed
on stdout, one per line; progress goes to stderr. With several servers each one's outputs go to
a subfolder named after it (OUT_DIR/gpu1_8188/), since each server numbers its files alone.
Ctrl-C cancels the run's jobs on the server.
Exit codes: 0 done, 1 a job failed, 2 usage, 3 refused by validation, 4 server unreachable,
130 interrupted.
"""


async def _catalogues(clients: Sequence[ComfyClient]) -> list[Catalogue]:
    return list(await asyncio.gather(*(client.nodes() for client in clients)))


async def prepare_plan(ctx: Context, clients: Sequence[ComfyClient]) -> RunPlan | ExitCode:
    """Load, edit and check the workflow of ``run``; a plan, or the exit code of a refusal.

    ``clients`` are the servers that answer (one, or those of a fleet): the first one's
    catalogue converts a UI export and names the nodes; validation passes if one server's
    catalogue accepts the workflow; uploads go to each.
    """
    args, out = ctx.args, ctx.out
    data = read_workflow(args.workflow)
    catalogues = await _catalogues(clients) if args.validate or is_ui_format(data) else []
    catalogue = catalogues[0] if catalogues else None
    workflow = load_workflow(data, catalogue)
    for client in clients:
        await apply_uploads(workflow, args.uploads, client)
    apply_values(workflow, args.values)
    plan = RunPlan(
        workflow,
        count=args.count,
        seed=args.seed,
        labels=node_labels(workflow, catalogue),
        output_dir=None if args.no_save else Path(args.output),
        previews_dir=Path(args.previews) if args.previews else None,
        overwrite=args.overwrite,
        timeout=args.timeout,
        concurrency=args.concurrency or DEFAULT_CONCURRENCY * len(ctx.servers),
        preview_method="auto" if args.previews else None,
    )
    first, seeds = plan.instance(0)
    if args.seed is not None and not seeds:
        out.warn("--seed: the workflow has no seed input (seed, noise_seed, *_seed); none was set")
    if args.validate and catalogues:
        checked = [first] if plan.count == 1 else [first, plan.instance(plan.count - 1)[0]]
        refusals = [
            [problem for candidate in checked for problem in candidate.validate(each)]
            for each in catalogues
        ]
        if all(refusals):  # no server would take it: say what the first one lacks
            return refuse(refusals[0], out)
    return plan


async def fleet_clients(ctx: Context) -> tuple[ComfyPool, list[ComfyClient]]:
    """A started pool over the selected servers, and the clients of those that answer.

    Raises:
        FleetUnreachable: none answers.

    """
    pool = await ctx.pool()
    stats = pool.stats()
    answering = [
        client
        for client, state in zip(pool.servers, stats.values(), strict=True)
        if state.health == "up"
    ]
    if not answering:
        raise FleetUnreachable(f"none of the {len(stats)} servers answers ({', '.join(stats)})")
    return pool, answering


async def run_command(ctx: Context) -> ExitCode:
    """``comfy-async run``: run a workflow file with live progress; save what it produces."""
    if len(ctx.servers) > 1:
        pool, answering = await fleet_clients(ctx)
        plan = await prepare_plan(ctx, answering)
        if isinstance(plan, ExitCode):
            return plan
        code, _ = await execute(pool, plan, ctx.out)
        return code
    client = ctx.client()
    await client.connect()  # fail fast on an unreachable server or refused credentials
    plan = await prepare_plan(ctx, [client])
    if isinstance(plan, ExitCode):
        return plan
    code, _ = await execute(client, plan, ctx.out)
    return code


def register(subparsers: SubParsers, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``run`` to the command line."""
    parser = add_command(
        subparsers,
        "run",
        parents,
        summary="run a workflow with live progress and save its outputs",
        handler=run_command,
        description="Run a workflow file, show its progress live and save what it produces.",
        examples=_EXAMPLES,
    )
    parser.add_argument("workflow", metavar="WORKFLOW.json", help="API or UI format")
    add_edit_options(parser)
    parser.add_argument(
        "--upload",
        dest="uploads",
        action="append",
        default=[],
        metavar="NODE.INPUT=PATH",
        help="upload a file and point a loader's input at it (repeatable)",
    )
    parser.add_argument(
        "-o", "--output", default=".", metavar="OUT_DIR", help="where outputs go (default: .)"
    )
    parser.add_argument("--no-save", action="store_true", help="do not download the outputs")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.add_argument(
        "--previews", metavar="DIR", help="save every preview frame in DIR (asks for previews)"
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        metavar="S",
        help="cancel a job still running after S seconds",
    )
    parser.add_argument(
        "--count", type=positive_int, default=1, metavar="N", help="run it N times (a batch)"
    )
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        metavar="K",
        help=f"jobs of a batch queued at once (default: {DEFAULT_CONCURRENCY} per server)",
    )
    parser.add_argument(
        "--validate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="check the workflow against the server's catalogue first (default: on)",
    )
