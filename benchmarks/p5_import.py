"""P5 import time: fresh interpreters, ``import comfy_async`` against ``import aiohttp, msgspec``.

Each statement is timed inside a new interpreter (``time.perf_counter`` around the import, so
the interpreter's own start-up is left out), the statements alternating, medians over many
interpreters. The package is compiled to bytecode first, as ``pip install`` does for aiohttp and
msgspec: no import pays for compiling source.

* ``import aiohttp, msgspec`` — the baseline: the two libraries the session needs anyway;
* ``import comfy_async`` — the package (its session, workflows and catalogue load on first use);
* ``from comfy_async import ComfyClient`` — what a user of the session imports (the request
  path; namespaces, live session and models load on first use); reported honestly beside the
  target, which is about the package import.

Target: ``import comfy_async`` ≤ 1.1× the baseline.

Run: ``python benchmarks/p5_import.py [--quick] [--runs N]``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import PYTHON, ROOT, Report, ensure_bytecode, main_of, median

if TYPE_CHECKING:
    import argparse

STATEMENTS = {
    "import aiohttp, msgspec": "import aiohttp, msgspec",
    "import comfy_async": "import comfy_async",
    "from comfy_async import ComfyClient": "from comfy_async import ComfyClient",
    "import comfy_async.protocol (sans-I/O core)": "import comfy_async.protocol",
}
_PROBE = "import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"


def import_seconds(statement: str) -> float:
    """Seconds ``statement`` takes in a fresh interpreter (start-up excluded)."""
    out = subprocess.run(
        [PYTHON, "-c", _PROBE.format(statement=statement)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return float(out.stdout.strip())


def body(args: argparse.Namespace, report: Report) -> None:
    ensure_bytecode()
    runs = min(args.runs, 2) if args.quick else args.runs
    if not args.quick:
        for statement in STATEMENTS.values():  # warm the file system cache and the .pyc files
            import_seconds(statement)
    times: dict[str, list[float]] = {label: [] for label in STATEMENTS}
    for _ in range(runs):
        for label, statement in STATEMENTS.items():
            times[label].append(import_seconds(statement))
    base = median(times["import aiohttp, msgspec"])
    table = report.table(
        f"Import time in fresh interpreters, median of {runs}",
        "statement",
        "median ms",
        "min ms",
        "vs aiohttp + msgspec",
    )
    for label, values in times.items():
        table.add(
            label,
            f"{median(values) * 1e3:.1f}",
            f"{min(values) * 1e3:.1f}",
            f"{median(values) / base:.2f}x",
        )
    report.raw = {"seconds": times}
    report.target(
        "P5 import comfy_async / import aiohttp, msgspec",
        median(times["import comfy_async"]) / base,
        "<=",
        1.1,
    )
    report.notes.append(
        "`from comfy_async import ComfyClient` loads the request path (aiohttp included; the "
        "REST namespaces, the live session and the models load on first use): "
        f"{median(times['from comfy_async import ComfyClient']) / base:.2f}x the baseline, "
        "reported beside the target, not hidden by it."
    )


main = main_of(__doc__.splitlines()[0], 21, body, name="p5_import", title="P5 import time")

if __name__ == "__main__":
    raise SystemExit(main(None))
