"""Several servers on the command line: ``run`` over a pool, ``pool``, and the one-server rule."""

from __future__ import annotations

import io
import socket
from typing import TYPE_CHECKING

import pytest

from comfy_async.cli import ExitCode
from comfy_async.cli.progress import PlainProgress, ServerLine
from comfy_async.testing.fleet import fake_fleet
from tests.cli.conftest import write_json
from tests.pool.conftest import txt2img

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from tests.cli.conftest import CliRunner

SD15 = "v1-5-pruned-emaonly.safetensors"
XL = "sd_xl_base_1.0.safetensors"


@pytest.fixture
def closed_port_url() -> Iterator[Callable[[], str]]:
    """Make URLs of loopback ports bound but not listening (refused) until the test ends.

    Holding the ports keeps them distinct, and keeps anything else from taking one meanwhile.
    """
    held: list[socket.socket] = []

    def make() -> str:
        probe = socket.socket()
        held.append(probe)
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"

    yield make
    for probe in held:
        probe.close()


async def test_a_batch_spreads_over_the_servers_that_can_run_it(
    offline: CliRunner, tmp_path: Path, closed_port_url: Callable[[], str]
) -> None:
    down = closed_port_url()
    workflow = write_json(tmp_path / "xl.json", txt2img(1, XL, steps=2))
    async with fake_fleet(
        {"models": {"checkpoints": [SD15]}},  # lacks the workflow's checkpoint: never chosen
        {"models": {"checkpoints": [SD15, XL]}},
        {"models": {"checkpoints": [XL]}},
        time_scale=0.01,
    ) as (lacking, first, second):
        urls = [lacking.url, down, first.url, second.url]
        argv = [item for url in urls for item in ("--url", url)]
        result = await offline(
            *argv, "run", workflow, "--count", "12", "--seed", "random", "--no-save", "--json"
        )
        ran = {server.url: len(server.finished) for server in (lacking, first, second)}
    assert result.code == ExitCode.OK, result.err
    reports = result.json_lines()
    assert sorted(report["index"] for report in reports) == list(range(12))
    assert {report["status"] for report in reports} == {"success"}
    where = [report["server"] for report in reports]
    assert set(where) <= {first.url, second.url}
    assert all(report["servers"][-1] == report["server"] for report in reports)
    assert ran[lacking.url] == 0
    assert ran[first.url] + ran[second.url] == 12
    # one plain line per server as its state changes: the one down at start says so
    lines = result.err.splitlines()
    down_label = down.removeprefix("http://")
    assert any(line.startswith(f"server {down_label}: 0 done · down") for line in lines)
    for server in (first, second):
        label = server.url.removeprefix("http://")
        counted = [line for line in lines if line.startswith(f"server {label}: ")]
        assert counted[-1].startswith(f"server {label}: {ran[server.url]} done · up")


