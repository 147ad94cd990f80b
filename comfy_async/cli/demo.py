"""``demo``: a sample workflow run on the embedded fake server, end to end, with no GPU or network.

It starts :class:`~comfy_async.testing.FakeComfyServer` on a free loopback port in this process
and runs a small graph through the real client and the same code path as ``run``: an empty
image, a probe node that reports a dozen steps with a JPEG preview each (a short delay per step
so the bar can be watched), and a ``SaveImage``. The output PNG is saved to ``-o DIR`` (default
``./comfy-async-demo/``), the preview frames to ``DIR/previews/``, and the paths are printed.
The workflow itself is saved as ``DIR/workflow_api.json``, to try the other commands on with a
standalone fake server (``python -m comfy_async.testing``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from comfy_async.cli.execution import RunPlan, execute
from comfy_async.cli.failures import ExitCode
from comfy_async.cli.registry import add_command
from comfy_async.cli.session import ServerChoice
from comfy_async.cli.workflows import node_labels
from comfy_async.workflow import Workflow

if TYPE_CHECKING:
    import argparse

    from comfy_async.cli.registry import SubParsers
    from comfy_async.cli.session import Context

__all__ = ["DEFAULT_FOLDER", "WORKFLOW_FILE", "demo_command", "demo_workflow", "register"]

DEFAULT_FOLDER: Final = "comfy-async-demo"
"""Where the demo saves its image when ``-o`` is not given."""
WORKFLOW_FILE: Final = "workflow_api.json"
"""The name of the demo's workflow, saved beside its image."""
_SIDE: Final = 512
_COLOUR: Final = 0x2E86AB


def demo_workflow(*, steps: int = 12, delay: float = 0.15) -> dict[str, dict[str, object]]:
    """The demo's API-format graph: EmptyImage → ProbeSleepProgress (JPEG previews) → SaveImage."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": _SIDE, "height": _SIDE, "batch_size": 1, "color": _COLOUR},
        },
        "2": {
            "class_type": "ProbeSleepProgress",
            "inputs": {
                "image": ["1", 0],
                "steps": steps,
                "delay": delay,
                "preview_format": "JPEG",
                "text": "hello from the fake server",
            },
        },
        "3": {
            "class_type": "SaveImage",
            "inputs": {"images": ["2", 0], "filename_prefix": "comfy-async-demo"},
        },
    }


async def demo_command(ctx: Context) -> ExitCode:
    """``comfy-async demo``: run the sample workflow on an embedded fake server."""
    from comfy_async.testing import FakeComfyServer  # noqa: PLC0415 - the fake, for the demo only

    args, out = ctx.args, ctx.out
    folder = Path(args.output)
    async with FakeComfyServer() as server:
        out.note(f"demo: a fake ComfyUI at {server.url}, in this process (no GPU, no network)")
        client = ctx.client(ServerChoice(server.url))
        await client.connect()
        catalogue = await client.nodes()
        workflow = Workflow(demo_workflow(steps=args.steps, delay=args.delay), catalogue=catalogue)
        plan = RunPlan(
            workflow,
            labels=node_labels(workflow, catalogue),
            output_dir=folder,
            previews_dir=folder / "previews",
            overwrite=True,
            preview_method="auto",
        )
        code, reports = await execute(client, plan, out)
        await client.aclose()
    if code is not ExitCode.OK:
        return code
    workflow.save(folder / WORKFLOW_FILE)
    if reports[0].files and not out.json:
        out.note(
            f"demo done: {reports[0].files[0]} is the {_SIDE}×{_SIDE} PNG the workflow saved; "
            f"its {len(reports[0].previews)} preview frames are in {folder / 'previews'}"
        )
        out.note(
            f"next: start a fake server (python -m comfy_async.testing) and try "
            f"comfy-async run {folder / WORKFLOW_FILE} on it; comfy-async --help lists the rest"
        )
    return code


def register(subparsers: SubParsers, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``demo`` to the command line."""
    parser = add_command(
        subparsers,
        "demo",
        parents,
        summary="a sample workflow on a built-in fake server (no GPU, no network)",
        handler=demo_command,
        description=(
            "Start a fake ComfyUI in this process, run a sample workflow through the client "
            "with live progress and previews, and save the output image."
        ),
    )
    parser.add_argument(
        "-o",
        "--output",
        default=DEFAULT_FOLDER,
        metavar="DIR",
        help=f"where the image goes (default: ./{DEFAULT_FOLDER}/)",
    )
    parser.add_argument("--steps", type=int, default=12, help="progress steps (default 12)")
    parser.add_argument("--delay", type=float, default=0.15, help="seconds per step (default 0.15)")
