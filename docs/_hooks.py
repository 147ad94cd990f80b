"""Build hooks of the documentation site: the benchmarks page's chart is served beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

_CHART = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "chart.png"


def on_files(files: Files, config: Any) -> Files:
    """Add the benchmarks chart at ``results/chart.png``, where the included page links it."""
    files.append(File.generated(config, "results/chart.png", abs_src_path=str(_CHART)))
    return files
