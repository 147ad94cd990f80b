"""``watch``: a live monitor of the server's events, one line each, previews saved to a folder.

Without ``--prompt`` it prints what the session's WebSocket receives until Ctrl-C (or
``--timeout``): queue status, broadcasts (TEXT frames, previews and progress of prompts
submitted without a client id) and, on Comfy Cloud, the events of every job of the account. A
local ComfyUI sends a prompt's own events only to the client that submitted it (protocol doc
§3.2), so ``--prompt ID`` follows one prompt to its end instead: what reaches this client, and
its outcome learnt over HTTP; the exit code is then the prompt's (0 success, 1 failure).
With ``--json`` each event is one JSON line (image bytes replaced by their size).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgspec

from comfy_async.cli.failures import ExitCode, describe, exit_code_for
from comfy_async.cli.ids import resolve_prompt_ids
from comfy_async.cli.previews import write_preview
from comfy_async.cli.registry import add_command
from comfy_async.cli.session import CLI_OPTIONS
from comfy_async.config import ReconcilePolicy
from comfy_async.errors import ComfyError
from comfy_async.events import (
    Executed,
    Executing,
    ExecutionCached,
    ExecutionFailed,
    ExecutionInterrupted,
    FeatureFlags,
    JobReconciled,
    Logs,
    PreviewImage,
    Progress,
    ProgressState,
    ProgressText,
    Reconnected,
    Status,
)
from comfy_async.models.files import output_files

if TYPE_CHECKING:
    import argparse
    from collections.abc import AsyncIterable

    from comfy_async.cli.output import Output
    from comfy_async.cli.registry import SubParsers
    from comfy_async.cli.session import Context
    from comfy_async.events import Event

__all__ = ["FOLLOW_OPTIONS", "EventPrinter", "event_details", "register", "watch_command"]

FOLLOW_OPTIONS: Final = CLI_OPTIONS.replace(
    reconcile=ReconcilePolicy(silent_after=1.0, max_silent_after=2.0)
)
"""Session options of ``watch --prompt``: the prompt is looked up when silent for 1 to 2 s."""
_EXAMPLES = """\
examples:
  comfy-async watch                             # until Ctrl-C
  comfy-async watch --previews previews/        # every preview frame saved
  comfy-async watch --prompt 5f0c…              # one prompt, to its outcome
  comfy-async watch --json --timeout 60 > events.jsonl
"""


def event_details(event: Event) -> str:
    """What one line says about ``event`` after its time, type and prompt."""
    match event:
        case Status(sid=sid):
            return f"queue_remaining={event.queue_remaining}" + (f" sid={sid}" if sid else "")
        case ExecutionCached(nodes=nodes):
            return f"cached={','.join(nodes)}" if nodes else ""
        case Executing(node=None):
            return "finished"
        case Executing(node=str(node)):
            return f"node={node}"
        case Executed(node=node, output=output):
            names = [file.filename for file in output_files({node: output or {}})]
            texts = (output or {}).get("text")
            extra = f" files={','.join(names)}" if names else ""
            extra += f" text={texts!r:.80}" if texts else ""
            return f"node={node}{extra}"
        case Progress():
            return f"node={event.node} step {event.value:g}/{event.max:g}"
        case ProgressState(nodes=nodes):
            states: dict[str, int] = {}
            for entry in nodes.values():
                states[entry.state] = states.get(entry.state, 0) + 1
            return " ".join(f"{state}={count}" for state, count in sorted(states.items()))
        case ExecutionFailed():
            if event.is_blocked:
                return f"node={event.node_id} blocked: {event.exception_message}"
            message = event.exception_message.strip().splitlines()[:1]
            return f"node={event.node_id} {event.exception_type}: {''.join(message)}"
        case ExecutionInterrupted():
            return f"node={event.node_id}"
        case PreviewImage():
            return f"node={event.node_id} {event.mime} {len(event.image)} bytes"
        case ProgressText():
            return f"node={event.node_id} {event.text!r:.120}"
        case Logs(entries=entries):
            return " | ".join(entry.m.rstrip() for entry in entries)[:200]
        case Reconnected():
            return f"attempt={event.attempt} downtime={event.downtime:.1f}s"
        case FeatureFlags(flags=flags):
            return " ".join(sorted(flags))
        case JobReconciled():
            return f"status={event.status} (learnt over HTTP: {event.source})"
        case _:
            return f"{getattr(event, 'data', '')!r:.120}"


class EventPrinter:
    """Prints events one per line (or JSON line), saving previews to a folder if given."""

    def __init__(self, out: Output, previews: Path | None) -> None:
        self.out = out
        self.previews = previews
        self.saved = 0

    async def save(self, event: PreviewImage) -> Path | None:
        """Write the preview's image; return where (``None`` without a folder)."""
        if self.previews is None:
            return None
        self.saved += 1
        stem = f"{self.saved:05d}-{(event.prompt_id or 'none')[:8]}"
        return await write_preview(self.previews, stem, event)

    async def show(self, event: Event) -> None:
        """Print one event."""
        now = time.time()
        path = await self.save(event) if isinstance(event, PreviewImage) else None
        if self.out.json:
            fields = {
                key: len(value) if isinstance(value, memoryview) else value
                for key, value in msgspec.structs.asdict(event).items()
            }
            record = {"time": now, "type": event.type, "prompt_id": event.prompt_id, **fields}
            if path is not None:
                record["saved"] = str(path)
            self.out.json_line(record)
            return
        clock = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
        prompt = (event.prompt_id or "-")[:8]
        details = event_details(event) + (f" → {path}" if path is not None else "")
        kind = self.out.style(f"{event.type:<21}", "cyan")
        self.out.line(f"{clock} {kind} {prompt:<8} {details}".rstrip())


