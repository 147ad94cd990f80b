"""``manager``: ComfyUI-Manager on the server: install node packs and models, its state, reboot.

``manager install-node URL`` (or ``--registry ID``) and ``manager install-model URL --folder F
--name NAME`` queue the install, follow the Manager's queue to the end with one progress line per
change on stderr, and print the outcome; a failed install exits 1 with the Manager's message.
``manager status`` shows the Manager's version, its queue and the installed node packs;
``manager reboot`` restarts the server (new node packs load then). URLs other than ``http(s)``,
model names with a folder part and folders that climb out are refused before anything is sent
(exit 2). A server without the Manager exits 1 with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from comfy_async._transport.rest.comfyui_manager import (
    check_install_url,
    check_model_file_name,
    check_model_folder,
)
from comfy_async.cli.failures import ExitCode, UsageError
from comfy_async.cli.registry import add_command
from comfy_async.errors import ConfigurationError, ManagerTaskError, UnsafeError

if TYPE_CHECKING:
    import argparse

    from comfy_async.cli.registry import SubParsers
    from comfy_async.cli.session import Context
    from comfy_async.client import ComfyClient
    from comfy_async.models import ManagerProgress, ManagerTicket

__all__ = [
    "install_model_command",
    "install_node_command",
    "reboot_command",
    "register",
    "status_command",
]

_EXAMPLES = """\
examples:
  comfy-async manager install-node https://github.com/owner/ComfyUI-Some-Pack
  comfy-async manager install-node --registry comfyui-impact-pack --pack-version latest
  comfy-async manager install-model https://huggingface.co/org/repo/resolve/main/m.safetensors \\
      --folder checkpoints --name m.safetensors
  comfy-async manager status
  comfy-async manager reboot
