"""Progress views: plain lines throttled per node and per tenth; the text beside a bar."""

from __future__ import annotations

import io

from comfy_async.cli.progress import JobLine, PlainProgress


def test_plain_progress_prints_a_line_per_node_and_per_tenth() -> None:
    now = [0.0]
    stream = io.StringIO()
    view = PlainProgress(stream, io.StringIO(), interval=1.0, clock=lambda: now[0])
    view.add("k", "job 1")
    view.update("k", JobLine(0.0))  # queued: nothing
    for step in range(1, 11):
        now[0] += 0.4
        view.update("k", JobLine(step / 20, "Sampler", step, 10, running=True))
    view.update("k", JobLine(0.6, "Decode", running=True))
    view.finish("k", ok=True, message="done")
    assert stream.getvalue().splitlines() == [
        "job 1: queued",
        "job 1:   5%  Sampler · step 1/10",  # a new node: at once
        "job 1:  20%  Sampler · step 4/10",  # a new tenth, and a second since the last line
        "job 1:  35%  Sampler · step 7/10",
        "job 1:  50%  Sampler · step 10/10",
        "job 1:  60%  Decode",  # a new node: at once
        "job 1: done",
    ]


def test_job_line_detail() -> None:
    assert JobLine(0.0).detail == "queued"
    assert JobLine(0.5, "KSampler", 3, 20, previews=1, running=True).detail == (
        "KSampler · step 3/20 · 1 preview"
    )
    assert JobLine(1.0, running=True).detail == "finishing"


def render_rich(monkeypatch, columns: int, line: JobLine, finish: str | None = None) -> str:  # type: ignore[no-untyped-def]
    from comfy_async.cli.rich_progress import RichProgress

    monkeypatch.setenv("COLUMNS", str(columns))
    stream = io.StringIO()
    view = RichProgress(stream, io.StringIO(), color=False)
    view.add("k", "job 67662c13")
    view.update("k", line)
    if finish is not None:
        view.finish("k", ok=False, message=finish)
    view.close()
    return stream.getvalue().rstrip("\n").splitlines()[-1]


LONG = JobLine(0.16, "Probe: sleep with progress, a node with a long title", 19, 20, 19, True)


def test_a_line_fits_80_columns_and_the_detail_gives_way_first(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    text = render_rich(monkeypatch, 80, LONG)
    assert len(text) <= 80
    assert "job 67662c13" in text  # the title is whole
    assert "━━━╸" + " " * 20 in text  # the bar keeps its 24 cells (16 % drawn)
    assert "16%" in text
    assert text.endswith("0:00:00")  # the timer is not cut
    assert "…" in text  # the detail was shortened instead


def test_a_cancelled_bar_stays_where_it_stopped(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    text = render_rich(monkeypatch, 100, LONG, finish="cancelled")
    assert "16% cancelled" in text
    assert "100%" not in text
