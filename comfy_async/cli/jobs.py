"""``jobs`` and ``history``: finished and running prompts listed, shown, cancelled or forgotten.

``jobs`` reads the jobs API (``/api/jobs``: status filters, newest first), ``jobs show ID`` one
job with its outputs and error, ``jobs cancel ID…`` cancels jobs whether they run or wait (only
those jobs, never another client's). ``history`` reads ``/history`` (servers older than the jobs
API have only this), ``history show ID`` one entry, ``history --clear`` forgets every entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from comfy_async.cli.failures import ExitCode
from comfy_async.cli.ids import resolve_prompt_ids
from comfy_async.cli.queue_commands import format_time
from comfy_async.cli.registry import add_command
from comfy_async.models.jobs import JobStatus

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from comfy_async.cli.output import Output
    from comfy_async.cli.registry import SubParsers
    from comfy_async.cli.session import Context
    from comfy_async.models.files import OutputFile
    from comfy_async.models.history import HistoryRecord

__all__ = [
    "history_command",
    "history_show_command",
    "jobs_cancel_command",
    "jobs_command",
    "jobs_show_command",
    "register",
]

_JOBS_EXAMPLES = """\
examples:
  comfy-async jobs                          # the 20 newest jobs
  comfy-async jobs --status failed --limit 5
  comfy-async jobs show 5f0c…               # outputs, error, times
  comfy-async jobs cancel 5f0c… 8d2e…       # running or pending
  comfy-async jobs --json | jq '.jobs[].id'
"""

_HISTORY_EXAMPLES = """\
examples:
  comfy-async history
  comfy-async history show 5f0c…
  comfy-async history --clear