async def _print_all(
    source: AsyncIterable[Event], printer: EventPrinter, timeout: float | None
) -> None:
    try:
        async with asyncio.timeout(timeout) as limit:
            async for event in source:
                await printer.show(event)
    except TimeoutError:
        if not limit.expired():
            raise


async def watch_command(ctx: Context) -> ExitCode:
    """``comfy-async watch``: print the server's events until Ctrl-C, or one prompt's."""
    args, out = ctx.args, ctx.out
    # Another client's prompt sends this one no events (§3.2): its end is learnt over HTTP.
    client = ctx.client(options=FOLLOW_OPTIONS if args.prompt else CLI_OPTIONS)
    printer = EventPrinter(out, Path(args.previews) if args.previews else None)
    if args.prompt is None:
        async with client.events() as tap:  # subscribed first: the socket's first frames too
            await client.connect()
            out.note(f"watching {client.base_url} (Ctrl-C to stop)")
            await _print_all(tap, printer, args.timeout)
        return ExitCode.OK
    await client.connect()
    (args.prompt,) = await resolve_prompt_ids(client, [args.prompt])
    job = await client.attach(args.prompt)
    out.note(f"watching prompt {args.prompt} on {client.base_url}")
    await _print_all(job, printer, args.timeout)
    if not job.done():
        return ExitCode.OK  # --timeout passed first
    try:
        await job.result()
    except ComfyError as error:
        for line in describe(error, verbose=out.verbose > 0, secrets=out.secrets):
            out.stderr.write(line + "\n")
        return exit_code_for(error)
    out.note(f"prompt {args.prompt} succeeded")
    return ExitCode.OK


def register(subparsers: SubParsers, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``watch`` to the command line."""
    parser = add_command(
        subparsers,
        "watch",
        parents,
        summary="print the events this client receives (or follow one prompt), one line each",
        handler=watch_command,
        description=(
            "Print the events this client receives, one line each, until Ctrl-C. A local "
            "ComfyUI sends a prompt's progress, previews and outputs only to the client that "
            "submitted it, so from here you see queue status lines and broadcasts, not other "
            "clients' jobs (Comfy Cloud broadcasts every job of the account to each of its "
            "sockets). To follow a prompt someone else submitted, use --prompt ID: it is "
            "followed to its outcome, learnt over HTTP."
        ),
        examples=_EXAMPLES,
    )
    parser.add_argument("--previews", metavar="DIR", help="save every preview frame in DIR")
    parser.add_argument(
        "--prompt", metavar="ID", help="follow this prompt (id or unique prefix) until it ends"
    )
    parser.add_argument(
        "--timeout", type=float, metavar="S", help="stop after S seconds (exit code 0)"
    )
