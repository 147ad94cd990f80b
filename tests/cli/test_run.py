"""``run``: outputs and previews saved, edits applied; refusals, failures and their exit codes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from comfy_async.cli import ExitCode
from tests.cli.conftest import ui_graph, write_json
from tests.session.graphs import failing, sleeper


def seeded(seed: int = 1, **options: object) -> dict[str, dict[str, object]]:
    """EmptyImage → ImageAddNoise (seed) → ProbeSleepProgress → SaveImage: each seed runs anew."""
    graph = sleeper(**({"steps": 2} | options))  # type: ignore[arg-type]
    graph["4"] = {
        "class_type": "ImageAddNoise",
        "inputs": {"image": ["1", 0], "seed": seed, "strength": 0.5},
    }
    graph["2"]["inputs"]["image"] = ["4", 0]
    return graph


async def test_a_run_saves_its_output_and_every_preview(cli, tmp_path: Path) -> None:
    workflow = write_json(
        tmp_path / "wf.json", sleeper(steps=4, delay=10, preview="JPEG", text="hi")
    )
    out, previews = tmp_path / "out", tmp_path / "previews"
    result = await cli("run", workflow, "-o", out, "--previews", previews)
    assert result.code == ExitCode.OK, result.err
    saved = [Path(line) for line in result.out.splitlines()]
    assert saved == [out / "out_00001_.png"]
    assert saved[0].read_bytes().startswith(b"\x89PNG")
    frames = sorted(previews.iterdir())
    assert len(frames) == 4
    assert all(frame.suffix == ".jpg" and frame.stat().st_size > 0 for frame in frames)
    # plain progress on a non-terminal: the node's display name, its steps, the end
    assert "Probe: sleep with progress" in result.err
    assert "done" in result.err


async def test_previews_dropped_by_a_slow_disk_are_counted_and_said(
    cli, comfy_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import comfy_async.cli.execution as execution

    written = execution.write_preview
    runs_before = {"previews": 0, "again": 1}  # the prompts the server ran before each run

    async def slow_write(folder: Path, stem: str, event: object) -> Path:
        # The disk stalls on a run's first frame until the server has sent all 400, so the
        # frames waiting outnumber what the CLI keeps however fast either side runs here.
        if folder.name in runs_before:
            before = runs_before.pop(folder.name)
            async with asyncio.timeout(30):
                while len(comfy_server.finished) <= before:
                    await asyncio.sleep(0.005)
        await asyncio.sleep(0.001)
        return await written(folder, stem, event)  # type: ignore[arg-type]

    monkeypatch.setattr(execution, "write_preview", slow_write)
    workflow = write_json(tmp_path / "wf.json", sleeper(steps=400, preview="JPEG"))
    previews = tmp_path / "previews"
    result = await cli("run", workflow, "--no-save", "--json", "--previews", previews)
    assert result.code == ExitCode.OK, result.err
    (report,) = result.json_lines()
    saved = len(list(previews.iterdir()))
    assert report["previews"] == saved
    assert report["previews_dropped"] > 0  # the CLI keeps at most 256 frames waiting
    assert saved + report["previews_dropped"] == 400  # every frame is saved or counted
    again = write_json(tmp_path / "again.json", sleeper(steps=400, preview="JPEG"))  # fresh colour
    plain = await cli("run", again, "--no-save", "--previews", tmp_path / "again")
    assert "more dropped: saving them fell behind the server" in plain.err


async def test_json_reports_the_run(cli, tmp_path: Path) -> None:
    graph = sleeper(steps=2)
    graph["4"] = {"class_type": "ProbeTextOutput", "inputs": {"value": "a text"}}
    workflow = write_json(tmp_path / "wf.json", graph)
    result = await cli("run", workflow, "-o", tmp_path / "out", "--json")
    assert result.code == ExitCode.OK
    (report,) = result.json_lines()
    assert report["status"] == "success"
    assert report["files"] == [str(tmp_path / "out" / "out_00001_.png")]
    assert report["texts"] == {"4": ["a text"]}
    assert report["error"] is None
    assert len(report["prompt_id"]) == 36


async def test_set_and_seed_edit_what_is_sent(cli, comfy_server, tmp_path: Path) -> None:
    workflow = write_json(tmp_path / "wf.json", seeded())
    result = await cli(
        "run",
        workflow,
        "--no-save",
        "--json",
        "--set",
        "2.steps=3",
        "--set",
        "SaveImage.filename_prefix=renamed",
        "--set",
        "EmptyImage.color=7",
        "--seed",
        "42",
    )
    assert result.code == ExitCode.OK, result.err
    (report,) = result.json_lines()
    assert report["seeds"] == {"4.seed": 42}
    sent = comfy_server.prompt_posts[-1].body["prompt"]
    assert sent["2"]["inputs"]["steps"] == 3  # typed by the catalogue: INT
    assert sent["3"]["inputs"]["filename_prefix"] == "renamed"  # STRING stays text
    assert sent["1"]["inputs"]["color"] == 7
    assert sent["4"]["inputs"]["seed"] == 42


async def test_a_batch_runs_each_job_with_its_own_seed(cli, comfy_server, tmp_path: Path) -> None:
    workflow = write_json(tmp_path / "wf.json", seeded())
    result = await cli(
        "run", workflow, "--count", "4", "--concurrency", "2", "--seed", "random", "--json",
        "-o", tmp_path / "out",
    )  # fmt: skip
    assert result.code == ExitCode.OK, result.err
    reports = result.json_lines()
    assert sorted(report["index"] for report in reports) == [0, 1, 2, 3]
    seeds = {report["seeds"]["4.seed"] for report in reports}
    assert len(seeds) == 4
    sent = [post.body["prompt"]["4"]["inputs"]["seed"] for post in comfy_server.prompt_posts]
    assert set(sent) == seeds
    assert "batch: 4/4 done, 0 failed" in result.err
    saved = sorted(Path(path).name for report in reports for path in report["files"])
    assert saved == [f"out_0000{n}_.png" for n in (1, 2, 3, 4)]


async def test_a_cached_rerun_keeps_the_file_it_already_saved(cli, tmp_path: Path) -> None:
    workflow = write_json(tmp_path / "wf.json", sleeper())
    first = await cli("run", workflow, "-o", tmp_path / "out")
    again = await cli("run", workflow, "-o", tmp_path / "out", "--json")
    assert again.code == ExitCode.OK
    (report,) = again.json_lines()
    assert report["files"] == []
    assert report["kept"] == [first.out.strip()]
    assert f"kept {first.out.strip()}: a file of that name exists" in again.err
    replaced = await cli("run", workflow, "-o", tmp_path / "out", "--overwrite")
    assert replaced.out == first.out


async def test_numbered_seeds_count_up_in_a_batch(cli, comfy_server, tmp_path: Path) -> None:
    workflow = write_json(tmp_path / "wf.json", seeded())
    result = await cli("run", workflow, "--count", "3", "--seed", "10", "--no-save", "--json")
    assert result.code == ExitCode.OK
    sent = sorted(post.body["prompt"]["4"]["inputs"]["seed"] for post in comfy_server.prompt_posts)
    assert sent == [10, 11, 12]


async def test_seed_on_a_workflow_without_seeds_warns(cli, tmp_path: Path) -> None:
    workflow = write_json(tmp_path / "wf.json", sleeper())
    result = await cli("run", workflow, "--no-save", "--seed", "random")
    assert result.code == ExitCode.OK
    assert "warning: --seed: the workflow has no seed input" in result.err


async def test_validation_failure_names_node_and_input(cli, comfy_server, tmp_path: Path) -> None:
    workflow = write_json(tmp_path / "wf.json", sleeper())
    result = await cli("run", workflow, "--set", "2.preview_format=GIF")
    assert result.code == ExitCode.REFUSED == 3
    assert "error: the workflow would be refused: 1 problem" in result.err
    assert "node 2 (ProbeSleepProgress) input 'preview_format'" in result.err
    assert "value_not_in_list" in result.err
    assert comfy_server.prompt_posts == []  # refused before anything was queued


async def test_a_refusal_by_the_server_is_exit_3_too(cli, comfy_server, tmp_path: Path) -> None:
    graph = sleeper()
    del graph["2"]["inputs"]["steps"]
    workflow = write_json(tmp_path / "wf.json", graph)
    result = await cli("run", workflow, "--no-validate", "--json")
    assert result.code == ExitCode.REFUSED
    assert len(comfy_server.prompt_posts) == 1
    (report,) = result.json_lines()
    assert report["status"] == "refused"
    problem = report["error"]["problems"][0]
    assert (problem["node_id"], problem["input_name"]) == ("2", "steps")
    assert "node 2 (ProbeSleepProgress) input 'steps'" in result.err


async def test_an_execution_error_is_exit_1(cli, tmp_path: Path) -> None:
    workflow = write_json(tmp_path / "wf.json", failing("the probe broke"))
    result = await cli("run", workflow, "-o", tmp_path / "out", "--json")
    assert result.code == ExitCode.FAILED == 1
    (report,) = result.json_lines()
    assert report["status"] == "failed"
    assert report["error"]["node_id"] == "2"
    assert report["error"]["exception_message"].strip() == "the probe broke"
    assert "error: job" in result.err
    assert "node 2 (ProbeRaise) raised ValueError: the probe broke" in result.err
    assert not (tmp_path / "out").exists()


async def test_a_timeout_cancels_the_job_on_the_server(cli, comfy_server, tmp_path: Path) -> None:
    workflow = write_json(tmp_path / "wf.json", sleeper(steps=1000, delay=60))
    result = await cli("run", workflow, "--timeout", "0.5", "--json")
    assert result.code == ExitCode.FAILED
    (report,) = result.json_lines()
    assert report["status"] == "timeout"
    assert comfy_server.request_counts["POST /jobs/{job_id}/cancel"] == 1
    await comfy_server.wait_idle()


async def test_upload_points_the_loader_at_the_file(cli, comfy_server, tmp_path: Path) -> None:
    image = tmp_path / "cat.png"
    image.write_bytes(_png())
    graph = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "nothing.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "up"}},
    }
    workflow = write_json(tmp_path / "wf.json", graph)
    result = await cli("run", workflow, "--upload", f"LoadImage.image={image}", "--no-save")
    assert result.code == ExitCode.OK, result.err
    assert comfy_server.prompt_posts[-1].body["prompt"]["1"]["inputs"]["image"] == "cat.png"
    assert (comfy_server.base_dir / "input" / "cat.png").read_bytes() == image.read_bytes()


async def test_a_ui_format_workflow_is_converted_then_run(cli, tmp_path: Path) -> None:
    workflow = write_json(tmp_path / "ui.json", ui_graph())
    result = await cli("run", workflow, "-o", tmp_path / "out")
    assert result.code == ExitCode.OK, result.err
    assert Path(result.out.strip()).name.startswith("from_ui")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "nope"], "--set expects NODE.INPUT=VALUE"),
        (["--set", "99.steps=3"], "no node of the workflow has that id"),
        (["--set", "2.steps=many"], "takes a number (INT)"),
        (["--set", "2.nonsense=1"], "has no input 'nonsense'"),
    ],
)
async def test_bad_edits_are_usage_errors(
    cli, tmp_path: Path, argv: list[str], message: str
) -> None:
    workflow = write_json(tmp_path / "wf.json", sleeper())
    result = await cli("run", workflow, *argv)
    assert result.code == ExitCode.USAGE == 2
    assert message in result.err
    assert result.err.count("\n") == 1  # one line


async def test_bad_seeds_are_refused_by_the_parser(cli, tmp_path: Path) -> None:
    workflow = write_json(tmp_path / "wf.json", sleeper())
    result = await cli("run", workflow, "--seed", "-3")
    assert result.code == ExitCode.USAGE
    assert "argument --seed: expected 'random' or a non-negative integer: '-3'" in result.err


async def test_unreadable_workflows_are_usage_errors(cli, tmp_path: Path) -> None:
    missing = await cli("run", tmp_path / "missing.json")
    assert missing.code == ExitCode.USAGE
    assert "missing.json" in missing.err
    (tmp_path / "bad.json").write_text("{not json")
    bad = await cli("run", tmp_path / "bad.json")
    assert bad.code == ExitCode.USAGE
    assert "is not JSON" in bad.err


async def test_an_unreachable_server_is_exit_4(offline, tmp_path: Path) -> None:
    workflow = write_json(tmp_path / "wf.json", sleeper())
    result = await offline("--url", "http://127.0.0.1:9", "run", workflow)
    assert result.code == ExitCode.UNREACHABLE == 4
    assert result.err.startswith("error: cannot connect")
    assert "ws://127.0.0.1:9/ws?clientId=REDACTED" in result.err
    assert "is the server running?" in result.err


async def test_rich_bars_when_asked(cli, tmp_path: Path) -> None:
    workflow = write_json(tmp_path / "wf.json", sleeper(steps=3, preview="PNG"))
    result = await cli("--progress", "rich", "run", workflow, "-o", tmp_path / "out")
    assert result.code == ExitCode.OK, result.err
    # not a terminal: rich draws the final state once, the bar full and how the job ended
    assert "100% done in" in result.err
    assert result.out.strip().endswith("out_00001_.png")
    batch = await cli("--progress", "rich", "run", workflow, "--count", "2", "--no-save")
    assert batch.code == ExitCode.OK
    assert "✓ #1" in batch.err
    assert "batch" in batch.err
    assert "2/2" in batch.err


async def test_a_batch_with_a_failure_exits_with_the_first_failure(cli, tmp_path: Path) -> None:
    workflow = write_json(tmp_path / "wf.json", failing())
    result = await cli("run", workflow, "--count", "2", "--json")
    assert result.code == ExitCode.FAILED
    assert [report["status"] for report in result.json_lines()] == ["failed", "failed"]
    assert "batch: 2/2 done, 2 failed" in result.err


async def test_quiet_prints_only_the_results(cli, tmp_path: Path) -> None:
    workflow = write_json(tmp_path / "wf.json", sleeper())
    result = await cli("run", workflow, "-q", "-o", tmp_path / "out")
    assert result.code == ExitCode.OK
    assert result.err == ""
    assert result.out == f"{tmp_path / 'out' / 'out_00001_.png'}\n"


async def test_a_run_on_comfy_cloud(
    offline, comfy_cloud_server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("COMFY_CLOUD_API_KEY", comfy_cloud_server.api_key)
    workflow = write_json(tmp_path / "wf.json", sleeper(preview="JPEG"))
    ran = await offline(
        "--cloud", "--url", comfy_cloud_server.url, "run", workflow, "-o", tmp_path / "out"
    )
    assert ran.code == ExitCode.OK, ran.err
    # the file comes through the signed-URL redirect, which never sees the key
    assert Path(ran.out.strip()).read_bytes().startswith(b"\x89PNG")
    seen = comfy_cloud_server.signed_url_requests
    assert seen
    assert all("x-api-key" not in {name.lower() for name in headers} for headers in seen)


def _png() -> bytes:
    from comfy_async.testing._images import solid_png

    return solid_png(8, 8, 0x123456)


async def test_a_failure_mid_batch_cancels_the_jobs_left(cli, comfy_server, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    workflow = write_json(tmp_path / "wf.json", seeded(steps=5, delay=10))
    result = await cli(
        "run", workflow, "--count", "3", "--concurrency", "2", "--seed", "1", "-o", not_a_folder
    )
    assert result.code == ExitCode.USAGE
    assert result.err.splitlines()[-1] == f"error: File exists: {not_a_folder}"
    # the second job was queued when saving the first failed: it is cancelled, not left behind
    assert comfy_server.request_counts["POST /jobs/{job_id}/cancel"] == 1
    assert len(comfy_server.prompt_posts) == 2  # the third was never submitted
    await comfy_server.wait_idle()


async def test_the_standard_text_to_image_workflow_runs_on_a_default_fake(
    cli, tmp_path: Path
) -> None:
    from PIL import Image

    workflow = Path(__file__).resolve().parents[2] / "examples/workflows/sd15_txt2img_api.json"
    runs = [("--seed", "1"), ("--seed", "2"), ("--seed", "1")]
    saved: list[list[Path]] = []
    reports = []
    for index, seed in enumerate(runs):
        size = ("--set", "5.width=320", "--set", "5.height=192")
        out = tmp_path / str(index)
        result = await cli("run", workflow, *seed, *size, "-o", out, "--json")
        assert result.code == ExitCode.OK, result.err
        (report,) = result.json_lines()
        reports.append(report)
        saved.append(sorted(out.iterdir()))
    assert all(len(files) == 1 for files in saved)
    sizes = set()
    for files in saved:
        with Image.open(files[0]) as image:
            sizes.add(image.size)
    assert sizes == {(320, 192)}
    first, other, repeat = (files[0].read_bytes() for files in saved)
    assert first != other  # another seed, another image
    assert repeat == first  # the same seed: the same image
    # a repeat is answered from the cache: the server hands out its first file again
    assert [files[0].name for files in saved] == [
        "ComfyUI_00001_.png",
        "ComfyUI_00002_.png",
        "ComfyUI_00001_.png",
    ]
    assert [report["seeds"] for report in reports] == [{"3.seed": 1}, {"3.seed": 2}, {"3.seed": 1}]