"""

_STATUS_STYLE = {"completed": "green", "failed": "red", "in_progress": "cyan", "success": "green"}


def _duration(start: float | None, end: float | None) -> str:
    return f"{(end - start) / 1000:.1f} s" if start is not None and end is not None else "-"


def _files(out: Output, files: Sequence[OutputFile]) -> None:
    for file in files:
        where = f"{file.subfolder}/{file.filename}" if file.subfolder else file.filename
        out.line(f"  {where}  ({file.type}, node {file.node_id}, {file.kind})")


async def jobs_command(ctx: Context) -> ExitCode:
    """``comfy-async jobs``: one page of jobs, newest first, filtered by status."""
    args, out = ctx.args, ctx.out
    statuses = [item for text in args.status or () for item in text.split(",") if item]
    page = await ctx.client().jobs.list(
        status=statuses or None,
        sort_by=args.sort,
        sort_order="asc" if args.oldest_first else None,
        limit=args.limit,
        offset=args.offset,
    )
    if out.json:
        out.json_line(page)
        return ExitCode.OK
    if not page.jobs:
        out.line("no jobs")
        return ExitCode.OK
    rows = [
        [
            job.id,
            out.style(job.status, _STATUS_STYLE.get(job.status, "dim")),
            format_time(job.create_time),
            _duration(job.execution_start_time, job.execution_end_time),
            str(job.outputs_count or 0),
        ]
        for job in page.jobs
    ]
    out.table(rows, ["ID", "STATUS", "CREATED", "DURATION", "OUTPUTS"])
    if page.pagination.has_more:
        out.note(f"more jobs: --offset {page.pagination.offset + len(page.jobs)}")
    return ExitCode.OK


async def jobs_show_command(ctx: Context) -> ExitCode:
    """``comfy-async jobs show ID``: one job, its outputs and its error."""
    args, out = ctx.args, ctx.out
    client = ctx.client()
    (args.job_id,) = await resolve_prompt_ids(client, [args.job_id])
    job = await client.jobs.get(args.job_id)
    if job is None:
        out.stderr.write(f"error: no job {args.job_id} on the server\n")
        return ExitCode.FAILED
    if out.json:
        out.json_line(job)
        return ExitCode.OK
    out.line(f"job {job.id}: {out.style(job.status, _STATUS_STYLE.get(job.status, 'dim'))}")
    out.line(f"created   {format_time(job.create_time)}")
    out.line(f"started   {format_time(job.execution_start_time)}")
    finished = format_time(job.execution_end_time)
    out.line(
        f"finished  {finished}  ({_duration(job.execution_start_time, job.execution_end_time)})"
    )
    files = job.files()
    out.line(f"outputs   {len(files)}")
    _files(out, files)
    error = job.execution_error
    if error is not None:
        message = error.exception_message.strip().splitlines()[:1]
        out.line(
            f"error     node {error.node_id} ({error.node_type}) raised {error.exception_type}"
            + (f": {message[0]}" if message else "")
        )
    return ExitCode.OK


async def jobs_cancel_command(ctx: Context) -> ExitCode:
    """``comfy-async jobs cancel ID…``: cancel these jobs, running or pending."""
    args, out = ctx.args, ctx.out
    client = ctx.client()
    job_ids = await resolve_prompt_ids(client, args.job_ids)
    done = {job_id: await client.jobs.cancel(job_id) for job_id in job_ids}
    cancelled = [job_id for job_id, ok in done.items() if ok]
    missed = [job_id for job_id, ok in done.items() if not ok]
    if out.json:
        out.json_line({"cancelled": cancelled, "not_cancelled": missed})
    else:
        for job_id in cancelled:
            out.line(f"cancelled {job_id}")
        for job_id in missed:
            out.stderr.write(f"{job_id}: nothing to cancel (finished or unknown)\n")
    return ExitCode.OK if not missed else ExitCode.FAILED


def _times(record: HistoryRecord) -> tuple[float | None, float | None]:
    status = record.status
    if status is None:
        return None, None
    start = (status.last_message("execution_start") or {}).get("timestamp")
    end = None
    for name in ("execution_success", "execution_error", "execution_interrupted"):
        end = end or (status.last_message(name) or {}).get("timestamp")
    return start, end


def _outcome(record: HistoryRecord) -> str:
    if record.interrupted:
        return "interrupted"
    return record.status_str or "unknown"


async def history_command(ctx: Context) -> ExitCode:
    """``comfy-async history``: the newest finished prompts (or ``--clear`` them all)."""
    args, out = ctx.args, ctx.out
    client = ctx.client()
    if args.clear:
        await client.history.clear()
        if out.json:
            out.json_line({"cleared": True})
        else:
            out.line("cleared the history")
        return ExitCode.OK
    entries = await client.history.list(max_items=args.limit)
    # Newest first, as `jobs` lists them.
    ordered = sorted(entries.items(), key=lambda item: _times(item[1])[1] or 0, reverse=True)
    if out.json:
        out.json_line(
            {
                "history": [
                    {"prompt_id": prompt_id, "status": _outcome(record), **_record_json(record)}
                    for prompt_id, record in ordered
                ]
            }
        )
        return ExitCode.OK
    if not ordered:
        out.line("the history is empty")
        return ExitCode.OK
    rows = []
    for prompt_id, record in ordered:
        start, end = _times(record)
        status = _outcome(record)
        rows.append(
            [
                prompt_id,
                out.style(status, _STATUS_STYLE.get(status, "red")),
                format_time(end),
                _duration(start, end),
                str(len(record.files())),
            ]
        )
    out.table(rows, ["PROMPT ID", "STATUS", "FINISHED", "DURATION", "FILES"])
    return ExitCode.OK


def _record_json(record: HistoryRecord) -> dict[str, object]:
    start, end = _times(record)
    error = record.execution_error
    return {
        "started": start,
        "finished": end,
        "outputs": record.outputs,
        "error": error,
    }


async def history_show_command(ctx: Context) -> ExitCode:
    """``comfy-async history show ID``: one finished prompt, its outputs and error."""
    args, out = ctx.args, ctx.out
    client = ctx.client()
    (args.prompt_id,) = await resolve_prompt_ids(client, [args.prompt_id])
    record = await client.history.get(args.prompt_id)
    if record is None:
        out.stderr.write(f"error: no history entry for {args.prompt_id} (not finished?)\n")
        return ExitCode.FAILED
    status = _outcome(record)
    if out.json:
        out.json_line({"prompt_id": args.prompt_id, "status": status, **_record_json(record)})
        return ExitCode.OK
    start, end = _times(record)
    out.line(f"prompt {args.prompt_id}: {out.style(status, _STATUS_STYLE.get(status, 'red'))}")
    out.line(f"finished  {format_time(end)}  ({_duration(start, end)})")
    files = record.files()
    out.line(f"files     {len(files)}")
    _files(out, files)
    error = record.execution_error
    if error is not None:
        out.line(
            f"error     node {error.node_id} ({error.node_type}) raised {error.exception_type}: "
            f"{error.exception_message.strip()}"
        )
    return ExitCode.OK


def register(subparsers: SubParsers, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``jobs`` and ``history`` to the command line."""
    jobs = add_command(
        subparsers,
        "jobs",
        parents,
        summary="list jobs, show one, or cancel some",
        handler=jobs_command,
        description="List the server's jobs (the jobs API), newest first.",
        examples=_JOBS_EXAMPLES,
    )
    jobs.add_argument(
        "--status",
        action="append",
        metavar="STATUS",
        help=f"only these statuses ({', '.join(JobStatus)}; repeatable or comma-separated)",
    )
    jobs.add_argument("--limit", type=int, default=20, metavar="N", help="at most N (default 20)")
    jobs.add_argument("--offset", type=int, metavar="N", help="skip the first N")
    jobs.add_argument("--sort", choices=("created", "duration"), help="sort by (default created)")
    jobs.add_argument("--oldest-first", action="store_true", help="ascending order")
    actions = jobs.add_subparsers(title="actions", metavar="ACTION")
    show = actions.add_parser("show", parents=parents, help="one job, its outputs and error")
    show.add_argument("job_id", metavar="ID")
    show.set_defaults(handler=jobs_show_command)
    cancel = actions.add_parser("cancel", parents=parents, help="cancel jobs (running or pending)")
    cancel.add_argument("job_ids", nargs="+", metavar="ID")
    cancel.set_defaults(handler=jobs_cancel_command)

    history = add_command(
        subparsers,
        "history",
        parents,
        summary="list finished prompts, show one, or clear the history",
        handler=history_command,
        description="List the newest finished prompts, newest first (as jobs lists them).",
        examples=_HISTORY_EXAMPLES,
    )
    history.add_argument("--limit", type=int, default=20, metavar="N", help="the newest N")
    history.add_argument("--clear", action="store_true", help="delete every entry")
    history_actions = history.add_subparsers(title="actions", metavar="ACTION")
    entry = history_actions.add_parser("show", parents=parents, help="one entry")
    entry.add_argument("prompt_id", metavar="ID")
    entry.set_defaults(handler=history_show_command)
