"""P8 pool: 2,000 jobs over a mixed fleet of 8 servers, two of them killed, one brought back.

Eight fake ComfyUI servers, each in its own process (speeds 1×, 1×, 2×, 2×, 3×, 3×, 4×, 4×: a
job's sampler takes 0.4 s at 1×), all holding two checkpoints of which only one fits in VRAM at
a time, and a cold load costs 0.8 s at 1× (loads scale with speed too). 2,000 jobs — the SD 1.5
workflow of `examples/workflows/`, each with a fresh seed and one of the two checkpoints, mixed
at random — go through the fleet; at 25 % of the no-failure ideal time one 4× server is killed
(SIGKILL: its queue and VRAM are gone), at 40 % a 2× server, and at 60 % the 4× one comes back,
cold, on the same port. Every contender gets a fresh fleet, the same jobs and the same kills, in
the same run, and runs in its own process (`p8_drive.py`): comfy_async's `ComfyPool` with its
defaults (it is told nothing of the speeds, the load cost or the VRAM); a round-robin over one
`ComfyClient` per server (each job to the next server in turn with fewer than 2 of its jobs
queued; nothing moves a job when a server dies); and the peer pool, @saintno/comfyui-sdk's
`ComfyPool` in its default mode, driven as its README shows by `p8_peer/run_peer.mjs` under
Node (its job queue made room for the whole batch, as it refuses more than 1,000 by default;
the exceptions its timers throw when a server dies are caught, else its process ends). The
ideal schedule is a lower bound from the same durations: the smallest T for which the fleet's
capacity over [0, T] — each server life (from start, or return, to kill) giving its speed × its
time alive, minus one cold load, and never less than 0 — covers the total work (jobs × 0.4 s at
1×); it ignores every overhead and lets any job be split across servers, so no schedule beats
it. Jobs lost (never run to success on any server) and jobs run to success twice come from the
servers' own logs of every prompt they ran, written line by line so that they survive the
kills. A run that has not ended 30 s after 2.5× the no-failure ideal is stopped and reported as
hung. Client CPU is the driver process's CPU over the run, beside one `ComfyClient` running a
quarter of the jobs (one checkpoint) on one 4× server without loads or kills.

Targets: makespan / ideal ≤ 1.10; model loads / round-robin's ≤ 0.3; 0 jobs lost; 0 jobs run
to success twice.

Run: ``python benchmarks/p8_pool.py [--quick] [--runs N] [--jobs N] [--only pool,peer]
[--no-install]``. The peer is installed on first use from ``p8_peer/package-lock.json``
(``npm ci``; node_modules are not committed); without Node or with ``--no-install`` and no
install, it is reported as not run.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import PYTHON, ROOT, Report, ServerProcess, ensure_bytecode, main_of, median

if TYPE_CHECKING:
    import argparse

PEER = ROOT / "benchmarks" / "p8_peer"
CHECKPOINTS = ("v1-5-pruned-emaonly.safetensors", "dreamshaper_8.safetensors")
SPEEDS = (1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0)
VRAM_GIB = 6.0  # a checkpoint takes 4 GiB: one at a time
STEPS = 4
KILLS = ((0.25, "kill", 6), (0.40, "kill", 3), (0.60, "back", 6))
"""(fraction of the no-failure ideal time, what, server index)."""
CONTENDERS = ("comfy_async ComfyPool", "round-robin over ComfyClients", "peer")
PEER_NAME = "@saintno/comfyui-sdk ComfyPool"


@dataclass
class Sizes:
    """How big a run is."""

    jobs: int
    job_seconds: float
    load_seconds: float
    grace: float = 30.0
    """Seconds a run may take beyond 2.5× the no-failure ideal before it counts as hung."""

    @property
    def work(self) -> float:
        """Total sampler seconds at 1×."""
        return self.jobs * self.job_seconds

    @property
    def plain_ideal(self) -> float:
        """Seconds the whole fleet needs without failures, loads or overheads."""
        return self.work / sum(SPEEDS)


@dataclass
class Slot:
    """One server position of the fleet: its process, its log, its lives."""

    speed: float
    log: Path
    process: ServerProcess | None = None
    port: int = 0
    lives: list[list[float]] = field(default_factory=list)

    def start(self, sizes: Sizes) -> ServerProcess:
        args = [
            "--speed",
            str(self.speed),
            "--load-time",
            str(sizes.load_seconds),
            "--vram-gib",
            str(VRAM_GIB),
            "--checkpoints",
            ",".join(CHECKPOINTS),
            "--job-seconds",
            str(sizes.job_seconds),
            "--log",
            str(self.log),
            "--port",
            str(self.port),
        ]
        process = ServerProcess("fleet", *args).__enter__()
        self.process = process
        self.port = int(process.url.rsplit(":", 1)[1])
        return process

    def kill(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.__exit__(None, None, None)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.__exit__(None, None, None)


def the_jobs(count: int, round_: int, *, groups: int = 2) -> list[list[Any]]:
    """``[seed, checkpoint]`` per job: fresh seeds, the groups mixed at random (seeded)."""
    picker = random.Random(8)
    groups_of = [CHECKPOINTS[index % groups] for index in range(count)]
    picker.shuffle(groups_of)
    base = 1_000_000 * (round_ + 1)
    return [[base + index, group] for index, group in enumerate(groups_of)]


def ideal_makespan(lives: list[tuple[float, float, float]], work: float, load: float) -> float:
    """The lower bound: the smallest T whose capacity covers ``work`` (see the docstring).

    ``lives`` are ``(speed, start, end)`` in seconds from the first submit (``end`` may be
    infinite); each life that runs anything pays at least one cold load.
    """

    def capacity(horizon: float) -> float:
        return sum(
            max(0.0, speed * (min(horizon, end) - start) - load)
            for speed, start, end in lives
            if horizon > start
        )

    low, high = 0.0, 1.0
    while capacity(high) < work:
        high *= 2
    for _ in range(60):
        middle = (low + high) / 2
        if capacity(middle) >= work:
            high = middle
        else:
            low = middle
    return high


class _Lines:
    """A process's standard output read by a thread, line by line."""

    def __init__(self, stream: Any) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._stream = stream
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put("")

    def close(self) -> None:
        """Once the process has ended: read the rest of its output (for a report), close it."""
        self._thread.join(timeout=5)
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                break
        self._stream.close()

    def wait_for(self, text: str, limit: float) -> bool:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(line)
            if line.strip() == text:
                return True
            if line == "":
                return False
        return False


