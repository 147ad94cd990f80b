"""What every benchmark shares: fixtures, medians, targets, reports and server processes.

A benchmark script builds a :class:`Report` (tables, targets, notes), prints it and, with
``--json PATH``, writes it for the runner (``python -m benchmarks``). Figures are always ratios to
a ceiling or a peer measured in the same run, medians over several rounds: the machines are shared
and noisy. Servers run in their own process (:class:`ServerProcess`) on loopback addresses only,
and every load loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
RECORDED_OBJECT_INFO = ROOT / "tests" / "data" / "real_comfyui" / "object_info.json"
PYTHON = sys.executable
LOOPBACK = "127.0.0.1"


def find_shared(*parts: str) -> Path | None:
    """``shared/fixtures/<parts>`` beside the checkout or in any folder above it, if present."""
    for folder in ROOT.parents:
        candidate = folder.joinpath("shared", "fixtures", *parts)
        if candidate.exists():
            return candidate
    return None


def ensure_bytecode() -> None:
    """Compile the package, the benchmarks and its runtime dependencies to bytecode, as pip does.

    A checkout imported with ``PYTHONDONTWRITEBYTECODE`` (or never imported yet) compiles every
    module from source at each import, while the installed libraries it is compared with load
    their ``.pyc`` files: import-time and start-up figures would measure the compiler. The same
    goes for the runtime dependencies when the environment was installed without compiling them
    (uv does not by default): pip compiles what it installs, so the peers' do load ``.pyc``.
    """
    import compileall
    import re

    skip = re.compile(r"[/\\]\.venv")  # the peers' environments are compiled by pip
    for folder in ("comfy_async", "benchmarks"):
        compileall.compile_dir(ROOT / folder, quiet=1, rx=skip)
    for source in _dependency_sources():
        compileall.compile_file(source, quiet=1)


def _dependency_sources() -> list[Path]:
    """The ``.py`` files of comfy_async's runtime dependencies, and theirs, as installed."""
    import re
    from importlib import metadata

    def requirement_names(requires: list[str] | None) -> list[str]:
        names = []
        for requirement in requires or []:
            if "extra ==" in requirement:
                continue
            names.append(re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0])
        return names

    seen: set[str] = set()
    todo = requirement_names(metadata.distribution("comfy-async").requires)
    sources: list[Path] = []
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        todo += requirement_names(dist.requires)
        sources += [
            Path(str(dist.locate_file(file))) for file in dist.files or [] if file.suffix == ".py"
        ]
    return sources


