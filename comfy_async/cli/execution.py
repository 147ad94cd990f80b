"""Running prepared workflows with live progress: one job or a batch, previews and outputs saved.

:func:`execute` submits the workflows of a :class:`RunPlan` through the library's batch runner
(at most ``concurrency`` in flight, outcomes as jobs end), follows each job's events into the
progress view, writes every preview frame to the previews folder if one is given, saves each
successful job's outputs under safe names and reports each job as it ends (a JSON line with
``--json``). The exit code is the one of the first failed run, in submission order.

Ctrl-C (the command's task being cancelled), or any failure that stops the run early, cancels
every unfinished job of the run on the server and waits for the server to confirm (a few
seconds at most) before the error goes on: nothing the command started is left running.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit

from comfy_async._graph.json_values import dumps
from comfy_async._live.batch import BatchOutcome, run_batch
from comfy_async.cli.failures import ExitCode, describe, exit_code_for
from comfy_async.cli.previews import write_preview
from comfy_async.cli.progress import JobLine
from comfy_async.cli.saving import kept_message, split_existing
from comfy_async.cli.views import open_view
from comfy_async.errors import (
    ComfyError,
    ExecutionError,
    JobCancelled,
    JobInterrupted,
    JobLost,
    JobTimeout,
    PromptValidationError,
)
from comfy_async.events import PreviewImage
from comfy_async.pool import ComfyPool

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Iterator, Mapping
    from pathlib import Path

    from comfy_async._transport.rest.files import Files
    from comfy_async.cli.edits import SeedChoice
    from comfy_async.cli.output import Output
    from comfy_async.cli.progress import ProgressView
    from comfy_async.client import ComfyClient
    from comfy_async.job import Job, JobResult
    from comfy_async.workflow import Workflow

__all__ = ["CANCEL_GRACE", "RunPlan", "RunReport", "execute", "server_folder", "status_of"]

CANCEL_GRACE = 10.0
"""Seconds Ctrl-C waits for the server to confirm the cancellation of the run's jobs."""


@dataclass(frozen=True)
class RunPlan:
    """A workflow ready to submit ``count`` times, and what to do with what it produces."""

    workflow: Workflow
    count: int = 1
    seed: SeedChoice | None = None
    """How each run's seeds are set (``None``: as in the workflow)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Node id → the name a progress bar shows."""
    output_dir: Path | None = None
    previews_dir: Path | None = None
    overwrite: bool = False
    timeout: float | None = None
    concurrency: int = 1
    preview_method: str | None = None

    def instance(self, index: int) -> tuple[Workflow, dict[str, int]]:
        """The workflow of run ``index`` (from 0) and the seeds set in it."""
        workflow = self.workflow.copy()
        seeds = self.seed.apply(workflow, index) if self.seed is not None else {}
        return workflow, seeds

    def instances(self, seeds: dict[int, dict[str, int]]) -> Iterator[tuple[int, Workflow]]:
        """Every run's workflow, made when the batch asks for it; records the seeds set."""
        for index in range(self.count):
            workflow, seeds[index] = self.instance(index)
            yield index, workflow


@dataclass
class RunReport:
    """How one run of a plan ended."""

    index: int
    prompt_id: str | None
    status: str
    """``success``, ``failed``, ``refused``, ``interrupted``, ``cancelled``, ``timeout``, ``lost``
    or ``error``."""
    files: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    """Output files not downloaded because a file of that name exists (no ``--overwrite``)."""
    texts: dict[str, list[str]] = field(default_factory=dict)
    seeds: dict[str, int] = field(default_factory=dict)
    previews: list[Path] = field(default_factory=list)
    previews_dropped: int = 0
    """Preview frames not saved because writing them fell behind the server (the oldest go)."""
    duration: float | None = None
    error: ComfyError | None = None
    server: str | None = None
    """The server that ran it (with several servers: the pool's choice)."""

    def to_json(self) -> dict[str, object]:
        """The report as one JSON object (the error as its type, message and node)."""
        data: dict[str, object] = {
            "index": self.index,
            "prompt_id": self.prompt_id,
            "status": self.status,
            "files": [str(path) for path in self.files],
            "kept": [str(path) for path in self.kept],
            "texts": self.texts,
            "seeds": self.seeds,
            "previews": len(self.previews),
            "previews_dropped": self.previews_dropped,
            "duration": self.duration,
            "server": self.server,
            "error": None,
        }
        if self.error is not None:
            error: dict[str, object] = {
                "type": type(self.error).__name__,
                "message": " ".join(str(self.error).split()),
            }
            if isinstance(self.error, ExecutionError):
                error.update(
                    node_id=self.error.node_id,
                    node_type=self.error.node_type,
                    exception_type=self.error.exception_type,
                    exception_message=self.error.exception_message,
                )
            if isinstance(self.error, PromptValidationError):
                error["problems"] = [
                    {"node_id": node, "type": kind, "input_name": name, "message": message}
                    for node, kind, name, message in self.error.problems()
                ]
            data["error"] = error
        return data


