"""``manager``: installs followed to the end with progress, status, reboot, refused inputs."""

from __future__ import annotations

import aiohttp
import pytest

from comfy_async.cli import ExitCode
from comfy_async.testing import EXAMPLE_PACK_NODES, EXAMPLE_PACK_URL, FakeComfyServer

# A second per Manager task: the first look at the queue (right after the install) sees it run.
pytestmark = pytest.mark.comfy_server(manager=True, manager_task_duration=100)


async def object_info(server: FakeComfyServer) -> dict[str, object]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.url}/api/object_info") as answer,
    ):
        assert answer.status == 200
        data: dict[str, object] = await answer.json()
        return data


async def test_install_node_shows_progress_and_ends_with_the_node_in_object_info(
    cli, comfy_server: FakeComfyServer
) -> None:
    node = EXAMPLE_PACK_NODES[0]
    assert node not in await object_info(comfy_server)
    result = await cli("manager", "install-node", EXAMPLE_PACK_URL)
    assert result.code == ExitCode.OK, result.err
    progress = result.err.splitlines()
    assert progress[0].startswith(f"queued install of {EXAMPLE_PACK_URL} (task ")
    assert f"{EXAMPLE_PACK_URL}: running (0/1 done)" in progress
    assert progress[-1] == f"{EXAMPLE_PACK_URL}: done: success (1/1 done)"
    assert result.out.startswith(f"installed {EXAMPLE_PACK_URL} ")
    assert node in await object_info(comfy_server)
    shown = await cli("nodes", node)
    assert shown.code == ExitCode.OK
    assert "comfyui-example-pack" in shown.out.splitlines()[0]
    again = await cli("manager", "install-node", EXAMPLE_PACK_URL, "--quiet")
    assert (again.code, again.out, again.err) == (
        ExitCode.OK,
        f"already installed: {EXAMPLE_PACK_URL}\n",
        "",
    )


async def test_install_node_in_json_is_one_line_per_step(
    cli, comfy_server: FakeComfyServer
) -> None:
    result = await cli("manager", "install-node", EXAMPLE_PACK_URL, "--json")
    assert result.code == ExitCode.OK, result.err
    *steps, outcome = result.json_lines()
    assert [step["state"] for step in steps] == ["running", "done"]
    assert outcome["status"] == "success"
    assert outcome["succeeded"] is True
    assert outcome["task_id"] == steps[0]["task_id"]
    assert result.err == ""


async def test_a_failed_install_exits_1_with_the_managers_message(cli) -> None:
    result = await cli("manager", "install-node", "https://github.com/someone/unlisted")
    assert result.code == ExitCode.FAILED
    assert result.err.splitlines()[-1].startswith("error: ComfyUI-Manager task ")
    assert "not found" in result.err
    assert result.out == ""


async def test_install_model_joins_the_models_list(cli) -> None:
    url = "https://huggingface.co/org/repo/resolve/main/detail.safetensors"
    result = await cli(
        "manager", "install-model", url, "--folder", "loras", "--name", "detail.safetensors"
    )
    assert result.code == ExitCode.OK, result.err
    assert result.out == f"installed {url} as loras/detail.safetensors\n"
    listed = await cli("models", "loras")
    assert "detail.safetensors" in listed.out.splitlines()


@pytest.mark.parametrize(
    "argv",
    [
        ("install-node", "file:///srv/pack"),
        ("install-node", "ssh://git@github.com/owner/pack"),
        ("install-node",),
        ("install-node", EXAMPLE_PACK_URL, "--registry", "x"),
        ("install-node", "--registry", "../x"),
        ("install-model", "ftp://h/m.ckpt", "--folder", "checkpoints", "--name", "m.ckpt"),
        ("install-model", "https://h/m.ckpt", "--folder", "checkpoints", "--name", "../m.ckpt"),
        ("install-model", "https://h/m.ckpt", "--folder", "../../etc", "--name", "m.ckpt"),
    ],
)
async def test_unsafe_or_incomplete_input_is_a_usage_error_and_nothing_is_queued(
    cli, comfy_server: FakeComfyServer, argv: tuple[str, ...]
) -> None:
    result = await cli("manager", *argv)
    assert result.code == ExitCode.USAGE
    assert result.err.startswith("error: ")
    assert comfy_server.manager_tasks == []


async def test_status_shows_version_queue_and_packs(cli) -> None:
    empty = await cli("manager", "status")
    assert empty.code == ExitCode.OK
    assert empty.out.splitlines() == [
        "ComfyUI-Manager V4.2.2",
        "queue: 0 pending, 0 running, 0 done (idle)",
        "no node packs installed",
    ]
    assert (await cli("manager", "install-node", EXAMPLE_PACK_URL)).code == ExitCode.OK
    shown = await cli("manager", "status")
    lines = shown.out.splitlines()
    assert lines[1] == "queue: 0 pending, 0 running, 1 done (idle)"
    assert lines[2].split() == ["PACK", "VERSION", "SOURCE", "ENABLED"]
    assert lines[3].split()[0] == "comfyui-example-pack"
    data = (await cli("manager", "status", "--json")).json()
    assert data["flags"]["supports_csrf_post"] is True
    assert [pack["name"] for pack in data["installed"]] == ["comfyui-example-pack"]


async def test_reboot_restarts_the_server(cli, comfy_server: FakeComfyServer) -> None:
    result = await cli("manager", "reboot")
    assert (result.code, result.out) == (ExitCode.OK, "the server is restarting\n")
    assert comfy_server.manager_reboots == 1


async def test_manager_without_an_action_is_a_usage_error(cli) -> None:
    result = await cli("manager")
    assert result.code == ExitCode.USAGE
    assert "install-node" in result.err


@pytest.mark.comfy_server(manager=False)
async def test_a_server_without_the_manager_exits_1_with_the_reason(cli) -> None:
    result = await cli("manager", "install-node", EXAMPLE_PACK_URL)
    assert result.code == ExitCode.FAILED
    assert "no ComfyUI-Manager on this server" in result.err
    assert "--enable-manager" in result.err
