"""``comfy-async batch``: items from a JSON Lines file, each run once, resumable."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from comfy_async import batch_prompt_id
from tests.distributed.fleet import items, small_sd15
from tests.session.graphs import failing

if TYPE_CHECKING:
    from pathlib import Path

    from comfy_async.testing import FakeComfyServer
    from tests.cli.conftest import CliRunner


def write_batch(folder: Path, rows: list[Any], workflow: dict[str, Any] | None = None) -> Path:
    (folder / "wf.json").write_text(json.dumps(workflow or small_sd15()), encoding="utf-8")
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path = folder / "items.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_a_batch_runs_each_item_once_and_resumes(
    cli: CliRunner, comfy_server: FakeComfyServer, tmp_path: Path
) -> None:
    path = write_batch(tmp_path, [*items(12), ""])  # a blank line is skipped
    argv = [path, "--workflow", tmp_path / "wf.json", "--batch-id", "b1", "--json"]
    first = await cli("batch", *argv, "-o", tmp_path / "out")
    assert first.code == 0, first.err
    rows = first.json_lines()
    assert sorted(row["key"] for row in rows) == sorted(item["key"] for item in items(12))
    assert {row["status"] for row in rows} == {"success"}
    assert all(len(row["saved"]) == 1 for row in rows)
    assert "12 items, 12 succeeded (0 already in the output folder)" in first.err
    for row in rows:
        assert comfy_server.posts_for(batch_prompt_id("b1", row["key"])) == 1
    posts = len(comfy_server.prompt_posts)

    again = await cli("batch", *argv, "-o", tmp_path / "out")  # resumed from the folder
    assert again.code == 0, again.err
    assert {row["resumed"] for row in again.json_lines()} == {True}
    assert "12 succeeded (12 already in the output folder)" in again.err

    on_server = await cli("batch", *argv)  # no folder: found on the server, attached
    assert on_server.code == 0, on_server.err
    assert {row["status"] for row in on_server.json_lines()} == {"success"}
    assert len(comfy_server.prompt_posts) == posts  # no new work


async def test_the_default_batch_id_follows_the_files(
    cli: CliRunner, comfy_server: FakeComfyServer, tmp_path: Path
) -> None:
    path = write_batch(tmp_path, items(2))
    first = await cli("batch", path, "--workflow", tmp_path / "wf.json")
    assert first.code == 0, first.err
    assert "batch items-" in first.err
    again = await cli("batch", path, "--workflow", tmp_path / "wf.json")
    assert again.code == 0
    assert len(comfy_server.prompt_posts) == 2


async def test_failed_items_give_exit_code_1_and_a_warning_each(
    cli: CliRunner, comfy_server: FakeComfyServer, tmp_path: Path
) -> None:
    path = write_batch(tmp_path, [{"key": "a"}, {"key": "b"}], workflow=failing())
    outcome = await cli("batch", path, "--workflow", tmp_path / "wf.json")
    assert outcome.code == 1
    assert outcome.err.count("warning: item") == 2
    assert "0 succeeded" in outcome.err


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (['{"key": "a"}', "not json"], "items.jsonl line 2: not JSON"),
        ([{"key": "a"}, {"key": "a"}], "line 2: key 'a' is already on line 1"),
        ([{"key": "a", "inputs": {"99": {"text": "x"}}}], "line 1: "),
        ([{"key": "a", "seed": "x"}], "seed must be an integer"),
        ([""], "holds no items"),
    ],
)
async def test_a_bad_items_file_is_refused_before_anything_runs(
    cli: CliRunner, comfy_server: FakeComfyServer, tmp_path: Path, rows: list[Any], message: str
) -> None:
    path = write_batch(tmp_path, rows)
    outcome = await cli("batch", path, "--workflow", tmp_path / "wf.json")
    assert outcome.code == 2
    assert message in outcome.err
    assert comfy_server.prompt_posts == []