def status_of(error: ComfyError) -> str:
    """The report status of a failed run."""
    for kind, status in (
        (PromptValidationError, "refused"),
        (JobTimeout, "timeout"),
        (JobCancelled, "cancelled"),
        (JobInterrupted, "interrupted"),
        (JobLost, "lost"),
        (ExecutionError, "failed"),
    ):
        if isinstance(error, kind):
            return status
    return "error"


class _Run:
    """The state of one :func:`execute` call: its jobs, their followers and their previews."""

    def __init__(self, client: ComfyClient | ComfyPool, plan: RunPlan, view: ProgressView) -> None:
        self.client = client
        clients = client.servers if isinstance(client, ComfyPool) else (client,)
        self.fleet = len(clients) > 1
        self.by_server = {member.base_url.rstrip("/"): member for member in clients}
        self.plan = plan
        self.view = view
        self.jobs: dict[int, Job] = {}
        self.previews: dict[int, list[Path]] = {}
        self.seeds: dict[int, dict[str, int]] = {}
        self.followers: dict[int, asyncio.Task[None]] = {}

    def title(self, index: int, job: Job) -> str:
        short = job.prompt_id[:8]
        return f"#{index + 1} {short}" if self.plan.count > 1 else f"job {short}"

    async def submit(self, item: tuple[int, Workflow]) -> Job:
        index, workflow = item
        job = await self.client.submit(
            workflow, timeout=self.plan.timeout, preview_method=self.plan.preview_method
        )
        self.jobs[index] = job
        self.view.add(job.prompt_id, self.title(index, job))
        self.followers[index] = asyncio.create_task(
            self.follow(index, job), name=f"follow {job.prompt_id}"
        )
        return job

    async def follow(self, index: int, job: Job) -> None:
        """Show the job's progress and keep its previews until its stream ends."""
        saved = self.previews.setdefault(index, [])
        count = 0
        async for event in job:
            if isinstance(event, PreviewImage):
                count += 1
                if self.plan.previews_dir is not None:
                    stem = f"{job.prompt_id[:8]}-{count:04d}"
                    saved.append(await write_preview(self.plan.previews_dir, stem, event))
            if not job.done():  # once settled, the bar is the view's to finish
                self.view.update(job.prompt_id, JobLine.of(job, self.plan.labels, count))

    async def report(self, outcome: BatchOutcome[tuple[int, Workflow]]) -> RunReport:
        """Save what a finished run produced and say how it ended."""
        index = outcome.index
        follower = self.followers.pop(index, None)
        if follower is not None:  # the job's stream ends with its outcome: previews are all in
            await follower
        job = self.jobs.pop(index, None)  # a batch of thousands keeps no finished job
        report = RunReport(index, outcome.prompt_id, "success", seeds=self.seeds.pop(index, {}))
        report.server = job.server if job is not None else None
        report.previews = self.previews.pop(index, [])
        report.previews_dropped = job.stats.dropped_previews if job is not None else 0
        try:
            result = outcome.unwrap()
            report.duration = result.duration
            report.texts = result.texts
            if self.plan.output_dir is not None:
                await self.save_outputs(result, report, self.files_of(job))
        except ComfyError as error:
            report.status, report.error = status_of(error), error
            if isinstance(error, JobTimeout) and job is not None:
                # The deadline cancels the job on the server in the background: see that
                # through before this process ends and closes the session.
                with contextlib.suppress(ComfyError):
                    await job.cancel()
        return report

    def files_of(self, job: Job | None) -> Files:
        """The files of the server that ran ``job``."""
        server = job.server if job is not None else None
        client = self.by_server.get(server or "") or next(iter(self.by_server.values()))
        return client.files

    async def save_outputs(self, result: JobResult, report: RunReport, files: Files) -> None:
        """Download the output files; a name already taken is kept, not overwritten.

        A re-run that the server answers from its cache hands out the same files again, so an
        existing file is most likely that very output: it is left alone, and reported.
        """
        folder = self.plan.output_dir
        assert folder is not None
        if self.fleet and report.server:
            # each server numbers its files on its own: one folder per server, no collisions
            folder = folder / server_folder(report.server)
        outputs = [file for file in result.files if file.type == "output"]
        fresh, kept = await split_existing(outputs, folder, overwrite=self.plan.overwrite)
        report.kept.extend(kept)
        report.files = await files.save(fresh, folder, overwrite=self.plan.overwrite)

    def announce(self, report: RunReport, out: Output) -> None:
        key = report.prompt_id or f"#{report.index + 1}"
        if report.error is None:
            where = f" on {report.server}" if self.fleet and report.server else ""
            self.view.finish(key, ok=True, message=_success_message(report) + where)
        else:
            self.view.finish(key, ok=False, message=report.status)
            for line in describe(report.error, verbose=out.verbose > 0, secrets=out.secrets):
                self.view.message(line)
        for path in report.kept:
            self.view.message(kept_message(path))
        if out.json:
            self.view.result(dumps(report.to_json()).decode())
            return
        for path in report.files:
            self.view.result(str(path))
        for node_id, texts in report.texts.items():
            for text in texts:
                self.view.result(f"{self.plan.labels.get(node_id, node_id)}: {text}")

    async def cancel_all(self, reason: str) -> None:
        """Cancel the unfinished jobs on the server and wait (a little) for the confirmation."""
        pending = [job for job in self.jobs.values() if not job.done()]
        if not pending:
            return
        self.view.message(f"{reason}: cancelling {len(pending)} job(s) on the server")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CANCEL_GRACE):
                await asyncio.gather(*(job.cancel() for job in pending), return_exceptions=True)
                await asyncio.gather(*(job.wait() for job in pending))
        for job in pending:
            status = "cancelled" if job.done() else "cancel requested, not yet confirmed"
            self.view.finish(job.prompt_id, ok=False, message=status)


