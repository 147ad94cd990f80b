"""``python -m benchmarks``: run every benchmark, then write the results page and its chart.

Each script (``p1_dispatcher`` … ``p12_job_cost``) runs in its own interpreter, one after the
other, and writes its report as JSON into ``benchmarks/results/`` (its full output goes to
``benchmarks/results/raw/``, not committed). Then this runner writes

* ``benchmarks/README.md`` — the results page: every target with PASS/FAIL, every table, the
  library changes the measurements led to (``benchmarks/fixes.md``), and how to reproduce;
* ``benchmarks/results/chart.png`` — the targets at a glance, and P7's clients side by side
  (needs matplotlib: ``pip install -e '.[bench]'``; skipped with a message when it is absent);
* ``benchmarks/results/summary.json`` — every report in one file.

Options: ``--quick`` (smoke sizes, a few seconds each), ``--only p1,p4`` (a subset; the page is
then written from the JSON already in ``results/`` for the others), ``--no-install`` (P7 skips
peers and P8's Node peer when they are not installed yet).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime

from benchmarks._common import PYTHON, RESULTS, ROOT, Report, Table, ensure_bytecode, fmt

SCRIPTS = (
    "p1_dispatcher",
    "p2_previews",
    "p3_decode",
    "p4_submit",
    "p5_import",
    "p6_scale",
    "p7_versus",
    "p8_pool",
    "p9_ray",
    "p10_admission",
    "p11_v2_versus",
    "p12_job_cost",
)
PAGE = ROOT / "benchmarks" / "README.md"
FIXES = ROOT / "benchmarks" / "fixes.md"
CHART = RESULTS / "chart.png"


def run_script(name: str, *, quick: bool, no_install: bool) -> Report:
    """Run one benchmark in its own interpreter; its report (a failure is a report too)."""
    raw = RESULTS / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    target = RESULTS / f"{name}.json"
    command = [PYTHON, "-m", f"benchmarks.{name}", "--json", str(target)]
    if quick:
        command.append("--quick")
    if no_install and name in ("p7_versus", "p8_pool", "p11_v2_versus"):
        command.append("--no-install")
    print(f"\n>>> {' '.join(command[2:4])}{' --quick' if quick else ''}", flush=True)
    started = time.perf_counter()
    with (raw / f"{name}.log").open("w") as log:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT
        )
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            log.write(line)
        process.wait()
    if process.returncode == 0 and target.exists():
        return Report.from_json(json.loads(target.read_text()))
    report = Report(name=name, title=name, quick=quick)
    report.skipped = f"the script failed (exit {process.returncode}); see results/raw/{name}.log"
    report.seconds = time.perf_counter() - started
    return report


def load_previous(name: str) -> Report | None:
    """A report written by an earlier run, if any."""
    path = RESULTS / f"{name}.json"
    return Report.from_json(json.loads(path.read_text())) if path.exists() else None


# --------------------------------------------------------------------------- the page


def markdown_table(table: Table) -> str:
    lines = [f"**{table.title}**", ""]
    lines.append("| " + " | ".join(table.columns) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(table.columns) - 1)) + "|")
    lines += [
        "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table.rows
    ]
    return "\n".join(lines)


def write_page(reports: list[Report], total: float, *, quick: bool, chart: bool) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        (
            "comfy_async measured against the physical ceiling (raw aiohttp, a bare lazy JSON "
            "split, `import aiohttp, msgspec`) and against the other Python clients of ComfyUI, "
            "each ceiling or peer **in the same run**, as medians of several rounds. The machine "
            "is shared and noisy (2 cores): read the ratios, not the absolute figures. Every "
            "server runs in its own process on 127.0.0.1; every load loop is bounded in count "
            "and time."
        ),
        "",
        (
            "*This page is written by `python -m benchmarks` (`make bench`); do not edit it by "
            "hand (the library changes section comes from `benchmarks/fixes.md`).*"
        ),
        "",
        (
            f"Last run: {stamp}, {'quick sizes' if quick else 'full sizes'}, "
            f"Python {platform.python_version()} on {platform.machine()}, "
            f"the whole run took {total / 60:.1f} min."
        ),
        "",
    ]
    if chart:
        lines += ["![targets and clients at a glance](results/chart.png)", ""]
    lines += [
        "## Targets",
        "",
        "| | target | measured | goal | verdict |",
        "|---|---|---:|---:|---|",
    ]
    for report in reports:
        if report.skipped:
            lines.append(f"| {report.title} | — | — | — | skipped: {report.skipped} |")
        for target in report.targets:
            verdict = "PASS" if target.passed else "**FAIL**"
            if not target.passed and target.limit:
                verdict += f" (missed by {abs(target.value - target.limit) / target.limit:.0%})"
            lines.append(
                f"| {report.title} | {target.label} | {fmt(target.value, target.unit)} "
                f"| {target.op} {fmt(target.limit, target.unit)} | {verdict} |"
            )
    lines.append("")
    for report in reports:
        lines += [f"## {report.title}", ""]
        doc = _doc_of(report.name)
        if doc:
            lines += [doc, ""]
        if report.skipped:
            lines += [f"Skipped: {report.skipped}", ""]
        for table in report.tables:
            lines += [markdown_table(table), ""]
        lines += [f"- {note}" for note in report.notes]
        if report.notes:
            lines.append("")
        lines.append(f"*{report.seconds:.0f} s; raw figures in `results/{report.name}.json`.*")
        lines.append("")
    if FIXES.exists():
        lines += [FIXES.read_text().strip(), ""]
    lines += [
        "## How to reproduce",
        "",
        "<!-- illustrative -->",
        "```sh",
        "make bench                      # creates .venv, installs the package, runs everything",
        "# or, in the project's environment (pip install -e '.[dev,bench]'):",
        "python -m benchmarks            # every benchmark, then this page and the chart",
        "python -m benchmarks --quick    # smoke sizes: a few seconds each",
        "python -m benchmarks --only p1,p4",
        "python benchmarks/p1_dispatcher.py --runs 9   # one benchmark alone, printing its ratio",
        "```",
        "",
        (
            "The shared payloads (`shared/fixtures/object_info/*.json`, the 25 MB dump, the "
            "200-entry history) are read in place from a `shared/fixtures` folder beside the "
            "checkout or above it; without them P3 measures the recorded dump and generates a "
            "comparable 25 MB one. P7 installs each peer client pinned in "
            "`benchmarks/requirements-peers.txt` into its own `benchmarks/.venv-<name>/` on "
            "first use (PyPI must be reachable then); `--no-install` skips the ones not "
            "installed yet. P8 installs its Node peer from `benchmarks/p8_peer/package-lock.json` "
            "(`npm ci`, Node.js needed) into `benchmarks/p8_peer/node_modules/` on first use. "
            "Profiles: `py-spy record -o out.svg -- python "
            "benchmarks/p1_dispatcher.py` (py-spy and pyinstrument are in the `bench` extra)."
        ),
        "",
    ]
    PAGE.write_text("\n".join(lines))


def _doc_of(name: str) -> str:
    """The first paragraph of a script's docstring after its title line."""
    path = ROOT / "benchmarks" / f"{name}.py"
    if not path.exists():
        return ""
    text = path.read_text().split('"""', 2)[1]
    paragraphs = [part.strip() for part in text.split("\n\n")]
    return " ".join(paragraphs[1].split()) if len(paragraphs) > 1 else ""


