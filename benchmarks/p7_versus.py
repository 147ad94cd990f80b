"""P7 versus other clients: the same 256 jobs through comfy_async and every installable peer.

The ComfyUI-faithful fake server runs in another process (a fresh one per client run, durations
scaled to zero so that the clients, not the server's sleeps, set the pace). Each client submits
256 raw API workflows at once — EmptyImage → 18 progress steps → 2 progress steps with a JPEG
preview each → SaveImage, so 20 progress steps and 2 previews per job, each job's image a colour
of its own — follows them to their end and fetches each saved image (``p7_clients/``: one adapter
per client, run in that client's own virtual environment). Reported per client:

* jobs completed correctly: the image bytes returned for job *i* are the PNG the server saved for
  job *i* (SHA-256), within the deadline; a hang or a wrong image is a failure, with the reason;
* wall time (first submit → last result, inside the client process), client CPU time and peak
  RSS (``wait4`` rusage of the client process), sockets opened (TCP connections and WebSockets
  the server accepted) and HTTP requests made (the server's request counters).

The peers are pinned in ``benchmarks/requirements-peers.txt`` and installed on first use into
``benchmarks/.venv-<name>/`` (never committed). A peer that cannot be installed, or cannot run a
raw API workflow, is reported as such; no peer result is made up.

Beside them, a **floor** row (``p7_clients/run_floor.py``, not a contender): the same jobs followed
on bare aiohttp with only what any client reading the WebSocket must pay (the submit, one decode
per frame, the download), to show how far below a peer any such client can go.

Target: comfy_async completes all 256 correctly, with wall time and CPU ≤ 0.5× the best peer
that completes them all.

Run: ``python benchmarks/p7_versus.py [--quick] [--runs N] [--jobs N] [--only NAME]
[--no-install]``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import PYTHON, ROOT, Report, ServerProcess, ensure_bytecode, main_of, median
from benchmarks.p7_clients._job import color, digest
from comfy_async.testing._images import solid_png

if TYPE_CHECKING:
    import argparse

HERE = ROOT / "benchmarks"
CLIENTS = HERE / "p7_clients"
REQUIREMENTS = HERE / "requirements-peers.txt"
#: The row of the lower bound (``p7_clients/run_floor.py``): shown beside the clients, never a peer.
FLOOR = "floor: bare aiohttp, one WebSocket"


@dataclass
class Client:
    """One contender: a name, its adapter, its interpreter (``None`` until installed)."""

    name: str
    adapter: str
    requirement: str | None = None
    python: str | None = None
    extra: list[str] = field(default_factory=list)
    problem: str | None = None


def peer_requirements() -> dict[str, str]:
    """Package name → pinned requirement line, from ``requirements-peers.txt``."""
    found: dict[str, str] = {}
    for text in REQUIREMENTS.read_text().splitlines():
        line = text.split("#", 1)[0].strip()
        if line:
            found[re.split(r"[\[=<>~ ]", line, maxsplit=1)[0]] = line
    return found


def ensure_env(name: str, requirement: str, *, install: bool) -> tuple[str | None, str | None]:
    """The interpreter of ``benchmarks/.venv-<name>`` with ``requirement`` in it, or why not."""
    folder = HERE / f".venv-{name}"
    python = folder / "bin" / "python"
    stamp = folder / ".installed"
    if stamp.exists() and stamp.read_text() == requirement:
        return str(python), None
    if not install:
        return None, "not installed (run without --no-install to install it)"
    print(f"installing {requirement} into {folder.relative_to(ROOT)} …", flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(folder)
    done = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            requirement,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-2:])[:300]
        return None, f"pip install failed: {tail}"
    stamp.write_text(requirement)
    return str(python), None


def clients(only: str | None, *, install: bool, quick: bool) -> list[Client]:
    """comfy_async first, then every peer (installed on demand unless ``install`` is false)."""
    found = [
        Client("comfy_async", "run_ours.py", python=PYTHON),
        Client(FLOOR, "run_floor.py", python=PYTHON),
    ]
    if not quick:
        pins = peer_requirements()
        found += [
            Client(
                "comfykit (http, its default)", "run_comfykit.py", pins["comfykit"], extra=["http"]
            ),
            Client(
                "comfykit (websocket)", "run_comfykit.py", pins["comfykit"], extra=["websocket"]
            ),
            Client("comfy-headless", "run_comfy_headless.py", pins["comfy-headless"]),
            Client(
                "comfyui-async-api-tool",
                "run_comfyui_async_api_tool.py",
                pins["comfyui-async-api-tool"],
            ),
            Client(
                "comfy-api-simplified", "run_comfy_api_simplified.py", pins["comfy-api-simplified"]
            ),
            Client("comfy-catapult", "run_comfy_catapult.py", pins["comfy-catapult"]),
        ]
    if only:
        wanted = [part.strip() for part in only.split(",") if part.strip()]
        found = [client for client in found if any(part in client.name for part in wanted)]
    for client in found:
        if client.requirement is not None:
            package = re.split(r"[\[=]", client.requirement, maxsplit=1)[0]
            client.python, client.problem = ensure_env(package, client.requirement, install=install)
    return found


def expected_digests(jobs: int, base: int) -> list[str]:
    """The SHA-256 of the PNG the fake server saves for each job."""
    return [digest(solid_png(32, 16, color(index, base))) for index in range(jobs)]


def run_client(
    client: Client,
    jobs: int,
    base: int,
    deadline: float,
    *,
    server_kind: str = "fake",
    adapters: Path = CLIENTS,
) -> dict[str, Any]:
    """One run of one client against a fresh fake server; every figure of the row."""
    assert client.python is not None
    with ServerProcess(server_kind) as server, tempfile.TemporaryDirectory() as folder:
        server.ask("reset")
        result = Path(folder) / "result.json"
        log = Path(folder) / "log.txt"
        command = [
            client.python,
            str(adapters / client.adapter),
            server.url,
            str(jobs),
            str(base),
            str(deadline),
            str(result),
            *client.extra,
        ]
        started = time.perf_counter()
        with log.open("w") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=folder)
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
            time.sleep(0.05)
        process.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - started
        stats = server.ask("stats")
        found = json.loads(result.read_text()) if result.exists() else {}
        tail = log.read_text()[-600:] if log.exists() else ""
    expected = expected_digests(jobs, base)
    outcomes = found.get("results", {})
    correct = sum(
        1 for index in range(jobs) if outcomes.get(str(index), {}).get("sha256") == expected[index]
    )
    errors = [item["error"] for item in outcomes.values() if "error" in item]
    wrong = sum(
        1
        for index in range(jobs)
        if "sha256" in outcomes.get(str(index), {})
        and outcomes[str(index)]["sha256"] != expected[index]
    )
    requests = {
        key: count for key, count in stats.get("requests", {}).items() if not key.endswith("/ws")
    }
    return {
        "correct": correct,
        "wrong": wrong,
        "missing": jobs - len(outcomes),
        "errors": errors[:3],
        "error_count": len(errors),
        "wall": found.get("wall"),
        "process_seconds": elapsed,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
        "tcp": stats.get("tcp", 0),
        "ws": stats.get("ws", 0),
        "http_requests": sum(requests.values()),
        "requests": requests,
        "hung": hung,
        "exit": process.returncode,
        "note": found.get("note", ""),
        "events": found.get("events"),
        "log_tail": "" if found else tail,
    }


def reason(run: dict[str, Any], jobs: int) -> str:
    """Why a run did not complete every job correctly ("" when it did)."""
    if run["correct"] == jobs:
        return ""
    parts = []
    if run["hung"]:
        parts.append("the client process did not finish by the deadline (killed)")
    elif run["exit"] != 0 or run["wall"] is None:
        parts.append(f"the client process exited with status {run['exit']} and no result")
    if run["wrong"]:
        parts.append(f"{run['wrong']} wrong image(s)")
    if run["missing"]:
        parts.append(f"{run['missing']} job(s) with no result by the deadline")
    if run["errors"]:
        parts.append("errors: " + "; ".join(sorted(set(run["errors"])))[:300])
    if run["log_tail"]:
        parts.append("output: " + " ".join(run["log_tail"].split())[-300:])
    return ", ".join(parts)


def body(args: argparse.Namespace, report: Report) -> None:
    ensure_bytecode()
    jobs = 16 if args.quick else args.jobs
    deadline = 30.0 if args.quick else args.deadline
    runs = 1 if args.quick else args.runs
    table = report.table(
        f"{jobs} concurrent jobs, 20 progress steps and 2 previews each; "
        f"medians of up to {runs} runs",
        "client",
        "correct",
        "wall s",
        "CPU s",
        "peak RSS MB",
        "TCP conns",
        "WebSockets",
        "HTTP requests",
    )
    rows: dict[str, Any] = {}
    base = 1000
    contenders = clients(args.only, install=not args.no_install, quick=args.quick)
    runs_of: dict[str, list[dict[str, Any]]] = {client.name: [] for client in contenders}
    # Rounds interleave the clients (A B C, A B C…), so that the machine's noise falls on all.
    for _ in range(runs):
        for client in contenders:
            done = runs_of[client.name]
            if client.python is None or (done and done[-1]["correct"] < jobs):
                continue  # not installed, or it failed once: its first failure says it all
            base += jobs
            run = run_client(client, jobs, base, deadline)
            done.append(run)
            print(
                f"  {client.name}: {run['correct']}/{jobs} correct, wall {run['wall']}, "
                f"cpu {run['cpu']:.2f} s",
                flush=True,
            )
    for client in contenders:
        if client.python is None:
            table.add(client.name, "—", "—", "—", "—", "—", "—", "—")
            report.notes.append(f"{client.name}: {client.problem}")
            rows[client.name] = {"problem": client.problem}
            continue
        done = runs_of[client.name]
        complete = [run for run in done if run["correct"] == jobs]
        chosen = complete or done
        summary = {
            "runs": done,
            "all_correct": bool(complete) and len(complete) == len(done),
            "wall": median([run["wall"] for run in chosen if run["wall"] is not None]),
            "cpu": median([run["cpu"] for run in chosen]),
            "rss_mb": median([run["rss_mb"] for run in chosen]),
            "tcp": median([run["tcp"] for run in chosen]),
            "ws": median([run["ws"] for run in chosen]),
            "http_requests": median([run["http_requests"] for run in chosen]),
            "correct": min(run["correct"] for run in done),
            "note": done[0]["note"],
        }
        rows[client.name] = summary
        wall = f"{summary['wall']:.2f}" if complete else f"({summary['wall']:.1f})"
        table.add(
            client.name,
            f"{summary['correct']}/{jobs}",
            wall,
            f"{summary['cpu']:.2f}",
            f"{summary['rss_mb']:.0f}",
            f"{summary['tcp']:.0f}",
            f"{summary['ws']:.0f}",
            f"{summary['http_requests']:.0f}",
        )
        why = reason(done[-1], jobs)
        if why:
            report.notes.append(f"{client.name}: {why}.")
        if summary["note"]:
            report.notes.append(f"{client.name} was driven as: {summary['note']}.")
    report.raw = {"jobs": jobs, "clients": rows}
    events = (rows.get("comfy_async", {}).get("runs") or [{}])[0].get("events")
    if events:
        report.notes.append(
            f"comfy_async handed every job's events to its consumer ({events['progress']:,} "
            f"progress events and {events['previews']:,} previews for {jobs} jobs); comfykit's "
            "default http executor opens no WebSocket, so its users get no progress or preview "
            "at all (it polls /history every second)."
        )
    ours = rows.get("comfy_async")
    if ours is None:
        report.notes.append("comfy_async was not run (--only): no target is checked")
        return
    report.target(
        "P7 comfy_async jobs completed correctly", float(ours.get("correct", 0)), ">=", jobs, ""
    )
    floor = rows.get(FLOOR, {})
    peers = {
        name: row
        for name, row in rows.items()
        if name not in ("comfy_async", FLOOR) and row.get("all_correct")
    }
    if not peers:
        report.notes.append("no peer completed every job correctly: nothing to compare against")
        return
    best_wall = min(peers, key=lambda name: peers[name]["wall"])
    best_cpu = min(peers, key=lambda name: peers[name]["cpu"])
    if floor.get("all_correct"):
        report.notes.append(
            f"The floor row is no client: it follows the jobs on bare aiohttp with the two "
            f"requests per job and one orjson decode per frame that any client reading the "
            f"WebSocket must pay, and nothing else (no error handling, retries, confirmation or "
            f"hand-off of events; p7_clients/run_floor.py). Its CPU is "
            f"{floor['cpu'] / peers[best_cpu]['cpu']:.2f}x the best peer's and its wall time "
            f"{floor['wall'] / peers[best_wall]['wall']:.2f}x; comfy_async spends "
            f"{ours['cpu'] / floor['cpu']:.2f}x the floor's CPU and "
            f"{ours['wall'] / floor['wall']:.2f}x its wall time."
        )
    report.target(
        f"P7 wall time / best complete peer ({best_wall})",
        ours["wall"] / peers[best_wall]["wall"],
        "<=",
        0.5,
    )
    report.target(
        f"P7 client CPU / best complete peer ({best_cpu})",
        ours["cpu"] / peers[best_cpu]["cpu"],
        "<=",
        0.5,
    )


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=256, help="concurrent jobs")
    parser.add_argument("--deadline", type=float, default=90.0, help="seconds per client run")
    parser.add_argument(
        "--only", help="run only the clients whose name contains one of these (comma-separated)"
    )
    parser.add_argument(
        "--no-install", action="store_true", help="skip peers that are not installed yet"
    )


main = main_of(
    __doc__.splitlines()[0], 3, body, name="p7_versus", title="P7 versus other clients", setup=setup
)

if __name__ == "__main__":
    raise SystemExit(main(None))