def driver_env() -> dict[str, str]:
    """The drivers' environment: the checkout importable, at full speed (no asyncio debug)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONASYNCIODEBUG", None)
    return env


def driver_command(contender: str, config: Path, result: Path) -> list[str]:
    if contender == "peer":
        return ["node", str(PEER / "run_peer.mjs"), str(config), str(result)]
    mode = {"comfy_async ComfyPool": "pool", "round-robin over ComfyClients": "round-robin"}.get(
        contender, "single"
    )
    return [PYTHON, "-m", "benchmarks.p8_drive", mode, str(config), str(result)]


def read_log(path: Path) -> tuple[list[tuple[str, str]], int]:
    """``(seed, outcome)`` of every prompt a server ran, and its cold loads."""
    runs: list[tuple[str, str]] = []
    loads = 0
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split()
            if parts[:1] == ["run"] and len(parts) == 4:
                runs.append((parts[2], parts[3]))
            elif parts[:1] == ["load"]:
                loads += 1
    return runs, loads


def run_contender(contender: str, sizes: Sizes, round_: int, *, kills: bool) -> dict[str, Any]:
    """One contender against a fresh fleet: every figure of its row."""
    jobs = the_jobs(sizes.jobs, round_, groups=1 if contender == "single" else 2)
    deadline = 2.5 * sizes.plain_ideal + sizes.grace
    speeds = SPEEDS if contender != "single" else (4.0,)
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        slots = [Slot(speed, folder / f"server-{index}.log") for index, speed in enumerate(speeds)]
        with ThreadPoolExecutor(len(slots)) as starting:
            list(starting.map(lambda slot: slot.start(sizes), slots))
        try:
            config = folder / "config.json"
            result_path = folder / "result.json"
            config.write_text(
                json.dumps(
                    {
                        "urls": [slot.process.url for slot in slots if slot.process],
                        "jobs": jobs,
                        "steps": STEPS,
                        "deadline": deadline,
                        "pool": {},
                    }
                )
            )
            process = subprocess.Popen(
                driver_command(contender, config, result_path),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=ROOT,
                env=driver_env(),
            )
            lines = _Lines(process.stdout)
            if not lines.wait_for("started", 120):
                process.kill()
                process.wait()
                lines.close()
                return {"problem": "did not start: " + " ".join("".join(lines.seen).split())[-300:]}
            t0 = time.perf_counter()
            for slot in slots:
                slot.lives.append([0.0, float("inf")])
            events = [
                (fraction * sizes.plain_ideal, what, index) for fraction, what, index in KILLS
            ]
            if not kills:
                events = []
            hung = False
            limit = time.monotonic() + deadline + 30
            while True:
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > limit:
                    process.kill()
                    pid, status, usage = os.wait4(process.pid, 0)
                    hung = True
                    break
                now = time.perf_counter() - t0
                if events and now >= events[0][0]:
                    _, what, index = events.pop(0)
                    slot = slots[index]
                    if what == "kill":
                        slot.kill()
                        slot.lives[-1][1] = time.perf_counter() - t0
                    else:
                        slot.start(sizes)
                        slot.lives.append([time.perf_counter() - t0, float("inf")])
                time.sleep(0.02)
            process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
            lines.close()
            found = json.loads(result_path.read_text()) if result_path.exists() else {}
        finally:
            for slot in slots:
                slot.stop()
        logs = [read_log(slot.log) for slot in slots]
    successes: dict[str, int] = {}
    per_server = []
    for slot, (runs, loads) in zip(slots, logs, strict=True):
        ran = 0
        for seed, outcome in runs:
            if outcome == "success":
                successes[seed] = successes.get(seed, 0) + 1
                ran += 1
        per_server.append({"speed": slot.speed, "jobs": ran, "loads": loads})
    seeds = [str(seed) for seed, _ in jobs]
    outcomes = found.get("outcomes", {})
    lives = [(slot.speed, start, end) for slot in slots for start, end in slot.lives]
    ideal = ideal_makespan(lives, sizes.work, sizes.load_seconds)
    wall = found.get("wall") if not found.get("note") else None
    errors = [outcome for outcome in outcomes.values() if outcome != "ok"]
    return {
        "wall": wall,
        "ideal": ideal,
        "ratio": (wall / ideal) if wall else None,
        "last_outcome": found.get("last_outcome"),
        "ok": sum(1 for seed in seeds if outcomes.get(seed) == "ok"),
        "failed": len(errors),
        "no_outcome": sum(1 for seed in seeds if seed not in outcomes),
        "errors": sorted(set(errors))[:3],
        "lost": sum(1 for seed in seeds if successes.get(seed, 0) == 0),
        "twice": sum(1 for seed in seeds if successes.get(seed, 0) > 1),
        "loads": sum(loads for _, loads in logs),
        "cpu": found.get("cpu"),
        "cpu_total": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
        "hung": hung,
        "exit": os.waitstatus_to_exitcode(status),
        "note": found.get("note", ""),
        "uncaught": found.get("uncaught", 0),
        "first_uncaught": found.get("first_uncaught", ""),
        "per_server": per_server,
        "lives": [[slot.speed, *life] for slot in slots for life in slot.lives],
        "jobs": len(jobs),
        "log_tail": "" if found.get("outcomes") else _first_error(lines.seen),
    }


def _first_error(output: list[str]) -> str:
    """The first line of the output that names an error (else its tail), for the report."""
    for line in output:
        if "Error" in line or "error" in line:
            return " ".join(line.split())[:300]
    return " ".join("".join(output).split())[-300:]


def ensure_peer(*, install: bool) -> str | None:
    """Why the peer cannot run (``None`` when it can); installs it from the lockfile if asked."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "Node.js (node and npm) is not on the PATH"
    if (PEER / "node_modules" / "@saintno" / "comfyui-sdk" / "package.json").exists():
        return None
    if not install:
        return "not installed (run without --no-install to install it)"
    print(f"installing the peer into {PEER.relative_to(ROOT)} (npm ci) …", flush=True)
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=PEER,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return "npm ci failed: " + " ".join(done.stderr.strip().splitlines()[-2:])[:300]
    return None