def server_folder(server: str) -> str:
    """A folder name for a server's outputs: its host and port (``gpu1_8188``)."""
    url = urlsplit(server)
    name = f"{url.hostname or 'server'}_{url.port}" if url.port else (url.hostname or "server")
    path = url.path.strip("/").replace("/", "_")
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in f"{name}_{path}".strip("_"))


def _success_message(report: RunReport) -> str:
    parts = ["done"]
    if report.duration is not None:
        parts.append(f"in {report.duration:.1f} s")
    if report.files:
        parts.append(f"· {len(report.files)} file{'s' if len(report.files) != 1 else ''} saved")
    if report.previews:
        parts.append(f"· {len(report.previews)} previews saved")
    if report.previews_dropped:
        parts.append(
            f"({report.previews_dropped} more dropped: saving them fell behind the server)"
        )
    return " ".join(parts)


async def execute(
    client: ComfyClient | ComfyPool, plan: RunPlan, out: Output
) -> tuple[ExitCode, list[RunReport]]:
    """Run every workflow of ``plan`` on a server or a pool; the exit code and the reports."""
    total = plan.count
    view = open_view(out, batch_total=total if total > 1 else None)
    run = _Run(client, plan, view)
    reports: list[RunReport] = []
    try:
        batch = cast(  # run_batch is an async generator: close it at once, not when collected
            "AsyncGenerator[BatchOutcome[tuple[int, Workflow]], None]",
            run_batch(plan.instances(run.seeds), run.submit, concurrency=plan.concurrency),
        )
        async with contextlib.aclosing(batch):
            async for outcome in batch:
                report = await run.report(outcome)
                reports.append(report)
                run.announce(report, out)
                if total > 1:
                    failed = sum(1 for item in reports if item.error is not None)
                    view.batch(done=len(reports), failed=failed, total=total)
    except asyncio.CancelledError:
        await run.cancel_all("interrupted")
        raise
    except BaseException:
        await run.cancel_all("stopping")
        raise
    finally:
        followers = list(run.followers.values())
        for follower in followers:
            follower.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
        view.close()
    reports.sort(key=lambda item: item.index)
    first_error = next((item.error for item in reports if item.error is not None), None)
    return (ExitCode.OK if first_error is None else exit_code_for(first_error)), reports