"""


def _step_line(step: ManagerProgress) -> str:
    counts = f"{step.done}/{step.total} done"
    if step.record is None:
        return f"{step.ticket.target}: {step.state} ({counts})"
    outcome = step.record.outcome or "finished"
    return f"{step.ticket.target}: {step.state}: {outcome} ({counts})"


async def _follow(ctx: Context, client: ComfyClient, ticket: ManagerTicket, what: str) -> ExitCode:
    """Follow one task to its end, showing each change; the exit code of its outcome.

    ``client`` is the session that queued the task: the Manager counts tasks per client id.
    """
    out = ctx.out
    if not out.json:
        out.note(f"queued {ticket.kind} of {ticket.target} (task {ticket.task_id})")
    final = None
    async for step in client.manager.follow(ticket):
        final = step
        if out.json:
            out.json_line(
                {
                    "task_id": ticket.task_id,
                    "kind": ticket.kind,
                    "target": ticket.target,
                    "state": step.state,
                    "done": step.done,
                    "total": step.total,
                }
            )
        elif out.progress != "none":
            out.note(_step_line(step))
    assert final is not None
    assert final.record is not None
    record = final.record
    if out.json:
        out.json_line(
            {
                "task_id": ticket.task_id,
                "kind": ticket.kind,
                "target": ticket.target,
                "status": record.outcome,
                "succeeded": record.succeeded,
                "messages": list(record.messages),
            }
        )
    if not record.succeeded:
        raise ManagerTaskError(ticket.task_id, ticket.kind, record.outcome, record.messages)
    if not out.json:
        if record.outcome in {"skip", "skipped"}:
            out.line(f"already installed: {ticket.target}")
        else:
            out.line(f"installed {ticket.target}{what}")
    return ExitCode.OK


async def install_node_command(ctx: Context) -> ExitCode:
    """``comfy-async manager install-node URL | --registry ID``."""
    args = ctx.args
    if (args.git_url is None) == (args.registry is None):
        raise UsageError("give a git URL or --registry ID (one of them)")
    client = ctx.client()
    try:
        if args.git_url is not None:
            check_install_url(args.git_url)
            ticket = await client.manager.install_node(args.git_url)
        else:
            ticket = await client.manager.install_registry_node(args.registry, args.pack_version)
    except (UnsafeError, ConfigurationError) as error:
        raise UsageError(str(error)) from None
    hint = " (its nodes load when the server restarts: comfy-async manager reboot)"
    return await _follow(ctx, client, ticket, hint)


async def install_model_command(ctx: Context) -> ExitCode:
    """``comfy-async manager install-model URL --folder FOLDER --name NAME``."""
    args = ctx.args
    try:
        check_install_url(args.model_url)
        check_model_file_name(args.name)
        check_model_folder(args.folder)
    except UnsafeError as error:
        raise UsageError(str(error)) from None
    client = ctx.client()
    ticket = await client.manager.install_model(
        args.model_url, folder=args.folder, name=args.name, base=args.base
    )
    return await _follow(ctx, client, ticket, f" as {args.folder}/{args.name}")


async def status_command(ctx: Context) -> ExitCode:
    """``comfy-async manager status``: version, queue counts, installed node packs."""
    out, client = ctx.out, ctx.client()
    info = await client.manager.info()
    queue = await client.manager.status()
    packs = await client.manager.installed()
    if out.json:
        out.json_line(
            {
                "version": info.version,
                "flags": info.flags,
                "queue": {
                    "pending": queue.pending,
                    "running": queue.in_progress_count,
                    "done": queue.done_count,
                    "processing": queue.is_processing,
                },
                "installed": [
                    {
                        "name": pack.name,
                        "version": pack.version,
                        "cnr_id": pack.cnr_id,
                        "aux_id": pack.aux_id,
                        "enabled": pack.enabled,
                    }
                    for pack in packs
                ],
            }
        )
        return ExitCode.OK
    out.line(f"ComfyUI-Manager {info.version}")
    worker = "working" if queue.is_processing else "idle"
    out.line(
        f"queue: {queue.pending} pending, {queue.in_progress_count} running, "
        f"{queue.done_count} done ({worker})"
    )
    if not packs:
        out.line("no node packs installed")
        return ExitCode.OK
    rows = [
        [
            pack.name,
            pack.version or "-",
            pack.cnr_id or pack.aux_id or "-",
            "yes" if pack.enabled else out.style("no", "dim"),
        ]
        for pack in packs
    ]
    out.table(rows, ["PACK", "VERSION", "SOURCE", "ENABLED"])
    return ExitCode.OK


async def reboot_command(ctx: Context) -> ExitCode:
    """``comfy-async manager reboot``: restart the server through the Manager."""
    await ctx.client().manager.reboot()
    if ctx.out.json:
        ctx.out.json_line({"rebooting": True})
    else:
        ctx.out.line("the server is restarting")
    return ExitCode.OK


async def _no_action(ctx: Context) -> ExitCode:
    raise UsageError("manager needs an action: install-node, install-model, status or reboot")


def register(subparsers: SubParsers, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``manager`` and its actions to the command line."""
    manager = add_command(
        subparsers,
        "manager",
        parents,
        summary="install node packs and models with ComfyUI-Manager, show it, reboot",
        handler=_no_action,
        description=(
            "Talk to ComfyUI-Manager 4 on the server (started with --enable-manager): queue "
            "installs and follow them to the end, show its state, restart the server."
        ),
        examples=_EXAMPLES,
    )
    actions = manager.add_subparsers(title="actions", metavar="ACTION")
    node = add_command(
        actions,
        "install-node",
        parents,
        summary="install a node pack from a git URL or the registry",
        handler=install_node_command,
    )
    # Not "url": that is the server option's destination.
    node.add_argument("git_url", nargs="?", metavar="URL", help="the pack's http(s) git URL")
    node.add_argument("--registry", metavar="ID", help="a registry pack id instead of a URL")
    node.add_argument(
        "--pack-version",
        default="latest",
        metavar="VERSION",
        help="with --registry: latest, nightly or a version number",
    )
    model = add_command(
        actions,
        "install-model",
        parents,
        summary="download a model into a model folder",
        handler=install_model_command,
    )
    model.add_argument("model_url", metavar="URL", help="the model's http(s) URL")
    model.add_argument("--folder", required=True, help="the model folder (checkpoints, loras…)")
    model.add_argument("--name", required=True, help="the file name to save as")
    model.add_argument("--base", default="", help="the base model (SD1.x, SDXL…), informative")
    add_command(
        actions,
        "status",
        parents,
        summary="the Manager's version, queue and installed node packs",
        handler=status_command,
    )
    add_command(
        actions,
        "reboot",
        parents,
        summary="restart the server (new node packs load then)",
        handler=reboot_command,
    )