def _hung(runs: list[dict[str, Any]]) -> str:
    """The makespan cell of a contender that never ended all its jobs."""
    last = [run["last_outcome"] for run in runs if run.get("last_outcome")]
    return f"hung (last outcome at {spread(last, '{:.1f}')})" if last else "hung"


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """``median (min–max)``, or the one value."""
    if not values:
        return "—"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def overhead_note(raw: dict[str, Any]) -> str:
    """What the fake servers' own work per job costs, from the single-server run ("" if none)."""
    single = raw.get("contenders", {}).get("single", {}).get("runs", [])
    costs = [
        (run["wall"] - run["ideal"]) / run["jobs"]
        for run in single
        if run.get("wall") and run.get("ideal") and run.get("jobs")
    ]
    if not costs:
        return ""
    cost = median(costs)
    fast = 1000 * raw["sizes"]["job_seconds"] / max(SPEEDS)
    return (
        f"The ideal counts only the simulated durations. Each job also costs a server its own "
        f"work and a round trip (the HTTP submit, validation, events, the image): "
        f"{1000 * cost:.1f} ms per job in the single-server run (its makespan over its ideal, "
        f"per job), {cost * 1000 / fast:.0%} of a job's {fast:.0f} ms on a 4× server, and every "
        f"contender pays it."
    )


