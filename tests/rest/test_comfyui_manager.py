"""``comfy.manager`` against the Manager fake: detection, refused inputs, the queue followed to
its end (with faults: a failing task, a restart that loses the queue, a worker not started,
5xx answers), installed packs and models, reboot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import aiohttp.test_utils
import aiohttp.web
import pytest

from comfy_async import ComfyClient
from comfy_async._transport.rest.comfyui_manager import (
    check_install_url,
    check_model_file_name,
    check_model_folder,
)
from comfy_async.config import Backoff, ClientOptions, RetryPolicy
from comfy_async.errors import (
    ConfigurationError,
    ManagerTaskError,
    ManagerUnavailableError,
    PermissionDeniedError,
    UnsafePathError,
    UnsafeURLError,
    UnsupportedOperationError,
)
from comfy_async.events import UnknownEvent
from comfy_async.models import ManagerProgress, ManagerTicket
from comfy_async.testing import EXAMPLE_PACK_NODES, EXAMPLE_PACK_URL, FakeComfyServer
from tests.http_mocks import FAST, LOCAL, mocked_http

pytestmark = pytest.mark.comfy_server(manager=True)

OPTIONS = ClientOptions(retry=RetryPolicy(max_retries=3, backoff=Backoff(0.01, 0.02, jitter=0)))
POLL = 0.005


@pytest.fixture
async def comfy(comfy_server: FakeComfyServer) -> AsyncIterator[ComfyClient]:
    async with ComfyClient(comfy_server.url, options=OPTIONS) as client:
        client.manager.poll_interval = POLL
        yield client


def total_requests(server: FakeComfyServer) -> int:
    return sum(server.request_counts.values())


async def collect(comfy: ComfyClient, *tickets: ManagerTicket) -> list[ManagerProgress]:
    return [step async for step in comfy.manager.follow(*tickets)]


# --------------------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ssh://git@github.com/owner/pack.git",
        "git://github.com/owner/pack",
        "git@github.com:owner/pack.git",
        "/local/folder",
        "https://",
        "https://user:secret@github.com/owner/pack",
        "https://github.com/owner/pack --upload-pack=touch",
        "https://github.com/owner/pack\n",
        "https://[::1",
        "",
    ],
)
def test_only_plain_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(UnsafeURLError) as caught:
        check_install_url(url)
    assert "secret" not in str(caught.value)


def test_http_and_https_urls_pass() -> None:
    for url in ("https://github.com/owner/pack", "HTTP://example.com/x.git"):
        assert check_install_url(url) == url


@pytest.mark.parametrize(
    "name", ["../x.safetensors", "sub/x.safetensors", "a\\b.ckpt", "/abs.ckpt", "C:x.ckpt", "..",
             ".", "", "x\x00.ckpt", "a" * 256]
)  # fmt: skip
def test_model_names_are_bare_file_names(name: str) -> None:
    with pytest.raises(UnsafePathError):
        check_model_file_name(name)


def test_model_folders_stay_inside_the_models_folder() -> None:
    assert check_model_folder("checkpoints") == "checkpoints"
    assert check_model_folder("loras/sdxl/") == "loras/sdxl"
    for folder in ("", "../x", "a/../../b", "/abs", "custom_nodes/pack", "C:/x"):
        with pytest.raises(UnsafePathError):
            check_model_folder(folder)


async def test_unsafe_inputs_are_refused_before_any_request(
    comfy: ComfyClient, comfy_server: FakeComfyServer
) -> None:
    before = total_requests(comfy_server)
    with pytest.raises(UnsafeURLError):
        await comfy.manager.install_node("file:///tmp/pack")
    with pytest.raises(UnsafeURLError):
        await comfy.manager.install_model(
            "ftp://host/x.safetensors", folder="checkpoints", name="x.safetensors"
        )
    with pytest.raises(UnsafePathError):
        await comfy.manager.install_model(
            "https://host/x.safetensors", folder="checkpoints", name="../x.safetensors"
        )
    with pytest.raises(UnsafePathError):
        await comfy.manager.install_model(
            "https://host/x.safetensors", folder="../..", name="x.safetensors"
        )
    with pytest.raises(ConfigurationError):
        await comfy.manager.install_registry_node("../pack")
    assert total_requests(comfy_server) == before
    assert comfy_server.manager_tasks == []


# --------------------------------------------------------------------------- detection


async def test_info_reads_the_version_and_the_managers_flags(comfy: ComfyClient) -> None:
    info = await comfy.manager.info()
    assert info.version.startswith("V4")
    assert info.flags == {"supports_v4": True, "supports_csrf_post": True}
    assert await comfy.manager.available()


@pytest.mark.comfy_server(manager=False)
async def test_a_server_without_the_manager_raises_a_typed_error(
    comfy: ComfyClient, comfy_server: FakeComfyServer
) -> None:
    # ComfyUI advertises extension.manager.supports_v4 with or without the Manager.
    assert (await comfy.system.features()).flags["extension"]["manager"]["supports_v4"]
    assert not await comfy.manager.available()
    with pytest.raises(ManagerUnavailableError, match="--enable-manager") as caught:
        await comfy.manager.install_node(EXAMPLE_PACK_URL)
    assert isinstance(caught.value, UnsupportedOperationError)
    assert caught.value.legacy_version is None
    for call in (comfy.manager.status(), comfy.manager.installed(), comfy.manager.reboot()):
        with pytest.raises(ManagerUnavailableError):
            await call
    assert comfy_server.request_counts["POST /v2/manager/queue/task"] == 0


async def test_a_legacy_manager_is_named() -> None:
    with mocked_http() as mocked:
        mocked.get(f"{LOCAL}/api/v2/manager/version", status=404)
        mocked.get(f"{LOCAL}/api/manager/version", status=200, body="V3.41")
        async with ComfyClient(LOCAL, options=FAST) as comfy:
            with pytest.raises(ManagerUnavailableError, match="legacy") as caught:
                await comfy.manager.info()
    assert caught.value.legacy_version == "V3.41"


async def test_a_page_served_for_every_path_is_not_the_manager() -> None:
    with mocked_http() as mocked:
        mocked.get(
            f"{LOCAL}/api/v2/manager/version",
            status=200,
            body="<!doctype html><html>app</html>",
            content_type="text/html",
        )
        async with ComfyClient(LOCAL, options=FAST) as comfy:
            assert not await comfy.manager.available()


@pytest.mark.comfy_server(manager=False)
async def test_comfy_cloud_has_no_manager(comfy_cloud_server: FakeComfyServer) -> None:
    async with ComfyClient(
        comfy_cloud_server.url, api_key=comfy_cloud_server.api_key, flavour="cloud"
    ) as comfy:
        with pytest.raises(ManagerUnavailableError, match="Cloud"):
            await comfy.manager.status()
    assert comfy_cloud_server.request_counts["GET /v2/manager/version"] == 0


def test_the_fake_refuses_a_cloud_manager() -> None:
    with pytest.raises(ConfigurationError):
        FakeComfyServer(flavour="cloud", manager=True)


# --------------------------------------------------------------------------- installs


async def test_install_node_is_followed_to_the_end_and_joins_object_info(
    comfy: ComfyClient, comfy_server: FakeComfyServer
) -> None:
    node = EXAMPLE_PACK_NODES[0]
    assert node not in await comfy.system.object_info()
    ticket = await comfy.manager.install_node(EXAMPLE_PACK_URL)
    (task,) = comfy_server.manager_tasks
    assert task["kind"] == "install"
    assert task["client_id"] == comfy.client_id
    assert task["params"]["repository"] == EXAMPLE_PACK_URL
    assert task["params"]["id"] == "comfyui-example-pack"
    steps = await collect(comfy, ticket)
    assert steps[-1].state == "done"
    assert steps[-1].succeeded
    assert [step.state for step in steps] == sorted(
        (step.state for step in steps), key=["queued", "running", "done"].index
    )
    assert (steps[-1].done, steps[-1].total) == (1, 1)
    assert sum(step.state == "done" for step in steps) == 1
    schema = (await comfy.system.object_info())[node]
    assert schema.python_module == "custom_nodes.comfyui-example-pack"
    assert schema.input.required is not None
    assert "image" in schema.input.required
    (pack,) = await comfy.manager.installed()
    assert pack.name == "comfyui-example-pack"
    assert pack.aux_id == "comfy-async/comfyui-example-pack"
    # The node is usable: the server's validation accepts a graph with it.
    nodes = await comfy.nodes(refresh=True)
    assert node in nodes


@pytest.mark.comfy_server(manager=True, manager_task_duration=100)  # 1 s per task
async def test_follow_shows_waiting_then_running_then_done(
    comfy: ComfyClient, comfy_server: FakeComfyServer
) -> None:
    first = await comfy.manager.install_node(EXAMPLE_PACK_URL)
    second = await comfy.manager.install_registry_node("unknown-pack")
    states: dict[str, list[str]] = {first.task_id: [], second.task_id: []}
    async for step in comfy.manager.follow(first, second):
        states[step.ticket.task_id].append(step.state)
    assert states[first.task_id][0] == "running"
    assert states[second.task_id][0] == "queued"
    assert states[first.task_id][-1] == states[second.task_id][-1] == "done"
    assert "running" in states[second.task_id]


async def test_a_failed_install_ends_done_and_wait_raises_with_the_managers_message(
    comfy: ComfyClient,
) -> None:
    ticket = await comfy.manager.install_node("https://github.com/someone/not-listed")
    steps = await collect(comfy, ticket)
    assert steps[-1].state == "done"
    assert not steps[-1].succeeded
    with pytest.raises(ManagerTaskError, match="not found") as caught:
        await comfy.manager.wait(ticket)
    assert caught.value.task_id == ticket.task_id
    assert caught.value.status == "error"
    assert await comfy.manager.installed() == []


async def test_installing_twice_is_skipped(comfy: ComfyClient) -> None:
    await comfy.manager.wait(await comfy.manager.install_node(EXAMPLE_PACK_URL))
    (record,) = await comfy.manager.wait(await comfy.manager.install_node(EXAMPLE_PACK_URL + "/"))
    assert record.outcome == "skip"
    assert record.succeeded


@pytest.mark.comfy_server(manager=True, manager_packs={"registry-pack": ["RegistryNode"]})
async def test_install_from_the_registry(comfy: ComfyClient) -> None:
    ticket = await comfy.manager.install_registry_node("registry-pack", "1.0.2")
    (record,) = await comfy.manager.wait(ticket)
    assert record.succeeded
    assert ticket.target == "registry-pack@1.0.2"
    assert "RegistryNode" in await comfy.system.object_info()
    (pack,) = await comfy.manager.installed()
    assert (pack.cnr_id, pack.version) == ("registry-pack", "1.0.2")


async def test_install_model_joins_the_inventory(
    comfy: ComfyClient, comfy_server: FakeComfyServer
) -> None:
    ticket = await comfy.manager.install_model(
        "https://huggingface.co/org/repo/resolve/main/new.safetensors",
        folder="checkpoints",
        name="new.safetensors",
        base="SD1.x",
    )
    assert ticket.kind == "install-model"
    (task,) = comfy_server.manager_tasks
    assert (task["filename"], task["save_path"], task["base"]) == (
        "new.safetensors",
        "checkpoints",
        "SD1.x",
    )
    await comfy.manager.wait(ticket)
    assert "new.safetensors" in [f.name for f in await comfy.models.files("checkpoints")]
    loader = (await comfy.system.object_info("CheckpointLoaderSimple"))["CheckpointLoaderSimple"]
    assert loader.input.required is not None
    assert "new.safetensors" in str(loader.input.required["ckpt_name"])


async def test_a_model_into_an_unknown_folder_fails_in_the_manager(comfy: ComfyClient) -> None:
    ticket = await comfy.manager.install_model(
        "https://example.com/x.bin", folder="no_such_folder", name="x.bin"
    )
    with pytest.raises(ManagerTaskError, match="Model installation error"):
        await comfy.manager.wait(ticket)


# --------------------------------------------------------------------------- faults


@pytest.mark.comfy_server(manager=True, manager_task_duration=1000)  # 10 s: never finishes
async def test_a_task_lost_in_a_restart_ends_with_a_typed_error(
    comfy: ComfyClient, comfy_server: FakeComfyServer
) -> None:
    ticket = await comfy.manager.install_node(EXAMPLE_PACK_URL)
    steps = comfy.manager.follow(ticket)
    first = await anext(steps)
    assert first.state in {"queued", "running"}
    await comfy_server.restart()  # the queue and the history are gone
    with pytest.raises(ManagerTaskError, match="without a history entry") as caught:
        await anext(steps)
    assert caught.value.status == "lost"
    await steps.aclose()


async def test_a_worker_that_is_not_running_is_started(
    comfy: ComfyClient, comfy_server: FakeComfyServer
) -> None:
    # A task queued by another tool that never started the worker.
    ticket = ManagerTicket(
        task_id="queued-elsewhere", kind="install", target="x", client_id=comfy.client_id
    )
    body = {
        "ui_id": ticket.task_id,
        "client_id": comfy.client_id,
        "kind": "install",
        "params": {"id": "comfyui-example-pack", "version": "unknown",
                   "selected_version": "unknown", "repository": EXAMPLE_PACK_URL},
    }  # fmt: skip
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{comfy_server.url}/api/v2/manager/queue/task", json=body) as answer:
            assert answer.status == 200
    (record,) = await comfy.manager.wait(ticket)
    assert record.succeeded
    assert comfy_server.request_counts["POST /v2/manager/queue/start"] == 1


async def test_server_errors_while_following_are_retried(
    comfy: ComfyClient, comfy_server: FakeComfyServer
) -> None:
    ticket = await comfy.manager.install_node(EXAMPLE_PACK_URL)
    comfy_server.faults.fail_route("GET", "/v2/manager/queue/status", status=503, times=2)
    comfy_server.faults.fail_route("GET", "/v2/manager/queue/history", status=500)
    (record,) = await comfy.manager.wait(ticket)
    assert record.succeeded


async def test_status_counts_all_tasks_or_mine(
    comfy: ComfyClient, comfy_server: FakeComfyServer
) -> None:
    await comfy.manager.wait(await comfy.manager.install_node(EXAMPLE_PACK_URL))
    async with ComfyClient(comfy_server.url, options=OPTIONS) as other:
        other.manager.poll_interval = POLL
        await collect(other, await other.manager.install_node("https://h.example/x/y"))
        overall = await other.manager.status()
        mine = await other.manager.status(mine=True)
    assert (overall.done_count, overall.total_count) == (2, 0)
    assert (mine.done_count, mine.client_id) == (1, other.client_id)


@pytest.mark.comfy_server(manager=True, manager_task_duration=30)
async def test_a_ticket_of_another_session_is_followed_by_its_own_counts(
    comfy: ComfyClient, comfy_server: FakeComfyServer
) -> None:
    async with ComfyClient(comfy_server.url, options=OPTIONS) as other:
        ticket = await other.manager.install_node(EXAMPLE_PACK_URL)
    # This session has no task of its own: the ticket's client is what counts, not "lost".
    steps = await collect(comfy, ticket)
    assert steps[-1].state == "done"
    assert steps[-1].succeeded
    assert (steps[-1].done, steps[-1].total) == (1, 1)


async def test_following_nothing_sends_nothing(
    comfy: ComfyClient, comfy_server: FakeComfyServer
) -> None:
    before = total_requests(comfy_server)
    assert await collect(comfy) == []
    assert await comfy.manager.wait() == []
    assert total_requests(comfy_server) == before


# --------------------------------------------------------------------------- reboot


async def test_reboot_restarts_the_server_and_installed_packs_stay(
    comfy: ComfyClient, comfy_server: FakeComfyServer
) -> None:
    await comfy.manager.wait(await comfy.manager.install_node(EXAMPLE_PACK_URL))
    await comfy.manager.reboot()
    assert comfy_server.manager_reboots == 1
    await comfy.system.stats()  # the server answers again (requests are retried meanwhile)
    assert [pack.name for pack in await comfy.manager.installed()] == ["comfyui-example-pack"]
    assert EXAMPLE_PACK_NODES[0] in await comfy.system.object_info()
    assert (await comfy.manager.status()).done_count == 0  # the history did not survive


@pytest.mark.comfy_server(manager=True, manager_load_at_start=True)
async def test_a_fake_that_loads_packs_at_start_lists_them_only_after_the_reboot(
    comfy: ComfyClient, comfy_server: FakeComfyServer
) -> None:
    await comfy.manager.wait(await comfy.manager.install_node(EXAMPLE_PACK_URL))
    assert [pack.name for pack in await comfy.manager.installed()] == ["comfyui-example-pack"]
    assert EXAMPLE_PACK_NODES[0] not in await comfy.system.object_info()
    await comfy.manager.reboot()
    async with asyncio.timeout(10):  # the old process may answer until it is replaced
        while EXAMPLE_PACK_NODES[0] not in await comfy.system.object_info():
            await asyncio.sleep(0.01)
    assert comfy_server.manager_reboots == 1


async def test_a_refused_reboot_is_a_permission_error(
    comfy: ComfyClient, comfy_server: FakeComfyServer
) -> None:
    comfy_server.faults.fail_route("POST", "/v2/manager/reboot", status=403)
    with pytest.raises(PermissionDeniedError):
        await comfy.manager.reboot()
    assert comfy_server.manager_reboots == 0


async def test_a_reboot_that_drops_the_connection_is_not_an_error() -> None:
    async def drop(request: aiohttp.web.Request) -> aiohttp.web.Response:
        assert request.transport is not None
        request.transport.close()  # the process was replaced before answering
        raise ConnectionResetError

    async def version(_: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(text="V4.2.2")

    app = aiohttp.web.Application()
    app.router.add_get("/api/v2/manager/version", version)
    app.router.add_post("/api/v2/manager/reboot", drop)
    server = aiohttp.test_utils.TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with ComfyClient(str(server.make_url("")), options=FAST) as comfy:
            await comfy.manager.reboot()
    finally:
        await server.close()


async def test_the_managers_websocket_events_reach_the_session_stream(comfy: ComfyClient) -> None:
    tap = comfy.events()
    await comfy.connect()
    await comfy.manager.wait(await comfy.manager.install_node(EXAMPLE_PACK_URL))
    seen: list[str] = []
    async with asyncio.timeout(10):
        async for event in tap:
            if isinstance(event, UnknownEvent) and event.type.startswith("cm-"):
                seen.append(event.type)
                if event.type == "cm-queue-status":
                    break
    tap.close()
    assert seen == ["cm-task-started", "cm-task-completed", "cm-queue-status"]
