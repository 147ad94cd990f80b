"""Which progress display a command gets: rich bars, plain lines, or none (``--quiet``).

Chosen from the output settings; the rich display is imported only when used (an extra).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from comfy_async.cli.progress import NoProgress, PlainProgress

if TYPE_CHECKING:
    from comfy_async.cli.output import Output
    from comfy_async.cli.progress import ProgressView

__all__ = ["open_view"]


def open_view(out: Output, *, batch_total: int | None = None) -> ProgressView:
    """The progress view ``out`` asks for; ``batch_total`` adds an aggregate bar for a batch."""
    if out.progress == "rich":
        from comfy_async.cli.rich_progress import RichProgress  # noqa: PLC0415 - an extra, loaded when used

        return RichProgress(out.stderr, out.stdout, color=out.color_stderr, batch_total=batch_total)
    if out.progress == "plain":
        return PlainProgress(out.stderr, out.stdout, per_job=batch_total is None)
    return NoProgress(out.stderr, out.stdout)
