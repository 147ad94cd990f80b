"""Batch items without Ray: reading them, running one idempotently, saving, resuming."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from comfy_async import ComfyClient, ComfyPool, Workflow, batch_prompt_id
from comfy_async.errors import ConfigurationError, UnknownNodeError
from comfy_async.ray import BatchItem, ComfyRunner, ItemResult, item_folder, run_item
from comfy_async.testing import FakeComfyServer
from tests.distributed.fleet import fake_fleet, items, small_sd15
from tests.session.graphs import failing

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"inputs": {}}, "non-empty string key"),
        ({"key": ""}, "non-empty string key"),
        ({"key": "a", "inputs": ["6", "text"]}, "inputs must map nodes"),
        ({"key": "a", "inputs": {"6": "a cat"}}, "must be an object"),
        ({"key": "a", "seed": "7"}, "seed must be an integer"),
        ({"key": "a", "seed": True}, "seed must be an integer"),
        ({"key": "a", "prompt": "x"}, "unknown: prompt"),
        ("a cat", "an object with a key"),
    ],
)
def test_a_bad_item_is_refused_with_what_is_wrong(row: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        BatchItem.from_mapping(row)


def test_an_item_sets_its_inputs_and_seed_on_a_copy() -> None:
    workflow = Workflow(small_sd15())
    item = BatchItem.from_mapping({"key": 7, "seed": 42, "inputs": {"6": {"text": "a dog"}}})
    assert item.key == "7"
    graph = item.apply(workflow)
    assert graph.get("6", "text") == "a dog"
    assert graph.get("3", "seed") == 42
    assert workflow.get("6", "text") != "a dog"  # the batch's workflow is untouched
    with pytest.raises(UnknownNodeError):
        BatchItem.from_mapping({"key": "x", "inputs": {"99": {"text": "?"}}}).apply(workflow)
    with pytest.raises(ConfigurationError, match="has a seed"):
        BatchItem(key="x", seed=1).apply(Workflow({"1": {"class_type": "X", "inputs": {}}}))


def test_an_item_folder_is_inside_the_storage_whatever_the_key(tmp_path: Path) -> None:
    assert item_folder(tmp_path, "b", "cat-1") == tmp_path / "b" / "cat-1"
    for key in ("../../etc", "..", "a/b", "é" * 300):
        folder = item_folder(tmp_path, "../b", key)
        assert folder.parent.parent == tmp_path
        assert ".." not in folder.relative_to(tmp_path).parts
    assert item_folder(tmp_path, "b", "a/b") != item_folder(tmp_path, "b", "a_b")


async def test_an_item_saved_to_storage_is_not_asked_for_again(tmp_path: Path) -> None:
    workflow = Workflow(small_sd15())
    item = items(1)[0]
    async with FakeComfyServer(time_scale=0) as server:
        async with ComfyPool([server.url]) as pool:
            first = await run_item(pool, workflow, item, batch_id="s", storage=tmp_path)
        assert first.ok
        assert first.files == ("output/ComfyUI_00001_.png",)
        assert [Path(path).name for path in first.saved] == ["ComfyUI_00001_.png"]
        assert (item_folder(tmp_path, "s", "item-0") / "result.json").is_file()
        async with ComfyClient(server.url) as comfy:
            requests = sum(server.request_counts.values())
            again = await run_item(comfy, workflow, item, batch_id="s", storage=tmp_path)
            assert sum(server.request_counts.values()) == requests  # not even a look-up
        assert again.resumed
        assert again.saved == first.saved
        assert server.posts_for(first.prompt_id) == 1


async def test_a_finished_item_is_attached_on_the_server_not_run_again() -> None:
    workflow = Workflow(small_sd15())
    item = items(1)[0]
    async with FakeComfyServer(time_scale=0) as server:
        for _ in range(2):
            async with ComfyPool([server.url]) as pool:
                result = await run_item(pool, workflow, item, batch_id="t")
            assert result.ok
            assert not result.resumed
        assert server.posts_for(batch_prompt_id("t", "item-0")) == 1


async def test_a_failing_item_ends_as_failed_not_raised() -> None:
    async with FakeComfyServer(time_scale=0) as server, ComfyPool([server.url]) as pool:
        result = await run_item(pool, Workflow(failing()), {"key": "f"}, batch_id="t")
    assert result.status == "failed"
    assert result.error is not None
    assert "ExecutionError" in result.error
    assert ItemResult.from_dict(result.to_dict()) == result


@pytest.fixture
def process_pools() -> Iterator[None]:
    from comfy_async.ray import _ProcessLoop

    yield
    instance = _ProcessLoop._instance
    if instance is not None:
        instance.close()


def test_the_runner_answers_a_batch_of_columns_in_order(process_pools: None) -> None:
    work = items(6)
    batch: dict[str, Any] = {name: [item[name] for item in work] for name in ("key", "seed")}
    batch["inputs"] = [item["inputs"] for item in work]
    with fake_fleet(2) as fleet:
        runner = ComfyRunner(fleet.urls, small_sd15(), batch_id="cols")
        answer = runner(batch)
        again = ComfyRunner(fleet.urls, small_sd15(), batch_id="cols")(batch)
        tally = fleet.tally()
    assert answer["key"] == [item["key"] for item in work]
    assert answer["status"] == ["success"] * 6
    assert again["prompt_id"] == answer["prompt_id"]
    assert tally.total_posts == 6  # one pool per process: the second runner attached
    assert tally.most_runs == 1


def test_a_runner_refuses_bad_settings() -> None:
    with pytest.raises(ConfigurationError, match="at least one server"):
        ComfyRunner([], small_sd15(), batch_id="b")
    with pytest.raises(ConfigurationError, match="batch id"):
        ComfyRunner(["http://127.0.0.1:1"], small_sd15(), batch_id="")
    with pytest.raises(ConfigurationError, match="timeout"):
        ComfyRunner(["http://127.0.0.1:1"], small_sd15(), batch_id="b", timeout=0)
    with pytest.raises(ConfigurationError, match="DataFrame or a mapping"):
        ComfyRunner(["http://127.0.0.1:1"], small_sd15(), batch_id="b")(["row"])


async def test_items_racing_in_one_process_make_one_submission() -> None:
    workflow = Workflow(small_sd15())
    item = items(1)[0]
    async with FakeComfyServer(time_scale=0) as server, ComfyPool([server.url]) as pool:
        results = await asyncio.gather(
            *(run_item(pool, workflow, item, batch_id="r") for _ in range(4))
        )
    assert {result.prompt_id for result in results} == {batch_prompt_id("r", "item-0")}
    assert server.posts_for(results[0].prompt_id) == 1


async def test_an_item_whose_caller_stops_waiting_runs_on_and_is_picked_up_later() -> None:
    workflow = Workflow(small_sd15())
    item = items(1)[0]
    prompt_id = batch_prompt_id("c", "item-0")
    async with FakeComfyServer(node_durations={"KSampler": 0.5}) as server:
        async with ComfyPool([server.url]) as pool:
            task = asyncio.create_task(run_item(pool, workflow, item, batch_id="c"))
            while server.posts_for(prompt_id) == 0:
                await asyncio.sleep(0.01)
            task.cancel()  # Ctrl-C, a sibling's failure, a worker told to stop
            with pytest.raises(asyncio.CancelledError):
                await task
        async with ComfyPool([server.url]) as pool:
            again = await run_item(pool, workflow, item, batch_id="c", timeout=20)
    assert again.ok
    assert server.posts_for(prompt_id) == 1
    assert [outcome for pid, outcome in server.finished if pid == prompt_id] == ["success"]


def test_merged_dataset_columns_leave_out_what_a_row_does_not_set() -> None:
    row = {
        "key": "a",
        "seed": None,
        "inputs": {"6": {"text": "a cat"}, "7": None, "3": {"cfg": None}},
    }
    item = BatchItem.from_mapping(row)
    assert item.inputs == {"6": {"text": "a cat"}, "3": {}}
    assert item.seed is None


class Frame:
    """Just what the runner uses of a pandas DataFrame: columns, records out, records in."""

    def __init__(self, records: list[dict[str, Any]], columns: list[str] | None = None) -> None:
        self.records = records
        self.columns = columns or sorted({name for record in records for name in record})

    def to_dict(self, orient: str) -> list[dict[str, Any]]:
        assert orient == "records"
        return [
            {name: record.get(name, float("nan")) for name in self.columns}
            for record in self.records
        ]


def test_the_runner_answers_a_dataframe_with_a_dataframe(process_pools: None) -> None:
    work = [{"key": "x"}, {"key": "y", "seed": 3}]  # NaN where a row has no seed
    with fake_fleet(1) as fleet:
        answer = ComfyRunner(fleet.urls, small_sd15(), batch_id="frame")(Frame(work))
    assert isinstance(answer, Frame)
    assert [record["key"] for record in answer.records] == ["x", "y"]
    assert [record["status"] for record in answer.records] == ["success", "success"]
    assert answer.columns[:3] == ["key", "prompt_id", "status"]
