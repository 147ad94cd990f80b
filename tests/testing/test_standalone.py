"""``python -m comfy_async.testing`` runs standalone; a plain aiohttp script can use it."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import aiohttp
import pytest

GRAPH = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 16, "height": 8, "batch_size": 1, "color": 3},
    },
    "2": {
        "class_type": "ProbeSleepProgress",
        "inputs": {
            "image": ["1", 0],
            "steps": 3,
            "delay": 0.1,
            "preview_format": "PNG",
            "text": "hi",
        },
    },
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "cli"}},
}


async def run_workflow(url: str) -> bytes:
    """What a user's script does: listen, submit, wait for the finish marker, fetch the output."""
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(
            url.replace("http", "ws") + "/ws?clientId=script", max_msg_size=0
        )
        async with http.post(
            f"{url}/api/prompt", json={"prompt": GRAPH, "client_id": "script"}
        ) as r:
            prompt_id = (await r.json())["prompt_id"]
        outputs = []
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                continue
            event = json.loads(message.data)
            if event["type"] == "executed":
                outputs += event["data"]["output"]["images"]
            if event["type"] == "executing" and event["data"] == {
                "node": None,
                "prompt_id": prompt_id,
            }:
                break
        await ws.close()
        async with http.get(f"{url}/api/view", params=outputs[0]) as r:
            return await r.read()


async def test_module_runs_serves_and_stops_on_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "comfy_async.testing", "--port", "0", "--time-scale", "0.1",
        "--node-duration", "EmptyImage=0.01",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        url = line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as http, http.get(f"{url}/api/system_stats") as answer:
            assert answer.status == 200
            assert "system" in await answer.json()
        assert (await run_workflow(url)).startswith(b"\x89PNG")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_module_serves_the_manager_when_asked() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "comfy_async.testing", "--port", "0", "--manager",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        url = line.strip().rsplit(" ", 1)[-1]
        notice = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert notice.startswith("ComfyUI-Manager 4 can install https://")
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{url}/api/v2/manager/version") as answer,
        ):
            assert answer.status == 200
            assert (await answer.text()).startswith("V4")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_refuses_non_loopback_hosts() -> None:
    from comfy_async.testing import FakeComfyServer

    with pytest.raises(ValueError, match="loopback"):
        FakeComfyServer(host="0.0.0.0")