# --------------------------------------------------------------------------- the chart


def _short(label: str, width: int = 52) -> str:
    """A target's label cut to fit beside a bar."""
    return label if len(label) <= width else label[: width - 1] + "…"


def write_chart(reports: list[Report]) -> bool:
    """The chart: each target's headroom (≥ 1 passes), and P7's clients. False if no matplotlib."""
    try:
        import matplotlib as mpl
    except ImportError:
        print("matplotlib is absent: no chart (pip install -e '.[bench]')", flush=True)
        return False
    mpl.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    targets = [(r.title.split()[0], t) for r in reports for t in r.targets if t.limit]
    p7 = next((r for r in reports if r.name == "p7_versus"), None)
    clients = (p7.raw.get("clients", {}) if p7 else {}) or {}
    runnable = {name: row for name, row in clients.items() if "wall" in row}
    panels = 2 if runnable else 1
    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, 0.45 * max(len(targets), 6) + 1.5))
    axes = list(axes) if panels > 1 else [axes]

    ax = axes[0]
    labels = [_short(target.label) for _, target in targets]
    scores = [min(target.score, 20.0) for _, target in targets]
    colours = ["#2e7d32" if target.passed else "#c62828" for _, target in targets]
    ax.barh(range(len(scores)), scores, color=colours)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("headroom against the target (≥ 1 passes; log scale)")
    ax.set_title("Targets: green passes, red misses")

    if runnable:
        ax = axes[1]
        names = list(runnable)
        walls = [runnable[name]["wall"] for name in names]
        cpus = [runnable[name]["cpu"] for name in names]
        positions = range(len(names))
        ax.barh([p - 0.2 for p in positions], walls, height=0.4, label="wall s", color="#1565c0")
        ax.barh(
            [p + 0.2 for p in positions], cpus, height=0.4, label="client CPU s", color="#ef6c00"
        )
        jobs = p7.raw.get("jobs", 0) if p7 else 0
        marks = [f"{name} ({runnable[name]['correct']}/{jobs})" for name in names]
        ax.set_yticks(list(positions), marks, fontsize=7)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(mpl.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
        ax.set_xlabel("seconds (log scale; lower is better)")
        ax.set_title(f"P7: {jobs} jobs through each client (correct/total)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    CHART.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(CHART, dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke sizes")
    parser.add_argument("--only", help="comma-separated prefixes, e.g. p1,p4")
    parser.add_argument("--no-install", action="store_true", help="P7: skip uninstalled peers")
    args = parser.parse_args(argv)
    wanted = [part.strip() for part in (args.only or "").split(",") if part.strip()]
    started = time.perf_counter()
    ensure_bytecode()
    reports: list[Report] = []
    for name in SCRIPTS:
        if wanted and not any(name.startswith(prefix) for prefix in wanted):
            previous = load_previous(name)
            if previous is not None:
                reports.append(previous)
            continue
        reports.append(run_script(name, quick=args.quick, no_install=args.no_install))
    total = time.perf_counter() - started
    (RESULTS / "summary.json").write_text(
        json.dumps([report.to_json() for report in reports], indent=2, ensure_ascii=False) + "\n"
    )
    chart = write_chart(reports)
    write_page(
        reports, sum(r.seconds for r in reports) if wanted else total, quick=args.quick, chart=chart
    )

    print("\n== Summary (medians; ratios measured in the same run)\n", flush=True)
    for report in reports:
        if report.skipped:
            print(f"SKIP  {report.title}: {report.skipped}")
        for target in report.targets:
            print(target.text())
    print(
        f"\nwrote {PAGE.relative_to(ROOT)}" + (f" and {CHART.relative_to(ROOT)}" if chart else "")
    )
    print(f"total {total / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