def median(values: Sequence[float]) -> float:
    """The median (0.0 for no values)."""
    return statistics.median(values) if values else 0.0


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile by nearest rank (0.0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of this process, or of process ``pid`` (Linux ``/proc``)."""
    if pid is None:
        return time.process_time()  # nanosecond resolution (os.times() counts 10 ms ticks)
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# --------------------------------------------------------------------------- reports


@dataclass
class Target:
    """One target of the issue: ``value op limit`` (``op`` is ``<=`` or ``>=``)."""

    label: str
    value: float
    op: str
    limit: float
    unit: str = "x"

    @property
    def passed(self) -> bool:
        """Whether the measured value meets the target."""
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    @property
    def score(self) -> float:
        """How far the value is from the limit, as a factor: ≥ 1 passes."""
        if self.op == "<=":
            return self.limit / self.value if self.value else float("inf")
        return self.value / self.limit if self.limit else float("inf")

    def text(self) -> str:
        """``PASS  label: value (target op limit)``, with the miss when it fails."""
        verdict = "PASS" if self.passed else "FAIL"
        line = f"{verdict}  {self.label}: {fmt(self.value, self.unit)} (target {self.op} "
        line += f"{fmt(self.limit, self.unit)})"
        if not self.passed and self.limit:
            line += f", missed by {abs(self.value - self.limit) / self.limit:.0%}"
        return line


def fmt(value: float, unit: str) -> str:
    """A value with its unit, precise enough to read."""
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "%":
        return f"{value:.0%}" if value < 10 else f"{value:.0f}%"
    if unit in ("ms", "µs"):
        return f"{value:.2f} {unit}"
    if unit == "B":
        return f"{value:,.0f} B"
    return f"{value:g} {unit}".strip()


@dataclass
class Table:
    """A table of figures: a title, column names and rows of cells (already formatted)."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        """Append a row (cells are turned into text)."""
        self.rows.append([str(cell) for cell in cells])

    def render(self) -> str:
        """A plain-text rendering for the terminal."""
        widths = [len(name) for name in self.columns]
        for row in self.rows:
            widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=False)]
        lines = [self.title, ""]
        header = "  ".join(
            name.ljust(width) for name, width in zip(self.columns, widths, strict=False)
        )
        lines += [header, "-" * len(header)]
        for row in self.rows:
            cells = [
                cell.rjust(width) if index else cell.ljust(width)
                for index, (cell, width) in enumerate(zip(row, widths, strict=False))
            ]
            lines.append("  ".join(cells))
        return "\n".join(lines)


@dataclass
class Report:
    """What one benchmark found: tables, targets, notes and raw figures."""

    name: str
    title: str
    quick: bool = False
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: str | None = None

    def table(self, title: str, *columns: str) -> Table:
        """Start a new table."""
        table = Table(title, list(columns))
        self.tables.append(table)
        return table

    def target(self, label: str, value: float, op: str, limit: float, unit: str = "x") -> Target:
        """Record a target and whether it is met."""
        target = Target(label, value, op, limit, unit)
        self.targets.append(target)
        return target

    @property
    def passed(self) -> bool:
        """Whether every target is met."""
        return all(target.passed for target in self.targets)

    def render(self) -> str:
        """Everything, as text for the terminal."""
        parts = [f"== {self.title}" + (" (quick)" if self.quick else "")]
        if self.skipped:
            parts.append(f"skipped: {self.skipped}")
        parts += [table.render() for table in self.tables]
        if self.notes:
            parts.append("\n".join(f"* {note}" for note in self.notes))
        if self.targets:
            parts.append("\n".join(target.text() for target in self.targets))
        parts.append(f"({self.seconds:.1f} s)")
        return "\n\n".join(parts)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the runner reads it back with :meth:`from_json`)."""
        data = asdict(self)
        for target, item in zip(self.targets, data["targets"], strict=True):
            item["passed"] = target.passed
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        """Rebuild a report written by :meth:`to_json`."""
        tables = [Table(t["title"], t["columns"], t["rows"]) for t in data.get("tables", [])]
        targets = [
            Target(t["label"], t["value"], t["op"], t["limit"], t.get("unit", "x"))
            for t in data.get("targets", [])
        ]
        return cls(
            name=data["name"],
            title=data["title"],
            quick=data.get("quick", False),
            tables=tables,
            targets=targets,
            notes=data.get("notes", []),
            raw=data.get("raw", {}),
            seconds=data.get("seconds", 0.0),
            skipped=data.get("skipped"),
        )


def arguments(description: str, *, runs: int) -> argparse.ArgumentParser:
    """The common command line: ``--quick``, ``--runs N``, ``--json PATH``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--runs", type=int, default=runs, help="rounds per contender")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    return parser


def finish(report: Report, started: float, json_path: Path | None) -> int:
    """Print the report and write its JSON if asked; exit status 0 (misses are reported)."""
    report.seconds = time.perf_counter() - started
    print(report.render(), flush=True)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
    return 0


def main_of(
    description: str,
    runs: int,
    body: Callable[[argparse.Namespace, Report], None],
    *,
    name: str,
    title: str,
    setup: Callable[[argparse.ArgumentParser], None] | None = None,
) -> Callable[[list[str] | None], int]:
    """A ``main(argv)`` that parses the common arguments, runs ``body`` and prints its report."""

    def main(argv: list[str] | None = None) -> int:
        parser = arguments(description, runs=runs)
        if setup is not None:
            setup(parser)
        args = parser.parse_args(argv)
        report = Report(name=name, title=title, quick=args.quick)
        started = time.perf_counter()
        body(args, report)
        return finish(report, started, args.json)

    return main


# --------------------------------------------------------------------------- server processes


class ServerProcess:
    """A server run by ``python -m benchmarks._servers KIND …`` in its own process.

    The process prints ``listening on URL`` once it serves; :attr:`url` is that URL. It answers
    ``stats`` / ``reset`` lines on its standard input with one JSON line (see ``_servers``).
    Leaving the context terminates it (killed if it does not stop within a few seconds).
    """

    def __init__(
        self, kind: str, *args: str, python: str = PYTHON, ready_timeout: float = 30.0
    ) -> None:
        self._command = [python, "-m", "benchmarks._servers", kind, *args]
        self._ready_timeout = ready_timeout
        self._process: subprocess.Popen[str] | None = None
        self.url = ""

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self._process is not None
        return self._process.pid

    def __enter__(self) -> ServerProcess:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        env.pop("PYTHONASYNCIODEBUG", None)  # servers run at full speed, whoever starts them
        self._process = subprocess.Popen(
            self._command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        deadline = time.monotonic() + self._ready_timeout
        assert self._process.stdout is not None
        while time.monotonic() < deadline:
            line = self._process.stdout.readline()
            if not line:
                raise RuntimeError(f"server {self._command[3]} exited before it served")
            if line.startswith("listening on "):
                self.url = line.split("listening on ", 1)[1].strip()
                return self
        raise RuntimeError(f"server {self._command[3]} did not start in {self._ready_timeout} s")

    def ask(self, command: str) -> dict[str, Any]:
        """Send one command line (``stats``, ``reset``…) and read its JSON answer."""
        assert self._process is not None
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        answer: dict[str, Any] = json.loads(self._process.stdout.readline())
        return answer

    def cpu(self) -> float:
        """CPU seconds the server process has used so far."""
        return cpu_seconds(self.pid)

    def __exit__(self, *exc_info: object) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as took: ...`` then ``took[0]`` is the elapsed wall time in seconds."""
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)
