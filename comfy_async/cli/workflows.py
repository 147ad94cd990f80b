"""``validate`` and ``convert``: workflow files checked and converted against a node catalogue.

Both work offline with ``--object-info FILE`` (a saved ``GET /object_info``, ``.json`` or
``.json.gz``), else with the catalogue of the selected server. ``validate`` reports every problem
the server would report (node, input, reason; exit code 3), after the same ``--set``/``--seed``
edits ``run`` takes; ``convert`` turns a workflow saved from the UI into the API format that
``run`` and ``POST /prompt`` take. This module also owns reading a workflow file, the names
progress bars give nodes, and how a refusal is printed, which ``run`` shares.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from comfy_async._graph.json_values import JsonValue, loads
from comfy_async.cli.edits import apply_values, parse_seed
from comfy_async.cli.failures import ExitCode, UsageError, problem_lines
from comfy_async.cli.registry import add_command
from comfy_async.workflow import Workflow, is_ui_format

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping, Sequence

    from comfy_async.catalogue import Catalogue
    from comfy_async.cli.output import Output
    from comfy_async.cli.registry import SubParsers
    from comfy_async.cli.session import Context
    from comfy_async.workflow import Problem

__all__ = [
    "add_edit_options",
    "add_object_info_option",
    "convert_command",
    "load_workflow",
    "node_labels",
    "read_workflow",
    "refuse",
    "register",
    "validate_command",
]

_VALIDATE_EXAMPLES = """\
examples:
  comfy-async validate txt2img_api.json                       # against the server's nodes
  comfy-async validate wf.json --object-info object_info.json # offline
  comfy-async validate wf.json --set KSampler.steps=500 --json

Exit code 0 when the server would accept the workflow, 3 when it would refuse it (each problem
is listed with its node, input and reason).
"""

_CONVERT_EXAMPLES = """\
examples:
  comfy-async convert my_workflow.json -o my_workflow_api.json
  comfy-async convert ui.json --object-info object_info.json > api.json

The UI saves workflows with 'nodes' and 'links'; the API format (what POST /prompt takes) has
one entry per node id. Converting needs the node catalogue, to map widget values to inputs.
"""


def add_edit_options(parser: argparse.ArgumentParser) -> None:
    """``--set`` and ``--seed``, shared by ``run`` and ``validate``."""
    parser.add_argument(
        "--set",
        dest="values",
        action="append",
        default=[],
        metavar="NODE.INPUT=VALUE",
        help="set an input; NODE is an id, a title or a class (repeatable)",
    )
    parser.add_argument(
        "--seed",
        type=parse_seed,
        metavar="random|N",
        help="every seed input: a new random seed per run, or N (N+1, N+2… in a batch)",
    )


def add_object_info_option(parser: argparse.ArgumentParser) -> None:
    """``--object-info FILE``: a saved catalogue instead of the server's."""
    parser.add_argument(
        "--object-info",
        metavar="FILE",
        help="a saved /object_info (.json or .json.gz) instead of asking the server",
    )


def read_workflow(path: str) -> dict[str, JsonValue]:
    """The JSON object of a workflow file (UsageError if it is not one)."""
    try:
        data = loads(Path(path).read_bytes())
    except ValueError as error:
        raise UsageError(f"{path} is not JSON: {error}") from error
    if not isinstance(data, dict):
        raise UsageError(f"{path} does not hold a workflow (a JSON object)")
    return data


def load_workflow(data: Mapping[str, object], catalogue: Catalogue | None) -> Workflow:
    """A :class:`Workflow` of API-format or (with a catalogue) UI-format ``data``."""
    return Workflow.from_dict(data, catalogue=catalogue)


def node_labels(workflow: Workflow, catalogue: Catalogue | None) -> dict[str, str]:
    """Node id → what a progress bar calls it: its title, else its class's display name."""
    labels: dict[str, str] = {}
    for node_id in workflow.ids():
        node = workflow.node(node_id)
        label = node.title or node.class_type or node_id
        if not node.title and catalogue is not None and node.class_type in catalogue:
            label = catalogue.display_name(node.class_type or "")
        labels[node_id] = label
    return labels


def refuse(problems: Sequence[Problem], out: Output) -> ExitCode:
    """Tell why the workflow would be refused (stderr, or a JSON document); exit code 3."""
    if out.json:
        out.json_line({"valid": False, "problems": list(problems)})
    count = len(problems)
    print(
        f"error: the workflow would be refused: {count} problem{'s' if count != 1 else ''}",
        file=out.stderr,
    )
    for line in problem_lines(problems):
        print(line, file=out.stderr)
    return ExitCode.REFUSED


async def validate_command(ctx: Context) -> ExitCode:
    """``comfy-async validate``: check a workflow offline against a catalogue."""
    args, out = ctx.args, ctx.out
    data = read_workflow(args.workflow)
    catalogue = await ctx.catalogue(args.object_info, None)
    workflow = load_workflow(data, catalogue)
    apply_values(workflow, args.values)
    if args.seed is not None:
        args.seed.apply(workflow, 0)
    problems = workflow.validate(catalogue)
    if problems:
        return refuse(problems, out)
    outputs = workflow.output_nodes()
    if out.json:
        out.json_line({"valid": True, "problems": [], "nodes": len(workflow), "outputs": outputs})
    else:
        out.line(f"valid: {len(workflow)} nodes, outputs {', '.join(outputs) or 'none'}")
    return ExitCode.OK


async def convert_command(ctx: Context) -> ExitCode:
    """``comfy-async convert``: a UI-format workflow to the API format."""
    args, out = ctx.args, ctx.out
    data = read_workflow(args.workflow)
    if not is_ui_format(data):
        raise UsageError(f"{args.workflow} is already in the API format (no 'nodes' and 'links')")
    catalogue = await ctx.catalogue(args.object_info, None)
    workflow = Workflow.from_ui(data, catalogue)
    if args.output in (None, "-"):
        out.stdout.write(workflow.to_json(indent=True).decode() + "\n")
        return ExitCode.OK
    workflow.save(args.output)
    if out.json:
        out.json_line({"output": args.output, "nodes": len(workflow)})
    else:
        out.line(f"wrote {args.output} ({len(workflow)} nodes)")
    return ExitCode.OK


def register(subparsers: SubParsers, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``validate`` and ``convert`` to the command line."""
    validate = add_command(
        subparsers,
        "validate",
        parents,
        summary="check a workflow offline, as the server would",
        handler=validate_command,
        description="Check a workflow (API or UI format) against the node catalogue, offline.",
        examples=_VALIDATE_EXAMPLES,
    )
    validate.add_argument("workflow", metavar="WORKFLOW.json")
    add_object_info_option(validate)
    add_edit_options(validate)

    convert = add_command(
        subparsers,
        "convert",
        parents,
        summary="convert a UI-format workflow to the API format",
        handler=convert_command,
        description="Convert a workflow saved from the UI to the API format.",
        examples=_CONVERT_EXAMPLES,
    )
    convert.add_argument("workflow", metavar="UI.json")
    convert.add_argument(
        "-o", "--output", metavar="API.json", help="where to write it (default: stdout)"
    )
    add_object_info_option(convert)