def body(args: argparse.Namespace, report: Report) -> None:
    ensure_bytecode()
    if args.quick:
        sizes = Sizes(jobs=args.jobs or 80, job_seconds=0.1, load_seconds=0.2, grace=15.0)
    else:
        sizes = Sizes(jobs=args.jobs or 2000, job_seconds=0.4, load_seconds=0.8)
    runs = 1 if args.quick else args.runs
    wanted = [part.strip() for part in (args.only or "").split(",") if part.strip()]
    contenders = [
        name
        for name in CONTENDERS
        if not wanted or any(part in name.lower() or part == name for part in wanted)
    ]
    problem = None
    if "peer" in contenders:
        problem = ensure_peer(install=not args.no_install and not args.quick)
        if problem is not None:
            contenders.remove("peer")
            report.notes.append(f"{PEER_NAME}: {problem}.")
    runs_of: dict[str, list[dict[str, Any]]] = {name: [] for name in [*contenders, "single"]}
    for round_ in range(runs):
        for contender in [*contenders, "single"]:
            small = Sizes(max(1, sizes.jobs // 4), sizes.job_seconds / 10, 0.0, sizes.grace)
            run = (
                run_contender("single", small, round_, kills=False)
                if contender == "single"
                else run_contender(contender, sizes, round_, kills=True)
            )
            runs_of[contender].append(run)
            if "problem" in run:
                print(f"  {contender}: {run['problem']}", flush=True)
                continue
            ratio = f"{run['ratio']:.2f}" if run["ratio"] else "—"
            print(
                f"  round {round_ + 1} {contender}: {run['ok']}/{run['jobs']} ok, "
                f"lost {run['lost']}, twice {run['twice']}, loads {run['loads']}, "
                f"makespan {run['wall']} s (ideal {run['ideal']:.1f} s, ×{ratio}), "
                f"cpu {run['cpu']}",
                flush=True,
            )
    table = report.table(
        f"{sizes.jobs} jobs over 8 servers (speeds {'/'.join(f'{s:g}' for s in SPEEDS)}×), two "
        f"killed and one back; median (min–max) of {runs} round(s)",
        "contender",
        "succeeded",
        "lost",
        "run twice",
        "makespan s",
        "ideal s",
        "makespan / ideal",
        "model loads",
        "loads / round-robin",
        "client CPU ms/job",
    )
    rows: dict[str, Any] = {}
    baseline = [
        run["loads"] for run in runs_of.get("round-robin over ComfyClients", []) if "loads" in run
    ]
    for contender in contenders:
        done = [run for run in runs_of[contender] if "problem" not in run]
        label = PEER_NAME if contender == "peer" else contender
        if not done:
            why = runs_of[contender][0].get("problem", "no run") if runs_of[contender] else "no run"
            table.add(label, "—", "—", "—", "—", "—", "—", "—", "—", "—")
            report.notes.append(f"{label}: {why}.")
            continue
        walls = [run["wall"] for run in done if run["wall"]]
        ratios = [run["ratio"] for run in done if run["ratio"]]
        loads = [float(run["loads"]) for run in done]
        cpu = [1000 * run["cpu"] / run["jobs"] for run in done if run["cpu"] is not None]
        summary = {
            "runs": done,
            "ok": min(run["ok"] for run in done),
            "lost": max(run["lost"] for run in done),
            "twice": max(run["twice"] for run in done),
            "wall": median(walls) if walls else None,
            "ratio": median(ratios) if ratios else None,
            "loads": median(loads),
            "cpu_ms_per_job": median(cpu) if cpu else None,
            "hung": any(run["hung"] for run in done),
        }
        rows[contender] = summary
        load_ratio = (
            spread([run["loads"] / base for run, base in zip(done, baseline, strict=False) if base])
            if baseline
            else "—"
        )
        table.add(
            label,
            f"{summary['ok']}/{sizes.jobs}",
            str(summary["lost"]),
            str(summary["twice"]),
            spread(walls, "{:.1f}") if walls else _hung(done),
            spread([run["ideal"] for run in done], "{:.1f}"),
            spread(ratios) if ratios else "—",
            spread(loads, "{:.0f}"),
            load_ratio,
            spread(cpu, "{:.2f}"),
        )
        for run in done:
            if run["hung"] or run["note"] or run["failed"] or run["no_outcome"] or run["uncaught"]:
                parts = []
                if run["uncaught"]:
                    parts.append(
                        f"{run['uncaught']} uncaught exception(s) thrown by the client "
                        f"({run['first_uncaught']}; caught by the driver, else the process dies)"
                    )
                if run["hung"] or run["note"]:
                    parts.append(run["note"] or "the driver did not finish (killed)")
                    if run.get("last_outcome"):
                        parts.append(f"its last outcome came at {run['last_outcome']:.1f} s")
                if run["no_outcome"]:
                    parts.append(f"{run['no_outcome']} job(s) had no outcome")
                if run["failed"]:
                    parts.append(
                        f"{run['failed']} failed at the client: " + "; ".join(run["errors"])
                    )
                if run["log_tail"]:
                    parts.append("output: " + run["log_tail"])
                report.notes.append(f"{label}: " + ", ".join(parts)[:600] + ".")
                break
    single = [run for run in runs_of["single"] if "problem" not in run]
    if single:
        cpu = [1000 * run["cpu"] / run["jobs"] for run in single if run["cpu"] is not None]
        rows["single"] = {"runs": single, "cpu_ms_per_job": median(cpu) if cpu else None}
        cpu_table = report.table(
            "Client CPU per job (median (min–max))", "client", "jobs", "client CPU ms/job"
        )
        cpu_table.add(
            "one ComfyClient, one server (4×, no loads, no kills)", single[0]["jobs"], spread(cpu)
        )
        for contender in contenders:
            if contender in rows and rows[contender]["cpu_ms_per_job"] is not None:
                label = PEER_NAME if contender == "peer" else contender
                cpu_values = [
                    1000 * run["cpu"] / run["jobs"]
                    for run in rows[contender]["runs"]
                    if run["cpu"] is not None
                ]
                cpu_table.add(f"{label}, the fleet", sizes.jobs, spread(cpu_values))
    last = {name: rows[name]["runs"][-1] for name in contenders if name in rows}
    if last:
        fleet = report.table(
            "Where the jobs ran, last round: jobs run to success / cold loads per server",
            "server",
            "speed",
            "fate",
            *[PEER_NAME if name == "peer" else name for name in last],
        )
        any_run = next(iter(last.values()))
        fates = {6: "killed at 25 %, back at 60 %", 3: "killed at 40 %"}
        for index, speed in enumerate(SPEEDS):
            fleet.add(
                f"server {index + 1}",
                f"{speed:g}×",
                fates.get(index, "up"),
                *[
                    f"{run['per_server'][index]['jobs']} / {run['per_server'][index]['loads']}"
                    for run in last.values()
                ],
            )
        del any_run
    report.notes.append(
        "Lost: jobs that never ran to success on any server; run twice: jobs that ran to "
        "success on two servers (or twice on one), both from the servers' logs. Makespan: "
        "first submit to last outcome, in the driver process; the pools' start-up (connecting, "
        "reading each server's catalogue) is before the clock."
    )
    report.raw = {"jobs": sizes.jobs, "sizes": vars(sizes), "rounds": runs, "contenders": rows}
    note = overhead_note(report.raw)
    if note:
        report.notes.append(note)
    ours = rows.get("comfy_async ComfyPool")
    if ours is None:
        report.notes.append("comfy_async's pool was not run (--only): no target is checked")
        return
    report.target(
        "P8 makespan / ideal schedule (lower bound)", ours["ratio"] or float("inf"), "<=", 1.10
    )
    rr = rows.get("round-robin over ComfyClients")
    if rr is not None and rr["loads"]:
        report.target("P8 model loads / round-robin's", ours["loads"] / rr["loads"], "<=", 0.3)
    report.target("P8 jobs lost", float(ours["lost"]), "<=", 0, "")
    report.target("P8 jobs run to success twice", float(ours["twice"]), "<=", 0, "")


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=0, help="jobs per contender run")
    parser.add_argument(
        "--only", help="contenders whose name contains one of these (pool, round-robin, peer)"
    )
    parser.add_argument(
        "--no-install", action="store_true", help="skip the peer when it is not installed yet"
    )


main = main_of(__doc__.splitlines()[0], 3, body, name="p8_pool", title="P8 pool", setup=setup)

if __name__ == "__main__":
    raise SystemExit(main(None))
