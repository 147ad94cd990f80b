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
