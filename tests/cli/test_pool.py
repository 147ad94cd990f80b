"""Several servers on the command line: ``run`` through a pool, ``pool``, and the refusals."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from comfy_async.cli import ExitCode
from comfy_async.testing.fleet import fake_fleet

SD15 = Path(__file__).resolve().parents[2] / "examples" / "workflows" / "sd15_txt2img_api.json"


def closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


async def test_run_spreads_a_batch_over_the_servers_that_can_run_it(offline, tmp_path) -> None:
    async with fake_fleet(
        {},
        {},
        {"models": {"checkpoints": ["other.safetensors"]}},  # lacks the workflow's checkpoint
        node_durations={"KSampler": 0.05},
    ) as (one, two, lacking):
        urls = [arg for server in (one, two, lacking) for arg in ("--url", server.url)]
        result = await offline(
            *urls, "run", SD15, "--count", "8", "--seed", "random", "-o", tmp_path, "--json"
        )
    assert result.code == ExitCode.OK, result.err
    reports = result.json_lines()
    assert [report["status"] for report in reports] == ["success"] * 8
    servers = {report["server"] for report in reports}
    assert servers <= {one.url, two.url}  # never the one without the model
    assert len(servers) == 2  # both shared the batch
    assert not lacking.prompt_posts
    saved = sorted(tmp_path.glob("*/*.png"))  # a folder per server: their names collide
    assert len(saved) == 8
    assert {path.parent.name for path in saved} == {
        f"127.0.0.1_{server.port}" for server in (one, two)
    }


async def test_run_goes_on_when_a_server_is_down_at_start(offline, tmp_path) -> None:
    async with fake_fleet({}, time_scale=0) as (server,):
        result = await offline(
            "--url", closed_port(), "--url", server.url, "run", SD15, "-o", tmp_path, "--json"
        )
    assert result.code == ExitCode.OK, result.err
    assert result.json_lines()[0]["server"] == server.url


async def test_pool_shows_each_servers_state(offline, monkeypatch: pytest.MonkeyPatch) -> None:
    down = closed_port()
    async with fake_fleet({}, {}, time_scale=0) as (one, two):
        monkeypatch.setenv("COMFY_URLS", f"{one.url},{two.url},{down}")
        table = await offline("pool")
        lines = await offline("pool", "--json")
    assert table.code == ExitCode.OK, table.err
    assert table.out.splitlines()[0].split() == [
        "SERVER",
        "HEALTH",
        "QUEUE",
        "NODES",
        "VRAM",
        "FREE",
    ]
    assert f"{one.url}  up" in table.out or one.url in table.out
    rows = {row["server"]: row for row in lines.json_lines()}
    assert rows[one.url]["health"] == rows[two.url]["health"] == "up"
    assert rows[down]["health"] == "down"
    assert rows[one.url]["nodes"] > 100


async def test_pool_with_no_server_answering_exits_unreachable(offline) -> None:
    result = await offline("--url", closed_port(), "--url", closed_port(), "pool")
    assert result.code == ExitCode.UNREACHABLE
    assert "none of the 2 servers answers" in result.err


async def test_a_command_about_one_server_refuses_several(offline) -> None:
    result = await offline("--url", "http://127.0.0.1:1", "--url", "http://127.0.0.1:2", "queue")
    assert result.code == ExitCode.USAGE
    assert "give one --url" in result.err
    twice = await offline("--url", "http://127.0.0.1:1", "--url", "http://127.0.0.1:1", "pool")
    assert twice.code == ExitCode.USAGE
    assert "given twice" in twice.err
