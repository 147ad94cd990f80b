"""``queue`` and ``interrupt``: the server's queue shown, cleared or trimmed; a prompt stopped.

``queue`` lists the running prompt(s) and the pending ones in the order the server will run
them; ``--clear`` drops every pending prompt, ``--delete ID…`` some of them (running prompts are
never touched: use ``jobs cancel`` or ``interrupt``); what it reports as deleted is what the
queue, read back, no longer holds, and an id that was not pending makes it exit 1. Ids may be
shortened to any unique prefix. ``interrupt ID`` stops that prompt if it is
the one running; ``interrupt`` alone stops whatever runs, whoever submitted it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from comfy_async.cli.failures import ExitCode
from comfy_async.cli.ids import match_prefix, resolve_prompt_ids
from comfy_async.cli.registry import add_command

if TYPE_CHECKING:
    import argparse

    from comfy_async.cli.registry import SubParsers
    from comfy_async.cli.session import Context
    from comfy_async.models.queue import QueueItem

__all__ = ["format_time", "interrupt_command", "queue_command", "register"]

_QUEUE_EXAMPLES = """\
examples:
  comfy-async queue
  comfy-async queue --json
  comfy-async queue --delete 5f0c…  8d2e…
  comfy-async queue --clear
"""


def format_time(epoch_ms: float | None) -> str:
    """Epoch milliseconds as local ``YYYY-MM-DD HH:MM:SS`` (``-`` when unknown)."""
    if epoch_ms is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch_ms / 1000))


def _item(item: QueueItem) -> dict[str, object]:
    return {
        "prompt_id": item.prompt_id,
        "number": item.number,
        "client_id": item.client_id,
        "create_time": item.create_time,
        "outputs": item.outputs_to_execute,
    }


async def queue_command(ctx: Context) -> ExitCode:
    """``comfy-async queue``: show the queue, or clear or trim its pending part."""
    args, out = ctx.args, ctx.out
    client = ctx.client()
    if args.delete:
        return await _delete(ctx, args.delete)
    if args.clear:
        await client.queue.clear()
        if out.json:
            out.json_line({"cleared": True})
        else:
            out.line("cleared the pending queue")
        return ExitCode.OK
    queue = await client.queue.get()
    running, pending = queue.queue_running, queue.pending_in_run_order
    if out.json:
        out.json_line(
            {"running": [_item(item) for item in running], "pending": [_item(i) for i in pending]}
        )
        return ExitCode.OK
    if not running and not pending:
        out.line("the queue is empty")
        return ExitCode.OK
    rows = [
        [
            out.style(state, "green" if state == "running" else "dim"),
            item.prompt_id,
            f"{item.number:g}",
            format_time(item.create_time),
            item.client_id or "-",
        ]
        for state, items in (("running", running), ("pending", pending))
        for item in items
    ]
    out.table(rows, ["STATE", "PROMPT ID", "NUMBER", "QUEUED", "CLIENT"])
    return ExitCode.OK


async def _delete(ctx: Context, given: list[str]) -> ExitCode:
    """Delete pending prompts by id or unique prefix; report what the queue shows was removed."""
    out, client = ctx.out, ctx.client()
    before = await client.queue.get()
    pending = [item.prompt_id for item in before.queue_pending]
    running = {item.prompt_id for item in before.queue_running}
    wanted: list[str] = []
    not_found: list[str] = []
    busy: list[str] = []
    for text in given:
        match = match_prefix(text, [*pending, *running])
        if match is None:
            not_found.append(text)
        elif match in running:
            busy.append(match)
        elif match not in wanted:
            wanted.append(match)
    if wanted:
        await client.queue.delete(wanted)
    after = {item.prompt_id for item in (await client.queue.get()).queue_pending}
    deleted = [prompt_id for prompt_id in wanted if prompt_id not in after]
    stayed = [prompt_id for prompt_id in wanted if prompt_id in after]
    if out.json:
        out.json_line(
            {"deleted": deleted, "not_found": not_found, "running": busy, "not_deleted": stayed}
        )
    else:
        if deleted:
            out.line(f"deleted {len(deleted)} pending prompt(s): {', '.join(deleted)}")
        for text in not_found:
            out.stderr.write(f"{text}: no pending prompt has this id\n")
        for prompt_id in busy:
            hint = f"comfy-async jobs cancel {prompt_id[:8]}"
            out.stderr.write(f"{prompt_id}: running, not deleted (use: {hint})\n")
        for prompt_id in stayed:
            out.stderr.write(f"{prompt_id}: still pending after the delete\n")
    return ExitCode.OK if len(deleted) == len(given) else ExitCode.FAILED


async def interrupt_command(ctx: Context) -> ExitCode:
    """``comfy-async interrupt [ID]``: stop one running prompt, or whatever runs."""
    args, out = ctx.args, ctx.out
    client = ctx.client()
    if args.prompt_id is not None:
        (args.prompt_id,) = await resolve_prompt_ids(client, [args.prompt_id])
    if args.prompt_id is not None and client.flavour == "cloud":
        # Comfy Cloud ignores the interrupt's body (protocol doc §8): cancel the job instead.
        await client.jobs.cancel(args.prompt_id)
    else:
        await client.queue.interrupt(args.prompt_id)
    if out.json:
        out.json_line({"interrupted": args.prompt_id})
    elif args.prompt_id is None:
        out.line("interrupted whatever was running")
    else:
        out.line(f"interrupted {args.prompt_id} (if it was running)")
    return ExitCode.OK


def register(subparsers: SubParsers, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``queue`` and ``interrupt`` to the command line."""
    parser = add_command(
        subparsers,
        "queue",
        parents,
        summary="show the queue, clear it, or delete pending prompts",
        handler=queue_command,
        description="Show the running and pending prompts (pending in run order).",
        examples=_QUEUE_EXAMPLES,
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--clear", action="store_true", help="drop every pending prompt")
    action.add_argument(
        "--delete", nargs="+", metavar="ID", help="drop these pending prompts (ids or prefixes)"
    )

    interrupt = add_command(
        subparsers,
        "interrupt",
        parents,
        summary="stop the running prompt",
        handler=interrupt_command,
        description=(
            "Stop prompt ID if it is the one running; without ID, stop whatever runs "
            "(whoever submitted it)."
        ),
    )
    interrupt.add_argument("prompt_id", nargs="?", metavar="ID")