async def test_urls_from_the_environment_make_a_fleet(
    offline: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow = write_json(tmp_path / "wf.json", txt2img(7, SD15, steps=2))
    async with fake_fleet({}, {}, time_scale=0.01) as (a, b):
        monkeypatch.setenv("COMFY_URLS", f" {a.url}, {b.url} ,")
        monkeypatch.setenv("COMFY_URL", "http://127.0.0.1:9")  # COMFY_URLS wins
        result = await offline("run", workflow, "--no-save", "--json")
    assert result.code == ExitCode.OK, result.err
    (report,) = result.json_lines()
    assert report["server"] in {a.url, b.url}


async def test_a_workflow_no_server_can_run_is_refused_before_anything_runs(
    offline: CliRunner, tmp_path: Path
) -> None:
    workflow = write_json(tmp_path / "wf.json", txt2img(1, "missing.safetensors"))
    async with fake_fleet({}, {}, time_scale=0.01) as (a, b):
        result = await offline("--url", a.url, "--url", b.url, "run", workflow, "--no-save")
        ran = [*a.finished, *b.finished]
    assert ran == []
    assert result.code == ExitCode.REFUSED
    assert "missing.safetensors" in result.err


async def test_pool_shows_each_server_as_a_table_and_as_json(
    offline: CliRunner, closed_port_url: Callable[[], str]
) -> None:
    down = closed_port_url()
    async with fake_fleet(
        {"models": {"checkpoints": [SD15]}}, {"models": {"checkpoints": [XL]}}, time_scale=0
    ) as (a, b):
        argv = ["--url", a.url, "--url", b.url, "--url", down, "pool"]
        table = await offline(*argv)
        document = await offline(*argv, "--json")
    assert table.code == ExitCode.OK, table.err
    header, *rows = table.out.splitlines()
    assert header.split() == [
        "SERVER", "HEALTH", "IN", "FLIGHT", "QUEUED", "WARM", "DONE", "FAILED", "MEAN", "S"
    ]  # fmt: skip
    assert [row.split()[:2] for row in rows] == [[a.url, "up"], [b.url, "up"], [down, "down"]]
    assert rows[2].split()[3] == "-"  # nothing is known of a queue that does not answer
    assert rows[0].split()[-1] == "-"  # no job ended there: no mean time, not a guess
    assert document.code == ExitCode.OK, document.err
    data = document.json()
    assert data["up"] == 2
    assert data["held"] == 0
    servers = {server["name"]: server for server in data["servers"]}
    assert servers[a.url]["health"] == "up"
    assert servers[a.url]["queued_elsewhere"] == 0
    assert servers[down]["health"] == "down"
    assert servers[down]["queued_elsewhere"] is None
    assert servers[b.url]["mean_duration"] is None
    assert set(servers[b.url]) >= {"in_flight", "warm_models", "done", "failed"}


async def test_pool_counts_prompts_other_clients_queued(offline: CliRunner) -> None:
    from comfy_async import ComfyClient

    async with fake_fleet({}, {}, time_scale=1) as (busy, idle):
        async with ComfyClient(busy.url) as other:
            jobs = [await other.submit(txt2img(seed, steps=50)) for seed in range(3)]
            result = await offline("--url", busy.url, "--url", idle.url, "pool", "--json")
            for job in jobs:
                await job.cancel()
    assert result.code == ExitCode.OK, result.err
    queued = {server["name"]: server["queued_elsewhere"] for server in result.json()["servers"]}
    assert queued == {busy.url: 3, idle.url: 0}


async def test_no_server_answering_is_one_line_and_exit_4(
    offline: CliRunner, closed_port_url: Callable[[], str]
) -> None:
    down = [closed_port_url(), closed_port_url()]
    result = await offline("--url", down[0], "--url", down[1], "pool")
    assert result.code == ExitCode.UNREACHABLE
    assert result.err.splitlines() == [
        f"error: none of the 2 servers answers ({down[0]}, {down[1]})"
    ]
    assert result.out == ""


@pytest.mark.parametrize("command", [["queue"], ["history"], ["free"], ["nodes"], ["stats"]])
def test_one_server_commands_refuse_several_urls(offline: CliRunner, command: list[str]) -> None:
    result = offline.sync("--url", "http://127.0.0.1:1", "--url", "http://127.0.0.1:2", *command)
    assert result.code == ExitCode.USAGE
    assert result.err.splitlines() == [
        (
            f"error: {command[0]} works on one server, but --url names 2; "
            "give one --url (several make a pool, for run and pool)"
        )
    ]


def test_the_environment_list_is_named_in_the_refusal(
    offline: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMFY_URLS", "http://127.0.0.1:1,http://127.0.0.1:2,http://127.0.0.1:3")
    result = offline.sync("queue")
    assert result.code == ExitCode.USAGE
    assert "queue works on one server, but $COMFY_URLS names 3" in result.err


def test_urls_before_and_after_the_command_add_up_and_a_repeat_is_refused(
    offline: CliRunner,
) -> None:
    twice = offline.sync("--url", "http://127.0.0.1:1", "pool", "--url", "http://127.0.0.1:1/")
    assert twice.code == ExitCode.USAGE
    assert "error: a server is given twice: http://127.0.0.1:1/ (--url)" in twice.err
    both = offline.sync("--url", "http://127.0.0.1:1", "queue", "--url", "http://127.0.0.1:2")
    assert "but --url names 2" in both.err


def test_plain_server_lines_come_when_health_or_counts_change() -> None:
    stream = io.StringIO()
    view = PlainProgress(stream, io.StringIO(), per_job=False)
    view.server("http://127.0.0.1:8188", ServerLine("up", in_flight=2))
    view.server("http://127.0.0.1:8188", ServerLine("up", in_flight=1))  # running only: quiet
    view.server("http://127.0.0.1:8188", ServerLine("up", in_flight=1, done=1))
    view.server("http://127.0.0.1:8188", ServerLine("down", done=1, failed=1))
    assert stream.getvalue().splitlines() == [
        "server 127.0.0.1:8188: 0 done · up · 2 running",
        "server 127.0.0.1:8188: 1 done · up · 1 running",
        "server 127.0.0.1:8188: 1 done · down · 0 running · 1 failed",
    ]


def test_a_server_bar_fits_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    from comfy_async.cli.rich_progress import RichProgress

    monkeypatch.setenv("COLUMNS", "80")
    stream = io.StringIO()
    view = RichProgress(stream, io.StringIO(), color=False, batch_total=40)
    name = "https://a-very-long-gpu-host-name.example.internal:8188"
    view.server(name, ServerLine("recovering", in_flight=12, done=17, failed=3))
    view.close()
    lines = stream.getvalue().rstrip("\n").splitlines()
    text = next(line for line in lines if "a-very-long" in line)
    assert len(text) <= 80
    assert "a-very-long-gpu-host…" in text  # the name is cut to 21 characters, no scheme
    assert "42%" in text  # 17 of the batch's 40 jobs
    assert text.endswith("0:00:00")
