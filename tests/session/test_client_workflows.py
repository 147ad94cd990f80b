"""ComfyClient with workflows: the cached catalogue, offline validation, Workflow and UI input."""

from __future__ import annotations

import asyncio
import json

import pytest

from comfy_async import ComfyClient, PromptValidationError, Workflow
from comfy_async.errors import WorkflowFormatError
from comfy_async.testing import FakeComfyServer
from tests.session.graphs import sleeper


async def test_nodes_are_fetched_once_and_refreshed_on_demand(
    comfy_server: FakeComfyServer,
) -> None:
    async with ComfyClient(comfy_server.url) as comfy:
        first, second = await asyncio.gather(comfy.nodes(), comfy.nodes())
        assert first is second
        assert "ProbeSleepProgress" in first
        assert comfy_server.request_counts["GET /object_info"] == 1
        refreshed = await comfy.nodes(refresh=True)
        assert refreshed is not first
        assert comfy_server.request_counts["GET /object_info"] == 2


async def test_offline_validation_refuses_before_any_post(comfy_server: FakeComfyServer) -> None:
    graph = sleeper()
    graph["1"]["inputs"]["width"] = 0  # below min
    async with ComfyClient(comfy_server.url) as comfy:
        with pytest.raises(PromptValidationError) as caught:
            await comfy.submit(graph, validate=True)
    assert caught.value.problems()[0][:3] == ("1", "value_smaller_than_min", "width")
    assert comfy_server.prompt_posts == []
    assert comfy.in_flight == {}


async def test_the_same_graph_without_offline_validation_gets_the_servers_answer(
    comfy_server: FakeComfyServer,
) -> None:
    graph = sleeper()
    graph["1"]["inputs"]["width"] = 0
    async with ComfyClient(comfy_server.url) as comfy:
        with pytest.raises(PromptValidationError) as caught:
            await comfy.submit(graph)
    offline = caught.value.problems()
    assert offline[0][:3] == ("1", "value_smaller_than_min", "width")
    assert len(comfy_server.prompt_posts) == 1


async def test_a_workflow_object_is_submitted_as_its_prompt(comfy_server: FakeComfyServer) -> None:
    async with ComfyClient(comfy_server.url) as comfy:
        workflow = Workflow(sleeper(), catalogue=await comfy.nodes())
        workflow.set("3", filename_prefix="edited")
        result = await comfy.run(workflow, validate=True, timeout=30)
    assert result.files[0].filename.startswith("edited_")


async def test_a_ui_export_is_converted_with_the_servers_catalogue(
    comfy_server: FakeComfyServer, shared_fixtures
) -> None:
    ui = json.loads((shared_fixtures / "workflows/ui/flux_dev_full_text_to_image.json").read_text())
    async with ComfyClient(comfy_server.url) as comfy:
        catalogue = await comfy.nodes()
        expected = Workflow.from_ui(ui, catalogue).to_prompt()
        with pytest.raises(PromptValidationError):  # the fake has none of flux's model files
            await comfy.submit(ui)
    sent = comfy_server.prompt_posts[-1].body["prompt"]
    assert sent == expected
    with pytest.raises(WorkflowFormatError, match="API"):
        Workflow.from_dict(ui)  # without a catalogue it says how to export the API format


async def test_a_prompt_attached_from_another_client_is_followed_at_a_running_pace() -> None:
    """ComfyUI sends a prompt's events to its submitter only: an attached job is polled instead.

    Client 1 submits four 2-second prompts and leaves; client 2 attaches to them. Each outcome
    must arrive about as soon as the prompt ends (not after the 30 s silent-job check), and the
    polling must cost one queue read per check for all of them, not one request per job.
    """
    async with FakeComfyServer(time_scale=1.0) as server:
        async with ComfyClient(server.url) as first:
            jobs = [await first.submit(sleeper(steps=8, delay=0.25), detach=True) for _ in range(4)]
            prompt_ids = [job.prompt_id for job in jobs]
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with ComfyClient(server.url) as second:
            attached = [await second.attach(prompt_id) for prompt_id in prompt_ids]
            results = await asyncio.wait_for(
                asyncio.gather(*(job.result() for job in attached)), timeout=25
            )
        elapsed = loop.time() - started
    assert all(result.files for result in results)
    # 4 prompts of 2 s run one after another: 8 s of work, then at most a check interval.
    assert elapsed < 8 + 5 + 2, elapsed
    lookups = sum(
        count for key, count in server.request_counts.items() if "{" in key and "GET" in key
    )
    list_reads = server.request_counts["GET /jobs"] + server.request_counts["GET /queue"]
    print(f"elapsed={elapsed:.2f}s {dict(server.request_counts)}")
    # One lookup per job when it leaves the queue, a few more at most; never one per job per tick.
    assert lookups <= 4 * 3, server.request_counts
    assert 1 <= list_reads <= elapsed / 0.5 + 4, server.request_counts
