"""Live progress bars with rich (the ``cli`` extra): one bar per job, one for a whole batch.

Imported only when rich is installed and chosen (:func:`comfy_async.cli.progress.open_view`).
Each job's bar shows its title, the whole job's percentage, the node running and its step and
the previews received; a batch adds an aggregate bar (jobs done of total, how many failed) and
drops each job's bar when it ends, leaving a line saying how it ended. A run over a fleet adds
one bar per server (its share of the jobs done, its health and jobs running there). The display
writes to stderr only; results meant for stdout are printed through the display when both
streams are the same terminal, so that the bars are not torn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column

from comfy_async.cli.progress import server_label

if TYPE_CHECKING:
    from typing import TextIO

    from comfy_async.cli.progress import JobLine, ServerLine

__all__ = ["RichProgress"]


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class RichProgress:
    """A :class:`~comfy_async.cli.progress.ProgressView` drawn with rich's live display."""

    def __init__(
        self, stream: TextIO, stdout: TextIO, *, color: bool, batch_total: int | None = None
    ) -> None:
        self._console = Console(file=stream, no_color=not color, highlight=False, soft_wrap=True)
        self._stdout = stdout
        self._stdout_shared = _is_terminal(stdout) and self._console.is_terminal
        # On a narrow terminal the detail gives way first (cut with an ellipsis): the title, the
        # bar, the percentage and the timer keep their width, so a line fits 80 columns.
        fixed = Column(no_wrap=True)
        self._progress = Progress(
            SpinnerColumn(finished_text=" ", table_column=fixed),
            TextColumn("{task.description}", markup=False, table_column=fixed),
            BarColumn(bar_width=24, table_column=Column(no_wrap=True, width=24)),
            TaskProgressColumn(table_column=fixed),
            TextColumn(
                "{task.fields[detail]}",
                markup=False,
                table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1, min_width=8),
            ),
            TimeElapsedColumn(table_column=fixed),
            expand=True,
            console=self._console,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._titles: dict[str, str] = {}
        self._batch = batch_total is not None
        self._batch_total = batch_total or 1
        self._servers: dict[str, TaskID] = {}
        self._total: TaskID | None = None
        if batch_total is not None:
            self._total = self._progress.add_task("batch", total=batch_total, detail="")
        self._progress.start()

    def add(self, key: str, title: str) -> None:
        """See :meth:`~comfy_async.cli.progress.ProgressView.add`."""
        self._tasks[key] = self._progress.add_task(title, total=1.0, detail="queued")
        self._titles[key] = title

    def update(self, key: str, line: JobLine) -> None:
        """See :meth:`~comfy_async.cli.progress.ProgressView.update`."""
        task = self._tasks.get(key)
        if task is not None:
            self._progress.update(task, completed=line.fraction, detail=line.detail)

    def finish(self, key: str, *, ok: bool, message: str) -> None:
        """See :meth:`~comfy_async.cli.progress.ProgressView.finish`."""
        task = self._tasks.pop(key, None)
        title = self._titles.pop(key, key)
        if task is None:
            return
        if self._batch:
            self._progress.remove_task(task)
            self.message(f"{'✓' if ok else '✗'} {title}: {message}")
        elif ok:
            self._progress.update(task, completed=1.0, detail=message)
        else:
            self._progress.stop_task(task)
            self._progress.update(task, detail=message)

    def batch(self, *, done: int, failed: int, total: int) -> None:
        """See :meth:`~comfy_async.cli.progress.ProgressView.batch`."""
        if self._total is not None:
            detail = f"{done}/{total}" + (f", {failed} failed" if failed else "")
            self._progress.update(self._total, completed=done, total=total, detail=detail)

    def server(self, name: str, line: ServerLine) -> None:
        """See :meth:`~comfy_async.cli.progress.ProgressView.server`."""
        task = self._servers.get(name)
        detail = f"{line.done} done · {line.detail}"
        if task is None:
            self._servers[name] = self._progress.add_task(
                server_label(name), total=self._batch_total, completed=line.done, detail=detail
            )
        else:
            self._progress.update(task, completed=line.done, detail=detail)

    def message(self, text: str) -> None:
        """See :meth:`~comfy_async.cli.progress.ProgressView.message`."""
        self._console.print(text, markup=False, highlight=False)

    def result(self, text: str) -> None:
        """See :meth:`~comfy_async.cli.progress.ProgressView.result`."""
        if self._stdout_shared:
            self._console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self._stdout, flush=True)

    def close(self) -> None:
        """See :meth:`~comfy_async.cli.progress.ProgressView.close`."""
        self._progress.stop()
