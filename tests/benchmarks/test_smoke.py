"""The benchmark scripts run end to end on tiny sizes, so they cannot rot (no timing is checked).

Each script's ``main(["--quick", "--json", …])`` runs against its server process and must write
a report with its targets; the runner's page and chart are written from such reports into a
temporary folder. The chart needs matplotlib (the ``bench`` extra) and is skipped without it;
P7's peers are not installed here (``--quick`` runs comfy_async alone), and P8 runs without its
Node peer.
P7's and P11's peers are not installed here (``--quick`` runs comfy_async alone).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

SCRIPTS = {
    "p1_dispatcher": ["--jobs", "20"],
    "p2_previews": [],
    "p3_decode": [],
    "p4_submit": [],
    "p5_import": ["--runs", "1"],
    "p6_scale": ["--jobs", "40", "--window", "1"],
    "p7_versus": ["--no-install"],
    "p8_pool": ["--only", "pool,round-robin"],
    "p9_ray": ["--items", "24", "--servers", "2"],
    "p10_admission": ["--runs", "1"],
    "p11_v2_versus": ["--no-install"],
    "p12_job_cost": [],
}


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_script_runs_quick_and_reports_its_targets(name: str, tmp_path: Path) -> None:
    module = importlib.import_module(f"benchmarks.{name}")
    out = tmp_path / f"{name}.json"
    assert module.main(["--quick", "--json", str(out), *SCRIPTS[name]]) == 0
    report = json.loads(out.read_text())
    assert report["name"] == name
    assert report["quick"] is True
    assert report["targets"], "every benchmark checks at least one target"
    for target in report["targets"]:
        assert target["op"] in ("<=", ">=")
        assert isinstance(target["passed"], bool)


def test_p2_shows_zero_copies(tmp_path: Path) -> None:
    from benchmarks import p2_previews

    out = tmp_path / "p2.json"
    p2_previews.main(["--quick", "--json", str(out)])
    check = json.loads(out.read_text())["raw"]["zero_copy"]
    assert check["previews"] > 0
    assert check["same_object"] == check["previews"]
    assert check["payload_ok"] is True


def test_p7_floor_follows_every_job(tmp_path: Path) -> None:
    from benchmarks import p7_versus

    out = tmp_path / "p7.json"
    p7_versus.main(["--quick", "--json", str(out), "--only", "floor"])
    row = json.loads(out.read_text())["raw"]["clients"][p7_versus.FLOOR]
    assert row["all_correct"] is True
    assert row["http_requests"] == 2 * 16  # the submit and the download, nothing else
    assert row["runs"][0]["events"] == {"progress": 20 * 16, "previews": 2 * 16}


def test_runner_writes_the_page_and_the_chart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks import __main__ as runner
    from benchmarks._common import Report

    monkeypatch.setattr(runner, "PAGE", tmp_path / "README.md")
    monkeypatch.setattr(runner, "CHART", tmp_path / "chart.png")
    report = Report(name="p1_dispatcher", title="P1 dispatcher", quick=True)
    report.table("frames", "path", "frames/s").add("raw", "1")
    report.target("ratio", 0.5, ">=", 0.65, "%")
    p7 = Report(name="p7_versus", title="P7 versus other clients", quick=True)
    p7.raw = {"jobs": 2, "clients": {"comfy_async": {"wall": 1.0, "cpu": 0.5, "correct": 2}}}
    p7.target("jobs", 2, ">=", 2, "")
    reports = [report, p7]

    chart = importlib.util.find_spec("matplotlib") is not None and runner.write_chart(reports)
    runner.write_page(reports, 12.0, quick=True, chart=chart)
    page = (tmp_path / "README.md").read_text()
    assert "| P1 dispatcher | ratio | 50% | >= 65% | **FAIL** (missed by 23%) |" in page
    assert "How to reproduce" in page
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib (the bench extra) is absent: the chart is not drawn")
    assert (tmp_path / "chart.png").read_bytes().startswith(b"\x89PNG")
