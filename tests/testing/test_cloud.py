"""The Cloud flavour: keys, token, per-user routing, shapes, redirects to a second origin."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from comfy_async.testing import FakeComfyServer
from tests.testing.replay import Sock

GRAPH = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 7},
    },
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "cloud"}},
}


def slow(color: int) -> dict[str, Any]:
    return {
        "1": {**GRAPH["1"], "inputs": {**GRAPH["1"]["inputs"], "color": color}},
        "2": {
            "class_type": "ProbeSleepProgress",
            "inputs": {
                "image": ["1", 0],
                "steps": 5,
                "delay": 2,
                "preview_format": "none",
                "text": "",
            },
        },
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }


async def test_api_key_required(comfy_cloud_server: FakeComfyServer) -> None:
    url = f"{comfy_cloud_server.url}/api/queue"
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as answer:
            assert answer.status == 401
        async with http.get(url, headers={"X-API-Key": "wrong"}) as answer:
            assert answer.status == 403
        async with http.get(url, headers=comfy_cloud_server.headers) as answer:
            assert answer.status == 200
        bad = comfy_cloud_server.ws_url("c").replace(comfy_cloud_server.api_key, "wrong")
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await http.ws_connect(bad)
        assert caught.value.status == 401


async def test_client_id_ignored_events_reach_every_user_socket(
    comfy_cloud_server: FakeComfyServer,
) -> None:
    async with aiohttp.ClientSession(headers=comfy_cloud_server.headers) as http:
        a = await Sock.open(http, comfy_cloud_server.ws_url("a"))
        b = await Sock.open(http, comfy_cloud_server.ws_url("b"))
        async with http.post(
            f"{comfy_cloud_server.url}/api/prompt",
            json={"prompt": GRAPH, "client_id": "a", "number": -5, "front": True},
        ) as answer:
            body = await answer.json()
        assert body["number"] >= 0  # number and front are ignored
        for sock in (a, b):
            await sock.wait_finished(body["prompt_id"])
            assert any(e["type"] == "execution_success" for e in sock.events())
        await a.close()
        await b.close()


async def test_history_v2_jobs_and_models_shapes(comfy_cloud_server: FakeComfyServer) -> None:
    server = comfy_cloud_server
    async with aiohttp.ClientSession(headers=server.headers) as http:
        ids = []
        for _ in range(3):
            async with http.post(f"{server.url}/api/prompt", json={"prompt": GRAPH}) as answer:
                ids.append((await answer.json())["prompt_id"])
            await server.wait_idle()
        async with http.get(f"{server.url}/api/history_v2") as answer:
            history = (await answer.json())["history"]
        assert [h["prompt_id"] for h in history] == ids[::-1]  # newest first
        assert set(history[0]) == {"prompt_id", "create_time", "workflow_id", "prompt", "outputs",
                                   "status", "meta"}  # fmt: skip
        assert set(history[0]["prompt"]) == {"priority", "prompt_id", "extra_data"}
        async with http.get(f"{server.url}/api/history_v2/{ids[0]}") as answer:
            single = await answer.json()
        assert single[ids[0]]["prompt"]["prompt"] == GRAPH
        async with http.get(f"{server.url}/api/jobs", params={"limit": "2"}) as answer:
            page = await answer.json()
        assert [j["id"] for j in page["jobs"]] == ids[:0:-1]
        cursor = page["pagination"]["next_cursor"]
        async with http.get(
            f"{server.url}/api/jobs", params={"limit": "2", "after": cursor}
        ) as answer:
            rest = await answer.json()
        assert [j["id"] for j in rest["jobs"]] == ids[:1]
        assert rest["pagination"]["next_cursor"] is None
        async with http.get(f"{server.url}/api/jobs", params={"sort_by": "created_at"}) as answer:
            assert answer.status == 400
        async with http.get(
            f"{server.url}/api/jobs", params={"sort_by": "execution_time"}
        ) as answer:
            assert answer.status == 200
        async with http.get(f"{server.url}/api/jobs/{ids[0]}") as answer:
            job = await answer.json()
        assert {"update_time", "user_id", "workspace_id", "execution_meta"} <= set(job)
        async with http.get(f"{server.url}/api/job/{ids[0]}/status") as answer:
            assert (await answer.json())["status"] == "success"
        async with http.get(f"{server.url}/api/experiment/models") as answer:
            models = await answer.json()
        assert set(models[0]) == {"name", "folders"}


async def test_batch_cancel_returns_a_list_and_404s_unknown_ids() -> None:
    async with FakeComfyServer(flavour="cloud", time_scale=0.1, cloud_concurrency=1) as server:
        async with aiohttp.ClientSession(headers=server.headers) as http:
            ids = []
            for color in (1, 2):
                async with http.post(f"{server.url}/api/prompt", json={"prompt": slow(color)}) as a:
                    ids.append((await a.json())["prompt_id"])
            unknown = "00000000-0000-4000-8000-000000000000"
            cancel = f"{server.url}/api/jobs/cancel"
            async with http.post(cancel, json={"job_ids": [ids[1], unknown]}) as answer:
                assert answer.status == 404
            async with http.post(cancel, json={"job_ids": ids}) as answer:
                assert await answer.json() == {"cancelled": ids}
            await server.wait_idle()
            async with http.get(f"{server.url}/api/jobs", params={"status": "cancelled"}) as a:
                assert {j["id"] for j in (await a.json())["jobs"]} == set(ids)  # both persist


async def test_several_jobs_run_at_once() -> None:
    async with FakeComfyServer(flavour="cloud", time_scale=0.05, cloud_concurrency=3) as server:
        async with aiohttp.ClientSession(headers=server.headers) as http:
            for color in range(4):
                async with http.post(f"{server.url}/api/prompt", json={"prompt": slow(color)}):
                    pass
            await asyncio.sleep(0.1)
            async with http.get(f"{server.url}/api/queue") as answer:
                queue = await answer.json()
            assert (len(queue["queue_running"]), len(queue["queue_pending"])) == (3, 1)
            await server.wait_idle()


async def test_view_redirects_to_a_second_origin_without_the_key(
    comfy_cloud_server: FakeComfyServer,
) -> None:
    server = comfy_cloud_server
    async with aiohttp.ClientSession(headers=server.headers) as http:
        sock = await Sock.open(http, server.ws_url("v"))
        async with http.post(f"{server.url}/api/prompt", json={"prompt": GRAPH}) as answer:
            prompt_id = (await answer.json())["prompt_id"]
        await sock.wait_finished(prompt_id)
        await sock.close()
        executed = next(e for e in sock.events() if e["type"] == "executed")
        image = executed["data"]["output"]["images"][0]
        async with http.get(
            f"{server.url}/api/view", params=image, allow_redirects=False
        ) as answer:
            assert answer.status == 302
            location = answer.headers["Location"]
    assert location.startswith("http://127.0.0.2:")
    async with aiohttp.ClientSession() as plain:
        async with plain.get(location) as answer:
            assert answer.status == 200
            assert (await answer.read()).startswith(b"\x89PNG")
        async with plain.get(location.replace("signature=", "signature=x")) as answer:
            assert answer.status == 403
    received = {k.lower() for k in server.signed_url_requests[0]}
    assert not received & {"x-api-key", "authorization", "cookie"}
    assert json.dumps(server.signed_url_requests).count(server.api_key) == 0
