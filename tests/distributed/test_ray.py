"""Batches on a local Ray: workers die mid-run, and still each item runs once, with one outcome.

Three fake servers run in processes of their own and count, on their side, every POST per
prompt id and every prompt that ran to success. Ray starts locally on loopback (two CPUs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from comfy_async import batch_prompt_id
from comfy_async.cli import main
from comfy_async.ray import ComfyRunner, ComfyWorker
from tests.distributed.fleet import FakeFleet, fake_fleet, items, small_sd15

if TYPE_CHECKING:
    from collections.abc import Iterator

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install comfy-async[ray])")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ITEMS = 200
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CHUNK = 10


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
        configure_logging=False,
    )
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def fleet() -> Iterator[FakeFleet]:
    with fake_fleet(3, time_scale=0.05) as servers:
        yield servers


def run_batch_on_actors(
    fleet: FakeFleet, batch_id: str, *, kill_after: int | None
) -> tuple[list[dict[str, Any]], int]:
    """Run the items on two restartable actors, ``CHUNK`` per call; kill one mid-run."""
    worker = ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=0.5)(ComfyWorker)
    actors = [
        worker.remote(fleet.urls, small_sd15(), batch_id=batch_id, timeout=60) for _ in range(2)
    ]
    work = items(ITEMS)
    chunks = [work[start : start + CHUNK] for start in range(0, ITEMS, CHUNK)]
    pending = [actors[index % 2].run_many.remote(chunk) for index, chunk in enumerate(chunks)]
    results: list[dict[str, Any]] = []
    kills = 0
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        results.extend(ray.get(done[0]))
        if kill_after is not None and kills == 0 and len(results) >= kill_after:
            ray.kill(actors[0], no_restart=False)  # the process dies; Ray restarts the actor
            kills += 1
    return results, kills


def test_a_worker_killed_mid_run_loses_nothing_and_runs_nothing_twice(
    local_ray: None, fleet: FakeFleet
) -> None:
    started = time.monotonic()
    results, kills = run_batch_on_actors(fleet, "kill-test", kill_after=ITEMS // 4)
    first_run = time.monotonic() - started
    assert kills == 1
    keys = sorted(result["key"] for result in results)
    assert keys == sorted(item["key"] for item in items(ITEMS))  # one outcome per item
    assert {result["status"] for result in results} == {"success"}
    for result in results:
        assert result["prompt_id"] == batch_prompt_id("kill-test", result["key"])
    tally = fleet.tally()
    ours = {batch_prompt_id("kill-test", item["key"]) for item in items(ITEMS)}
    assert set(tally.successes) >= ours
    assert all(tally.successes[prompt_id] == 1 for prompt_id in ours)  # ran once each
    assert tally.most_posts_on_one_server == 1  # never POSTed twice to one server
    posts_before = tally.total_posts

    again, _ = run_batch_on_actors(fleet, "kill-test", kill_after=None)
    assert sorted(result["key"] for result in again) == keys
    assert {result["status"] for result in again} == {"success"}
    after = fleet.tally()
    assert after.total_posts == posts_before  # the re-run did no new work
    assert after.successes == tally.successes
    print(
        f"{ITEMS} items, {len(results)} outcomes, {posts_before} POSTs, "
        f"{sum(tally.successes[p] for p in ours)} runs, first run {first_run:.1f} s"
    )


def test_the_ray_data_callable_runs_batches_on_a_worker(local_ray: None, fleet: FakeFleet) -> None:
    runner = ray.remote(max_restarts=-1, max_task_retries=-1, num_cpus=0.5)(ComfyRunner)
    actor = runner.remote(fleet.urls, small_sd15(), batch_id="runner-test")
    work = items(12, prefix="row")
    batch = {name: [item.get(name) for item in work] for name in ("key", "seed", "inputs")}
    answer = ray.get(actor.__call__.remote(batch))
    assert answer["key"] == [item["key"] for item in work]  # in order
    assert set(answer["status"]) == {"success"}
    assert answer["prompt_id"] == [batch_prompt_id("runner-test", item["key"]) for item in work]


def write_batch(folder: Path, count: int) -> list[str]:
    (folder / "wf.json").write_text(json.dumps(small_sd15()), encoding="utf-8")
    lines = [json.dumps(item) for item in items(count, prefix="cli")]
    (folder / "items.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [str(folder / "items.jsonl"), "--workflow", str(folder / "wf.json")]


def test_the_batch_command_on_ray_runs_once_and_resumes(
    local_ray: None, fleet: FakeFleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    servers = [part for url in fleet.urls for part in ("--url", url)]
    argv = ["batch", *write_batch(tmp_path, 24), *servers, "--engine", "ray", "--chunk", "5"]
    argv += ["--batch-id", "cli-ray", "--json"]
    before = fleet.tally().total_posts
    assert main([*argv, "-o", str(tmp_path / "out")]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(row["key"] for row in rows) == sorted(f"cli-{index}" for index in range(24))
    assert {row["status"] for row in rows} == {"success"}
    assert all(Path(row["saved"][0]).is_file() for row in rows)
    tally = fleet.tally()
    assert tally.total_posts == before + 24
    assert tally.most_posts_on_one_server == 1
    assert main([*argv, "-o", str(tmp_path / "out")]) == 0  # from the output folder
    assert {json.loads(line)["resumed"] for line in capsys.readouterr().out.splitlines()} == {True}
    assert main(argv) == 0  # from the servers
    assert fleet.tally().total_posts == before + 24


def test_the_readme_batch_runs_on_a_local_ray_the_command_starts(
    fleet: FakeFleet, tmp_path: Path
) -> None:
    """The README's ``comfy-async batch … --engine ray``, as a user runs it (Ray started by it)."""
    servers = [part for url in fleet.urls for part in ("--url", url)]
    command = [sys.executable, "-m", "comfy_async", "batch", str(EXAMPLES / "batch_items.jsonl")]
    command += ["--workflow", str(EXAMPLES / "workflows" / "probe_api.json"), *servers]
    command += ["--engine", "ray", "--workers", "1", "--batch-id", "spawned"]
    command += ["-o", str(tmp_path / "out")]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("PYTHONASYNCIODEBUG", None)
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=240, env=env, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "12 items, 12 succeeded" in done.stderr
    successes = fleet.tally().successes
    keys = [f"probe-{index}" for index in range(1, 13)]
    assert all(successes[batch_prompt_id("spawned", key)] == 1 for key in keys)
    assert len(list((tmp_path / "out" / "spawned").glob("probe-*/*.png"))) == 12
