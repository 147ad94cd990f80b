"""``stats``, ``free``, ``nodes`` and ``models``: what the server is, has, and can run.

``stats`` shows versions, RAM and devices; ``free`` asks the server to unload models and free
memory (applied between prompts). ``nodes`` searches the node catalogue (name, display name,
category, aliases), or shows one class's inputs with their kinds, defaults, ranges and choices
and its outputs; it reads the server's catalogue or a saved ``--object-info`` file.
``models`` lists the model folders, or the files of one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from comfy_async._graph.node_schema import (
    BooleanInput,
    ComboInput,
    FloatInput,
    IntInput,
    LinkInput,
    RawInput,
    StringInput,
)
from comfy_async.cli.failures import ExitCode
from comfy_async.cli.registry import add_command
from comfy_async.cli.workflows import add_object_info_option

if TYPE_CHECKING:
    import argparse

    from comfy_async.catalogue import Catalogue, NodeInput, NodeSchema
    from comfy_async.cli.output import Output
    from comfy_async.cli.registry import SubParsers
    from comfy_async.cli.session import Context

__all__ = [
    "describe_input",
    "free_command",
    "input_json",
    "models_command",
    "nodes_command",
    "register",
    "stats_command",
]

_SHOWN_OPTIONS = 8
_NODES_EXAMPLES = """\
examples:
  comfy-async nodes                      # every class: name, display name, category
  comfy-async nodes upscale              # search names, display names, categories, aliases
  comfy-async nodes KSampler             # one class: inputs (kind, default, range), outputs
  comfy-async nodes --category loaders
  comfy-async nodes KSampler --object-info object_info.json --json
