"""``comfy.system``, ``comfy.models``, ``comfy.userdata``, ``comfy.settings``, ``comfy.users``."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from comfy_async import ComfyClient
from comfy_async.errors import ConflictError, NotFoundError
from tests.http_mocks import CLOUD, FAST, LOCAL, base, calls, mocked_http, serve
from tests.recordings import REAL_COMFYUI, find

# --------------------------------------------------------------------------- system


async def test_system_reads_decode_the_recorded_bodies(
    local: ComfyClient, mocked: mocked_http
) -> None:
    api = f"{LOCAL}/api"
    mocked.get(f"{api}/system_stats", body=find("10", "GET /system_stats").body)
    mocked.get(f"{api}/features", body=find("10", "GET /features").body)
    mocked.get(f"{api}/embeddings", body=find("10", "GET /embeddings").body)
    mocked.get(f"{api}/extensions", body=find("10", "GET /extensions").body)
    mocked.get(f"{api}/node_replacements", body=find("10", "GET /node_replacements").body)
    mocked.get(f"{api}/global_subgraphs", body=find("10", "GET /global_subgraphs").body)
    mocked.get(f"{api}/global_subgraphs/abc", payload={"source": "x", "data": {}})
    mocked.get(f"{api}/workflow_templates", body=find("10", "GET /workflow_templates").body)
    mocked.get(f"{api}/i18n", payload={"en": {}})
    stats = await local.system.stats()
    assert stats.system.os == "linux"
    assert stats.devices
    flags = await local.system.features()
    assert flags.supports_preview_metadata
    assert await local.system.embeddings() == []
    assert (await local.system.extensions())[0].startswith("/extensions/")
    assert "ResizeImagesByLongerEdge" in await local.system.node_replacements()
    assert await local.system.global_subgraphs()
    assert await local.system.global_subgraph("abc") == {"source": "x", "data": {}}
    assert await local.system.workflow_templates() == {}
    assert await local.system.i18n() == {"en": {}}


async def test_object_info(local: ComfyClient, mocked: mocked_http) -> None:
    mocked.get(
        f"{LOCAL}/api/object_info/EmptyImage",
        body=find("10", "GET /object_info/EmptyImage legacy node").body,
    )
    mocked.get(f"{LOCAL}/api/object_info/NoSuchNode", body=b"{}")
    assert (await local.system.object_info("EmptyImage"))["EmptyImage"].output == ["IMAGE"]
    assert await local.system.object_info("NoSuchNode") == {}


async def test_the_whole_object_info_dump() -> None:
    dump = (REAL_COMFYUI / "object_info.json").read_bytes()  # 1.6 MB: served for real

    async def object_info(request: web.Request) -> web.Response:
        return web.Response(body=dump, content_type="application/json")

    async with serve({("GET", "/api/object_info"): object_info}) as (server, _):
        async with ComfyClient(base(server), options=FAST) as comfy:
            nodes = await comfy.system.object_info()
            raw = await comfy.system.object_info_bytes()
    assert len(nodes) == 890
    assert raw == dump


async def test_free_and_internal_routes(local: ComfyClient, mocked: mocked_http) -> None:
    mocked.post(f"{LOCAL}/api/free")
    mocked.patch(f"{LOCAL}/internal/logs/subscribe")
    mocked.get(f"{LOCAL}/internal/logs", payload="line 1\nline 2\n")
    mocked.get(
        f"{LOCAL}/internal/logs/raw",
        payload={"entries": [{"t": "t0", "m": "hi\n"}], "size": {"cols": 80, "rows": 24}},
    )
    mocked.get(f"{LOCAL}/internal/folder_paths", body=find("10", "GET /internal/folder_paths").body)
    mocked.get(f"{LOCAL}/internal/files/output", body=find("10", "GET /internal/files/output").body)
    await local.system.free(unload_models=True, free_memory=False)
    (free,) = calls(mocked, "POST", f"{LOCAL}/api/free")
    assert json.loads(free["data"]) == {"unload_models": True, "free_memory": False}
    await local.system.subscribe_logs("client-logs-14", enabled=True)
    (patch,) = calls(mocked, "PATCH", f"{LOCAL}/internal/logs/subscribe")
    recorded = find("14", "PATCH /internal/logs/subscribe enabled=true")
    assert recorded.method == "PATCH"
    assert json.loads(patch["data"]) == {"clientId": "client-logs-14", "enabled": True}
    assert await local.system.logs() == "line 1\nline 2\n"
    assert (await local.system.logs_raw()).text == "hi\n"
    assert "checkpoints" in await local.system.folder_paths()
    assert (await local.system.internal_files("output"))[0].endswith("[output]")


# --------------------------------------------------------------------------- models


async def test_models_local_and_cloud(
    local: ComfyClient, cloud: ComfyClient, mocked: mocked_http
) -> None:
    mocked.get(f"{LOCAL}/api/models", body=find("10", "GET /models").body)
    mocked.get(f"{LOCAL}/api/models/checkpoints", payload=["sd/a.safetensors"])
    mocked.get(f"{LOCAL}/api/models/not_a_folder", status=404)
    mocked.get(f"{LOCAL}/api/experiment/models", body=find("10", "GET /experiment/models").body)
    mocked.get(
        f"{LOCAL}/api/experiment/models/loras",
        payload=[{"name": "l.safetensors", "pathIndex": 0, "modified": 1.0, "size": 3}],
    )
    mocked.get(f"{LOCAL}/api/experiment/models/preview/loras/0/l.safetensors", body=b"RIFF")
    folders = await local.models.folders()
    assert folders[0].name == "checkpoints"
    assert folders[0].folders == []
    assert [f.name for f in await local.models.files("checkpoints")] == ["sd/a.safetensors"]
    with pytest.raises(NotFoundError):
        await local.models.files("not_a_folder")
    assert (await local.models.experiment_folders())[0].folders
    (lora,) = await local.models.experiment_files("loras")
    assert (lora.path_index, lora.size) == (0, 3)
    assert await local.models.preview("loras", 0, "l.safetensors") == b"RIFF"
    # Cloud has no /api/models: the same names use the experiment routes
    mocked.get(f"{CLOUD}/api/experiment/models", payload=[{"name": "loras", "folders": ["x"]}])
    mocked.get(f"{CLOUD}/api/experiment/models/loras", payload=[{"name": "l", "pathIndex": 0}])
    assert (await cloud.models.folders())[0].folders == ["x"]
    assert (await cloud.models.files("loras"))[0].path_index == 0


# --------------------------------------------------------------------------- user data


async def test_userdata(local: ComfyClient, mocked: mocked_http) -> None:
    api = f"{LOCAL}/api"
    mocked.get(
        f"{api}/userdata?dir=workflows&recurse=true&full_info=true&split=false",
        payload=[{"path": "a.json", "size": 2, "modified": 1.5}],
    )
    mocked.get(
        f"{api}/userdata?dir=missing&recurse=false&full_info=false&split=false",
        status=404,
        body="Directory not found",
    )
    mocked.get(f"{api}/v2/userdata?path=", body=find("10", "GET /v2/userdata").body)
    mocked.get(f"{api}/userdata/workflows%2Fa.json", body=b"{}")
    mocked.post(
        f"{api}/userdata/workflows%2Fa.json?overwrite=false&full_info=true",
        payload={"path": "workflows/a.json", "size": 2},
    )
    mocked.post(f"{api}/userdata/workflows%2Fb.json?overwrite=false&full_info=false", status=409)
    mocked.delete(f"{api}/userdata/workflows%2Fa.json")
    mocked.post(
        f"{api}/userdata/workflows%2Fa.json/move/workflows%2Fc.json?overwrite=true",
        payload="workflows/c.json",
    )
    (item,) = await local.userdata.list("workflows", recurse=True, full_info=True)
    assert (item.path, item.size) == ("a.json", 2)
    with pytest.raises(NotFoundError, match="Directory not found"):
        await local.userdata.list("missing")
    assert await local.userdata.list_v2() == []
    assert await local.userdata.get("workflows/a.json") == b"{}"
    written = await local.userdata.put("workflows/a.json", b"{}", overwrite=False, full_info=True)
    assert written.size == 2
    (put,) = calls(
        mocked, "POST", f"{api}/userdata/workflows%2Fa.json?overwrite=false&full_info=true"
    )
    assert put["data"] == b"{}"
    with pytest.raises(ConflictError):
        await local.userdata.put("workflows/b.json", b"x", overwrite=False)
    await local.userdata.delete("workflows/a.json")
    moved = await local.userdata.move("workflows/a.json", "workflows/c.json", overwrite=True)
    assert moved.path == "workflows/c.json"


async def test_settings_and_users(local: ComfyClient, mocked: mocked_http) -> None:
    api = f"{LOCAL}/api"
    mocked.get(f"{api}/settings", body=find("10", "GET /settings").body)
    mocked.get(
        f"{api}/settings/Comfy.Nonexistent", body=find("10", "GET /settings/Comfy.Nonexistent").body
    )
    mocked.post(f"{api}/settings")
    mocked.post(f"{api}/settings/Comfy.X")
    mocked.get(f"{api}/users", body=find("10", "GET /users").body)
    mocked.post(f"{api}/users", payload="user-id-1")
    assert await local.settings.all() == {}
    assert await local.settings.get("Comfy.Nonexistent") is None
    await local.settings.update({"Comfy.A": 1})
    await local.settings.set("Comfy.X", [1, 2])
    assert json.loads(calls(mocked, "POST", f"{api}/settings")[0]["data"]) == {"Comfy.A": 1}
    assert json.loads(calls(mocked, "POST", f"{api}/settings/Comfy.X")[0]["data"]) == [1, 2]
    users = await local.users.get()
    assert not users.multi_user
    assert await local.users.create("bob") == "user-id-1"
    assert json.loads(calls(mocked, "POST", f"{api}/users")[0]["data"]) == {"username": "bob"}


async def test_the_user_header_selects_the_user(mocked: mocked_http) -> None:
    async with ComfyClient(LOCAL, user="alice") as comfy:
        mocked.get(f"{LOCAL}/api/settings", payload={})
        await comfy.settings.all()
        (call,) = calls(mocked, "GET", f"{LOCAL}/api/settings")
    assert call["headers"]["comfy-user"] == "alice"
