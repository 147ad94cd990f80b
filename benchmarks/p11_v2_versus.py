"""P11 Comfy API v2 head-to-head: comfy_async (``ComfyClient.v2``) against comfy-sdk's async client.

Both clients run the same jobs against the same server: the Comfy API v2 fake
(:class:`~comfy_async.testing.FakeComfyApiV2`, in front of the ComfyUI-faithful fake, durations
scaled to zero), a fresh one per run, in another process. Each client submits the P7 jobs
(EmptyImage → 20 progress steps → SaveImage, each image a colour of its own) all at once,
follows them to their end and fetches each saved image by its output link. Reported per client:
jobs completed correctly (the bytes for job *i* are the PNG saved for job *i*), wall time (first
submit → last result, inside the client process), client CPU time and peak RSS (``wait4``), TCP
connections and HTTP requests the v2 server saw.

comfy-sdk (pinned in ``requirements-peers.txt``) is installed on first use into
``benchmarks/.venv-comfy-sdk/`` (never committed); if it cannot be installed or run, that is
reported, never made up. comfy_async follows each job's SSE stream (its events reach the caller);
comfy-sdk's ``run`` polls each job to its end.

Target: comfy_async completes every job correctly, with wall time and CPU ≤ comfy-sdk's.

Run: ``python benchmarks/p11_v2_versus.py [--quick] [--runs N] [--jobs N] [--no-install]``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import PYTHON, Report, ensure_bytecode, main_of, median
from benchmarks.p7_versus import HERE, Client, ensure_env, peer_requirements, reason, run_client

if TYPE_CHECKING:
    import argparse

ADAPTERS = HERE / "p11_clients"


def contenders(*, install: bool) -> list[Client]:
    """comfy_async on the v2 API, then comfy-sdk (installed on demand unless told not to)."""
    found = [Client("comfy_async (v2)", "run_ours_v2.py", python=PYTHON)]
    requirement = peer_requirements()["comfy-sdk"]
    sdk = Client("comfy-sdk (AsyncComfy)", "run_comfy_sdk.py", requirement)
    sdk.python, sdk.problem = ensure_env("comfy-sdk", requirement, install=install)
    return [*found, sdk]


def body(args: argparse.Namespace, report: Report) -> None:
    ensure_bytecode()
    jobs = 16 if args.quick else args.jobs
    deadline = 30.0 if args.quick else args.deadline
    runs = 1 if args.quick else args.runs
    table = report.table(
        f"{jobs} concurrent jobs on the Comfy API v2 fake, 20 progress steps each; "
        f"medians of up to {runs} runs",
        "client",
        "correct",
        "wall s",
        "CPU s",
        "peak RSS MB",
        "TCP conns",
        "HTTP requests",
    )
    clients = contenders(install=not args.no_install)
    runs_of: dict[str, list[dict[str, Any]]] = {client.name: [] for client in clients}
    base = 5000
    for _ in range(runs):  # rounds interleave the clients, so the machine's noise falls on both
        for client in clients:
            done = runs_of[client.name]
            if client.python is None or (done and done[-1]["correct"] < jobs):
                continue
            base += jobs
            run = run_client(client, jobs, base, deadline, server_kind="v2", adapters=ADAPTERS)
            done.append(run)
            print(
                f"  {client.name}: {run['correct']}/{jobs} correct, wall {run['wall']}, "
                f"cpu {run['cpu']:.2f} s",
                flush=True,
            )
    rows: dict[str, Any] = {}
    for client in clients:
        if client.python is None:
            table.add(client.name, "—", "—", "—", "—", "—", "—")
            report.notes.append(f"{client.name}: {client.problem}")
            rows[client.name] = {"problem": client.problem}
            continue
        done = runs_of[client.name]
        complete = [run for run in done if run["correct"] == jobs]
        chosen = complete or done
        summary = {
            "runs": done,
            "all_correct": bool(complete) and len(complete) == len(done),
            "wall": median([run["wall"] for run in chosen if run["wall"] is not None] or [0.0]),
            "cpu": median([run["cpu"] for run in chosen]),
            "rss_mb": median([run["rss_mb"] for run in chosen]),
            "tcp": median([run["tcp"] for run in chosen]),
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
            f"{summary['http_requests']:.0f}",
        )
        why = reason(done[-1], jobs)
        if why:
            report.notes.append(f"{client.name}: {why}.")
        if summary["note"]:
            report.notes.append(f"{client.name} was driven as: {summary['note']}.")
    report.raw = {"jobs": jobs, "clients": rows}
    ours = rows.get("comfy_async (v2)", {})
    report.target(
        "P11 comfy_async jobs completed correctly", float(ours.get("correct", 0)), ">=", jobs, ""
    )
    peer = rows.get("comfy-sdk (AsyncComfy)", {})
    if not peer.get("all_correct"):
        report.notes.append("comfy-sdk did not complete every job correctly: nothing to compare")
        return
    report.target("P11 wall time / comfy-sdk", ours["wall"] / peer["wall"], "<=", 1.0)
    report.target("P11 client CPU / comfy-sdk", ours["cpu"] / peer["cpu"], "<=", 1.0)


def setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=64, help="concurrent jobs")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds per client run")
    parser.add_argument(
        "--no-install", action="store_true", help="skip comfy-sdk if it is not installed yet"
    )


main = main_of(
    __doc__.splitlines()[0],
    3,
    body,
    name="p11_v2_versus",
    title="P11 Comfy API v2: comfy_async versus comfy-sdk",
    setup=setup,
)

if __name__ == "__main__":
    raise SystemExit(main(None))
