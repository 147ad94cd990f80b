"""Every namespace against the fake server (``comfy_async.testing``), local and Cloud flavours.

The fake reproduces the real server's behaviour (upload dedupe and renames, the Cloud signed-URL
redirect to a second origin, the jobs API, fault knobs), so these tests check what the client
does with real answers rather than the shapes of mocked ones.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image

from comfy_async import ComfyClient, new_prompt_id
from comfy_async.config import Backoff, ClientOptions, RetryPolicy
from comfy_async.errors import (
    NotFoundError,
    PermissionDeniedError,
    PromptValidationError,
    UnsupportedOperationError,
)
from comfy_async.models import FileRef
from comfy_async.testing import FakeComfyServer

OPTIONS = ClientOptions(retry=RetryPolicy(max_retries=3, backoff=Backoff(0.01, 0.02, jitter=0)))


def png(colour: tuple[int, int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (4, 4), colour).save(buffer, format="PNG")
    return buffer.getvalue()


PNG_RED = png((255, 0, 0, 255))
PNG_BLUE = png((0, 0, 255, 255))
PNG_MASK = png((0, 0, 0, 0))


def save_image_prompt(prefix: str = "t") -> dict[str, object]:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 255},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }


def client_for(server: FakeComfyServer, **kwargs: object) -> ComfyClient:
    if server.cloud:
        return ComfyClient.cloud(
            api_key=server.api_key, base_url=server.url, options=OPTIONS, **kwargs
        )  # type: ignore[arg-type]
    return ComfyClient(server.url, options=OPTIONS, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(params=["local", "cloud"])
async def fake(
    request: pytest.FixtureRequest,
    comfy_server: FakeComfyServer,
    comfy_cloud_server: FakeComfyServer,
) -> AsyncIterator[tuple[FakeComfyServer, ComfyClient]]:
    server = comfy_server if request.param == "local" else comfy_cloud_server
    async with client_for(server) as comfy:
        yield server, comfy


async def run(server: FakeComfyServer, comfy: ComfyClient, prefix: str = "t") -> str:
    prompt_id = new_prompt_id()
    answer = await comfy.prompts.submit(
        save_image_prompt(prefix), prompt_id=prompt_id, client_id=comfy.client_id
    )
    assert answer.prompt_id == prompt_id
    await server.wait_idle()
    return prompt_id


# --------------------------------------------------------------------------- prompts and results


async def test_a_prompt_round_trip(
    fake: tuple[FakeComfyServer, ComfyClient], tmp_path: Path
) -> None:
    server, comfy = fake
    prompt_id = await run(server, comfy)
    assert (await comfy.prompts.info()).queue_remaining == 0
    assert (await comfy.queue.get()).find(prompt_id) is None
    record = await comfy.history.get(prompt_id)
    assert record is not None
    assert record.status_str == "success"
    listing = await comfy.history.list(max_items=10)
    assert prompt_id in listing
    assert await comfy.jobs.available()
    job = await comfy.jobs.get(prompt_id)
    assert job is not None
    assert job.phase == "success"
    page = await comfy.jobs.list(status="completed", sort_by="created", limit=5)
    assert prompt_id in [entry.id for entry in page.jobs]
    saved = await comfy.files.save(record.outputs, tmp_path)
    assert saved
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in saved)
    await comfy.history.delete([prompt_id])
    assert await comfy.history.get(prompt_id) is None
    await comfy.history.clear()
    assert await comfy.jobs.get(new_prompt_id()) is None


async def test_a_refused_prompt(fake: tuple[FakeComfyServer, ComfyClient]) -> None:
    _, comfy = fake
    with pytest.raises(PromptValidationError) as caught:
        await comfy.prompts.submit(
            {"1": {"class_type": "NoSuchNode", "inputs": {}}}, prompt_id=new_prompt_id()
        )
    assert caught.value.error_type == "missing_node_type"


async def test_queue_operations(fake: tuple[FakeComfyServer, ComfyClient]) -> None:
    server, comfy = fake
    server.behaviours.set_duration("EmptyImage", 50.0)  # × time_scale 0.01: half a second
    ids = [new_prompt_id() for _ in range(6)]
    for index, prompt_id in enumerate(ids):
        await comfy.prompts.submit(save_image_prompt(f"q{index}"), prompt_id=prompt_id)
    queue = await comfy.queue.get()
    assert {item.prompt_id for item in (*queue.queue_running, *queue.queue_pending)} == set(ids)
    pending = [item.prompt_id for item in queue.pending_in_run_order]
    await comfy.queue.delete([pending[-1]])
    assert await comfy.jobs.cancel(pending[-2])
    result = await comfy.jobs.cancel_many([pending[-3]])
    assert result.any_cancelled
    await comfy.queue.clear()
    queue = await comfy.queue.get()
    assert queue.queue_pending == []
    running = [item.prompt_id for item in queue.queue_running]
    if running:
        await comfy.queue.interrupt(running[0])
    await comfy.queue.interrupt()
    await server.wait_idle()
    assert (await comfy.queue.get()).queue_running == []


# --------------------------------------------------------------------------- files


async def test_upload_then_view_returns_the_same_bytes(
    fake: tuple[FakeComfyServer, ComfyClient],
) -> None:
    _, comfy = fake
    first = await comfy.files.upload_image(PNG_RED, name="probe.png")
    assert first.name == "probe.png"
    assert await comfy.files.read(first.ref) == PNG_RED
    chunks = [chunk async for chunk in comfy.files.view(first.ref)]
    assert b"".join(chunks) == PNG_RED
    again = await comfy.files.upload_image(PNG_RED, name="probe.png")
    assert again.name == "probe.png"  # same bytes: the existing name


async def test_a_duplicate_name_upload_is_renamed(
    comfy_server: FakeComfyServer, tmp_path: Path
) -> None:
    async with client_for(comfy_server) as comfy:
        await comfy.files.upload_image(PNG_RED, name="probe.png")
        renamed = await comfy.files.upload_image(PNG_BLUE, name="probe.png")
        assert renamed.name == "probe (1).png"
        assert await comfy.files.read(renamed.ref) == PNG_BLUE
        path = tmp_path / "probe.png"
        path.write_bytes(PNG_BLUE)
        replaced = await comfy.files.upload_image(path, subfolder="sub", overwrite=True)
        assert (replaced.name, replaced.subfolder) == ("probe.png", "sub")
        mask = await comfy.files.upload_mask(PNG_MASK, original=replaced.ref, name="mask.png")
        assert mask.name == "mask.png"
        saved = await comfy.files.download(renamed.ref, tmp_path / "out.png")
        assert saved.read_bytes() == PNG_BLUE
        assert await comfy.files.view_metadata("checkpoints", "nothing.safetensors") is None


async def test_cloud_view_goes_to_the_second_origin_without_credentials(
    comfy_cloud_server: FakeComfyServer,
) -> None:
    server = comfy_cloud_server
    async with client_for(server, headers={"X-Proxy-Token": "proxy-secret-value"}) as comfy:
        upload = await comfy.files.upload_image(PNG_RED, name="cloud.png")
        assert await comfy.files.read(upload.ref) == PNG_RED
    (headers,) = server.signed_url_requests
    names = {name.lower() for name in headers}
    assert not names & {"x-api-key", "authorization", "cookie", "x-proxy-token", "origin"}
    assert server.api_key not in str(headers)


# --------------------------------------------------------------------------- the server itself


async def test_system_reads(fake: tuple[FakeComfyServer, ComfyClient]) -> None:
    _, comfy = fake
    assert (await comfy.system.stats()).system.python_version
    assert (await comfy.system.features()).supports_preview_metadata
    nodes = await comfy.system.object_info()
    assert "SaveImage" in nodes
    assert (await comfy.system.object_info_bytes()).startswith(b"{")
    assert list(await comfy.system.object_info("EmptyImage")) == ["EmptyImage"]
    assert await comfy.system.object_info("NoSuchNode") == {}
    assert isinstance(await comfy.system.embeddings(), list)
    assert isinstance(await comfy.system.extensions(), list)
    assert isinstance(await comfy.system.node_replacements(), dict)
    subgraphs = await comfy.system.global_subgraphs()
    if subgraphs:
        assert await comfy.system.global_subgraph(next(iter(subgraphs))) is not None
    assert await comfy.system.workflow_templates() == {}
    assert await comfy.system.i18n() == {}
    await comfy.system.free(unload_models=True, free_memory=True)
    folders = await comfy.models.folders()
    assert "checkpoints" in [folder.name for folder in folders]
    assert isinstance(await comfy.models.files("checkpoints"), list)
    assert await comfy.models.experiment_folders()
    assert isinstance(await comfy.models.experiment_files("checkpoints"), list)


async def test_internal_routes_local_only(fake: tuple[FakeComfyServer, ComfyClient]) -> None:
    server, comfy = fake
    if server.cloud:
        with pytest.raises(UnsupportedOperationError):
            await comfy.system.folder_paths()
        return
    assert isinstance(await comfy.system.logs(), str)
    assert isinstance((await comfy.system.logs_raw()).entries, list)
    await comfy.system.subscribe_logs(comfy.client_id, enabled=True)
    await comfy.system.subscribe_logs(comfy.client_id, enabled=False)
    assert "checkpoints" in await comfy.system.folder_paths()
    await run(server, comfy, prefix="internal")
    assert any(name.endswith("[output]") for name in await comfy.system.internal_files("output"))


async def test_user_data_settings_users(fake: tuple[FakeComfyServer, ComfyClient]) -> None:
    _, comfy = fake
    written = await comfy.userdata.put("workflows/a.json", b'{"a": 1}', full_info=True)
    assert written.path.endswith("a.json")
    assert await comfy.userdata.get("workflows/a.json") == b'{"a": 1}'
    assert [item.path for item in await comfy.userdata.list("workflows")] == ["a.json"]
    assert [entry.name for entry in await comfy.userdata.list_v2("workflows")] == ["a.json"]
    moved = await comfy.userdata.move("workflows/a.json", "workflows/b.json")
    assert moved.path.endswith("b.json")
    await comfy.userdata.delete("workflows/b.json")
    with pytest.raises(NotFoundError):
        await comfy.userdata.get("workflows/b.json")
    await comfy.settings.update({"Comfy.A": 1})
    await comfy.settings.set("Comfy.B", "x")
    assert await comfy.settings.get("Comfy.B") == "x"
    assert (await comfy.settings.all())["Comfy.A"] == 1
    assert await comfy.settings.get("Comfy.Nonexistent") is None
    users = await comfy.users.get()
    assert users.storage == "server"


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize("jobs_api", [None, False])
async def test_a_cut_submit_response_leaves_exactly_one_job(
    fake: tuple[FakeComfyServer, ComfyClient], jobs_api: bool | None
) -> None:
    server, _ = fake
    async with client_for(server, jobs_api=jobs_api) as comfy:
        server.faults.cut_prompt_response()
        prompt_id = new_prompt_id()
        answer = await comfy.prompts.submit(save_image_prompt("cut"), prompt_id=prompt_id)
        assert answer.prompt_id == prompt_id
        await server.wait_idle()
    assert server.posts_for(prompt_id) == 1
    assert (
        len([record for record in server.prompt_posts if record.sent_prompt_id == prompt_id]) == 1
    )


async def test_a_5xx_before_queueing_is_sent_again_once(
    fake: tuple[FakeComfyServer, ComfyClient],
) -> None:
    server, comfy = fake
    server.faults.fail_route("POST", "/prompt", status=503)
    prompt_id = new_prompt_id()
    await comfy.prompts.submit(save_image_prompt("retry"), prompt_id=prompt_id)
    await server.wait_idle()
    assert server.posts_for(prompt_id) == 1
    assert server.request_counts["POST /prompt"] == 2


async def test_get_retries_against_fault_knobs(fake: tuple[FakeComfyServer, ComfyClient]) -> None:
    server, comfy = fake
    server.faults.fail_route("GET", "/queue", status=503, times=2)
    server.faults.fail_route("GET", "/system_stats", status=429, times=1, retry_after=0.01)
    await comfy.queue.get()
    await comfy.system.stats()
    assert server.request_counts["GET /queue"] == 3
    assert server.request_counts["GET /system_stats"] == 2


async def test_concurrent_requests_share_one_session(
    fake: tuple[FakeComfyServer, ComfyClient],
) -> None:
    _, comfy = fake
    results = await asyncio.gather(*(comfy.queue.get() for _ in range(20)))
    assert len(results) == 20


async def test_a_wrong_key_is_refused_on_cloud(comfy_cloud_server: FakeComfyServer) -> None:
    async with ComfyClient.cloud(
        api_key="wrong-key-0000", base_url=comfy_cloud_server.url
    ) as comfy:
        with pytest.raises(PermissionDeniedError) as caught:
            await comfy.queue.get()
    assert caught.value.status == 403
    assert "wrong-key-0000" not in str(caught.value)


async def test_view_of_a_missing_file(fake: tuple[FakeComfyServer, ComfyClient]) -> None:
    _, comfy = fake
    with pytest.raises(NotFoundError):
        await comfy.files.read(FileRef(filename="missing.png", type="input"))
