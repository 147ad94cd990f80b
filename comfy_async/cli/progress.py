"""Live progress of jobs on stderr: what a bar shows, and the plain line-based display.

A command reports each job's state as a :class:`JobLine` (node being run, its step, the overall
fraction, previews received) to a :class:`ProgressView`, and, when it runs on a fleet, each
server's state as a :class:`ServerLine`. Three views exist: rich live bars
(:mod:`comfy_async.cli.rich_progress`, with the ``cli`` extra, on a terminal),
:class:`PlainProgress` (one line when something worth a line changed: logs, CI, pipes) and
:class:`NoProgress` (``--quiet``). :func:`open_view` picks one as the
:class:`~comfy_async.cli.output.Output` says. Views draw on stderr; results they are handed for
stdout are printed so as not to tear the bars.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from comfy_async.job import JobState

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import TextIO

    from comfy_async.job import Job

__all__ = ["JobLine", "NoProgress", "PlainProgress", "ProgressView", "ServerLine", "server_label"]

_LABEL_WIDTH = 21


def server_label(name: str) -> str:
    """A server's name as a progress line shows it: no scheme, at most 21 characters."""
    label = name.split("://", 1)[-1].rstrip("/")
    return label if len(label) <= _LABEL_WIDTH else label[: _LABEL_WIDTH - 1] + "…"


@dataclass(frozen=True, slots=True)
class ServerLine:
    """What one server's line shows while a run goes over a fleet."""

    health: str
    """``up``, ``down`` or ``recovering``."""
    in_flight: int = 0
    """The run's jobs there now."""
    done: int = 0
    failed: int = 0

    @property
    def detail(self) -> str:
        """The text beside the server's bar: health, jobs there, failures."""
        parts = [self.health, f"{self.in_flight} running"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class JobLine:
    """What one job's bar shows."""

    fraction: float
    """The whole job, 0 to 1."""
    node: str | None = None
    """The node running now (its title or display name)."""
    value: float = 0.0
    """The node's step."""
    maximum: float = 0.0
    """The node's step count (0 or 1: the node reports no steps)."""
    previews: int = 0
    """Preview frames received so far."""
    running: bool = False
    """Whether the job started (else it waits in the queue)."""

    @classmethod
    def of(cls, job: Job, labels: Mapping[str, str], previews: int = 0) -> JobLine:
        """The line of ``job`` now, naming nodes with ``labels`` (node id → name)."""
        progress = job.progress
        node = labels.get(progress.node, progress.node) if progress.node else None
        running = job.state not in (
            JobState.HELD,
            JobState.ADMITTED,
            JobState.SUBMITTING,
            JobState.QUEUED,
        )
        return cls(
            progress.fraction, node, progress.node_value, progress.node_max, previews, running
        )

    @property
    def detail(self) -> str:
        """The text beside the bar: node, step, previews (``queued`` before it starts)."""
        if not self.running:
            return "queued"
        parts = [self.node or ("finishing" if self.fraction >= 1 else "starting")]
        if self.maximum > 1:
            parts.append(f"step {self.value:g}/{self.maximum:g}")
        if self.previews:
            parts.append(f"{self.previews} preview{'s' if self.previews != 1 else ''}")
        return " · ".join(parts)


class ProgressView(Protocol):
    """Where jobs report their progress (a display on stderr)."""

    def add(self, key: str, title: str) -> None:
        """A job was submitted: show it as ``title``."""
        ...

    def update(self, key: str, line: JobLine) -> None:
        """The job changed."""
        ...

    def finish(self, key: str, *, ok: bool, message: str) -> None:
        """The job ended (``message`` says how)."""
        ...

    def batch(self, *, done: int, failed: int, total: int) -> None:
        """The aggregate of a batch changed."""
        ...

    def server(self, name: str, line: ServerLine) -> None:
        """A server of the fleet the run goes over changed (its line is made on first call)."""
        ...

    def message(self, text: str) -> None:
        """Print a line of text above the bars (on stderr)."""
        ...

    def result(self, text: str) -> None:
        """Print a line of results on stdout without breaking the display."""
        ...

    def close(self) -> None:
        """Stop the display (the last state stays on screen)."""
        ...


class NoProgress:
    """A view that shows nothing but messages and results (``--quiet``)."""

    def __init__(self, stream: TextIO, stdout: TextIO) -> None:
        self._stream = stream
        self._stdout = stdout

    def add(self, key: str, title: str) -> None:
        """See :meth:`ProgressView.add`."""

    def update(self, key: str, line: JobLine) -> None:
        """See :meth:`ProgressView.update`."""

    def finish(self, key: str, *, ok: bool, message: str) -> None:
        """See :meth:`ProgressView.finish`."""

    def batch(self, *, done: int, failed: int, total: int) -> None:
        """See :meth:`ProgressView.batch`."""

    def server(self, name: str, line: ServerLine) -> None:
        """See :meth:`ProgressView.server`."""

    def message(self, text: str) -> None:
        """See :meth:`ProgressView.message`."""
        print(text, file=self._stream, flush=True)

    def result(self, text: str) -> None:
        """See :meth:`ProgressView.result`."""
        print(text, file=self._stdout, flush=True)

    def close(self) -> None:
        """See :meth:`ProgressView.close`."""


class PlainProgress(NoProgress):
    """Progress as plain lines: one when the node changes, a tenth more is done, or it ends.

    With ``per_job`` off (batches), only the end of each job and the aggregate are printed.
    A line is printed at most every ``interval`` seconds for the same node of a job.
    """

    def __init__(
        self,
        stream: TextIO,
        stdout: TextIO,
        *,
        per_job: bool = True,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(stream, stdout)
        self._per_job = per_job
        self._interval = interval
        self._clock = clock
        self._titles: dict[str, str] = {}
        self._last: dict[str, tuple[str, int, float]] = {}
        self._batch: tuple[int, int] | None = None
        self._servers: dict[str, ServerLine] = {}

    def add(self, key: str, title: str) -> None:
        """See :meth:`ProgressView.add`."""
        self._titles[key] = title
        if self._per_job:
            self.message(f"{title}: queued")

    def update(self, key: str, line: JobLine) -> None:
        """See :meth:`ProgressView.update`."""
        if not self._per_job or not line.running:
            return
        tenth = int(line.fraction * 10)
        node = line.node or ""
        now = self._clock()
        last = self._last.get(key)
        if last is not None:
            same_node = last[0] == node
            if same_node and (tenth == last[1] or now - last[2] < self._interval):
                return
        self._last[key] = (node, tenth, now)
        self.message(f"{self._titles.get(key, key)}: {line.fraction:4.0%}  {line.detail}")

    def finish(self, key: str, *, ok: bool, message: str) -> None:
        """See :meth:`ProgressView.finish`."""
        self.message(f"{self._titles.get(key, key)}: {message}")
        self._last.pop(key, None)

    def batch(self, *, done: int, failed: int, total: int) -> None:
        """See :meth:`ProgressView.batch`."""
        if self._batch == (done, failed):
            return
        self._batch = (done, failed)
        self.message(f"batch: {done}/{total} done, {failed} failed")

    def server(self, name: str, line: ServerLine) -> None:
        """See :meth:`ProgressView.server`: a line when its health or its counts change."""
        last = self._servers.get(name)
        self._servers[name] = line
        if last is not None and (last.health, last.done, last.failed) == (
            line.health,
            line.done,
            line.failed,
        ):
            return
        self.message(f"server {server_label(name)}: {line.done} done · {line.detail}")