"""


def _gib(value: float | None) -> str:
    return "?" if value is None else f"{value / 2**30:.1f} GiB"


async def stats_command(ctx: Context) -> ExitCode:
    """``comfy-async stats``: versions, RAM and devices."""
    out = ctx.out
    stats = await ctx.client().system.stats()
    if out.json:
        out.json_line(stats)
        return ExitCode.OK
    system = stats.system
    versions = [f"ComfyUI {system.comfyui_version or '?'}", f"Python {system.python_version}"]
    if system.pytorch_version:
        versions.append(f"PyTorch {system.pytorch_version}")
    out.line(" · ".join([*versions, system.os]))
    out.line(f"RAM     {_gib(system.ram_free)} free of {_gib(system.ram_total)}")
    for device in stats.devices:
        out.line(
            f"device  {device.name} ({device.type})  "
            f"VRAM {_gib(device.vram_free)} free of {_gib(device.vram_total)}"
        )
    return ExitCode.OK


async def free_command(ctx: Context) -> ExitCode:
    """``comfy-async free``: unload models and/or free memory."""
    args, out = ctx.args, ctx.out
    both = not (args.unload_models or args.free_memory)
    unload, free = args.unload_models or both, args.free_memory or both
    await ctx.client().system.free(unload_models=unload, free_memory=free)
    if out.json:
        out.json_line({"unload_models": unload, "free_memory": free})
    else:
        done = " and ".join(
            text for text, asked in (("unload models", unload), ("free memory", free)) if asked
        )
        out.line(f"asked the server to {done} (done between prompts)")
    return ExitCode.OK


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:g}"  # seeds reach 2**64 - 1


def _range(spec: IntInput | FloatInput) -> str:
    low, high = _number(spec.min), _number(spec.max)
    text = f"{low}…{high}" if low or high else ""
    if spec.step is not None:
        text += f" step {_number(spec.step)}"
    return text.strip()


def describe_input(spec: NodeInput) -> tuple[str, str]:
    """The kind of an input (``INT``, ``COMBO``, a link type…) and a line about its values."""
    notes: list[str] = []
    if isinstance(spec, LinkInput):
        return spec.type, "link"
    if isinstance(spec, RawInput):
        return spec.type or "?", "dynamic" if spec.is_dynamic else "raw"
    if spec.default is not None:
        notes.append(f"default {spec.default!r}")
    if isinstance(spec, IntInput | FloatInput):
        span = _range(spec)
        if span:
            notes.append(span)
    if isinstance(spec, StringInput) and spec.multiline:
        notes.append("multiline")
    if isinstance(spec, BooleanInput) and spec.label_on:
        notes.append(f"{spec.label_on}/{spec.label_off}")
    if isinstance(spec, ComboInput):
        if spec.options is None:
            notes.append("choices listed by the UI")
        else:
            shown = ", ".join(str(option) for option in spec.options[:_SHOWN_OPTIONS])
            more = len(spec.options) - _SHOWN_OPTIONS
            suffix = f", … ({len(spec.options)} in all)" if more > 0 else ""
            notes.append(f"{len(spec.options)} choices: {shown}{suffix}")
        if spec.upload:
            notes.append(f"{spec.upload} upload")
    if getattr(spec, "control_after_generate", False):
        notes.append("control after generate")
    if spec.force_input:
        notes.append("socket only")
    return spec.kind, "; ".join(notes)


def input_json(spec: NodeInput) -> dict[str, object]:
    """One input as JSON: name, kind, required, and whatever its kind says about values."""
    data: dict[str, object] = {"name": spec.name, "kind": spec.kind, "required": spec.required}
    if isinstance(spec, LinkInput | RawInput):
        data["type"] = spec.type
    for key in ("default", "min", "max", "step", "options", "multiline", "upload"):
        if hasattr(spec, key):
            data[key] = getattr(spec, key)
    if spec.tooltip:
        data["tooltip"] = spec.tooltip
    return data


def _show(out: Output, schema: NodeSchema) -> None:
    if out.json:
        out.json_line(
            {
                "name": schema.name,
                "display_name": schema.display_name,
                "category": schema.category,
                "description": schema.description,
                "output_node": schema.output_node,
                "inputs": [input_json(spec) for spec in schema.inputs.values()],
                "outputs": [
                    {"index": o.index, "type": o.type, "name": o.name, "is_list": o.is_list}
                    for o in schema.outputs
                ],
            }
        )
        return
    flags = " · output node" if schema.output_node else ""
    out.line(
        out.style(schema.name, "bold") + f"  ({schema.display_name}; {schema.category}{flags})"
    )
    if schema.description:
        out.line(f"  {schema.description}")
    out.line("inputs:")
    rows = []
    for spec in schema.inputs.values():
        kind, notes = describe_input(spec)
        rows.append([f"  {spec.name}", kind, "required" if spec.required else "optional", notes])
    out.table(rows or [["  (none)"]])
    out.line("outputs:")
    out.table([[f"  {o.index}", o.type, o.name] for o in schema.outputs] or [["  (none)"]])


def _listing(out: Output, catalogue: Catalogue, names: list[str]) -> None:
    if out.json:
        out.json_line(
            [
                {
                    "name": name,
                    "display_name": catalogue.display_name(name),
                    "category": catalogue.info(name).category,
                }
                for name in names
            ]
        )
        return
    rows = [[name, catalogue.display_name(name), catalogue.info(name).category] for name in names]
    out.table(rows, ["CLASS", "DISPLAY NAME", "CATEGORY"])


async def nodes_command(ctx: Context) -> ExitCode:
    """``comfy-async nodes [CLASS]``: search the catalogue, or show one class."""
    args, out = ctx.args, ctx.out
    catalogue = await ctx.catalogue(args.object_info, None)
    text = args.query or ""
    if text in catalogue and not args.search:
        _show(out, catalogue[text])
        return ExitCode.OK
    names = catalogue.search(text, category=args.category)
    if not names:
        out.stderr.write(f"error: no node class matches {text!r}\n")
        return ExitCode.FAILED
    _listing(out, catalogue, names)
    return ExitCode.OK


async def models_command(ctx: Context) -> ExitCode:
    """``comfy-async models [FOLDER]``: the model folders, or one folder's files."""
    args, out = ctx.args, ctx.out
    client = ctx.client()
    if args.folder is None:
        folders = [folder.name for folder in await client.models.folders()]
        if out.json:
            out.json_line(folders)
        else:
            for name in folders:
                out.line(name)
        return ExitCode.OK
    files = [file.name for file in await client.models.files(args.folder)]
    if out.json:
        out.json_line(files)
    elif not files:
        out.note(f"no files in {args.folder}")
    else:
        for name in files:
            out.line(name)
    return ExitCode.OK


def register(subparsers: SubParsers, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``stats``, ``free``, ``nodes`` and ``models`` to the command line."""
    add_command(
        subparsers,
        "stats",
        parents,
        summary="versions, RAM and devices of the server",
        handler=stats_command,
    )

    free = add_command(
        subparsers,
        "free",
        parents,
        summary="unload models and free memory",
        handler=free_command,
        description="Ask the server to unload models and free memory (both unless one is named).",
    )
    free.add_argument("--unload-models", action="store_true", help="only unload the models")
    free.add_argument("--free-memory", action="store_true", help="only free cached memory")

    nodes = add_command(
        subparsers,
        "nodes",
        parents,
        summary="search the node catalogue, or show one node's inputs",
        handler=nodes_command,
        description="Search the node classes, or show one class: inputs and outputs.",
        examples=_NODES_EXAMPLES,
    )
    nodes.add_argument("query", nargs="?", metavar="CLASS", help="a class name, or text to find")
    nodes.add_argument("--search", action="store_true", help="search even for a class name")
    nodes.add_argument("--category", help="only this category (and those below it)")
    add_object_info_option(nodes)

    models = add_command(
        subparsers,
        "models",
        parents,
        summary="list model folders, or the files of one",
        handler=models_command,
        description="List the model folders (checkpoints, loras…), or the files of FOLDER.",
    )
    models.add_argument("folder", nargs="?", metavar="FOLDER")
