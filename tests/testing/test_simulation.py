"""Execution simulation details: scale, images, behaviours, the validation seam, the fixtures."""

from __future__ import annotations

import asyncio
import io
import json
import time
from typing import Any

import aiohttp
from PIL import Image

from comfy_async.testing import (
    FakeComfyServer,
    NodeBehaviour,
    TopLevelValidator,
    ValidationOutcome,
)
from comfy_async.testing._images import PREVIEW_JPEG, decode_png, solid_png
from tests.testing.replay import Sock

GRAPH = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 9},
    },
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "sim"}},
}


async def test_500_prompts_complete_with_every_finish_marker() -> None:
    async with FakeComfyServer(time_scale=0) as server, aiohttp.ClientSession() as http:
        sock = await Sock.open(http, server.ws_url("bulk"))
        started = time.monotonic()
        semaphore = asyncio.Semaphore(32)

        async def one(i: int) -> str:
            graph = {
                **GRAPH,
                "2": {**GRAPH["2"], "inputs": {**GRAPH["2"]["inputs"], "filename_prefix": f"b{i}"}},
            }
            async with (
                semaphore,
                http.post(
                    f"{server.url}/api/prompt", json={"prompt": graph, "client_id": "bulk"}
                ) as answer,
            ):
                return str((await answer.json())["prompt_id"])

        ids = await asyncio.gather(*(one(i) for i in range(500)))
        await server.wait_idle(30)
        async with asyncio.timeout(10):
            while True:
                done = {
                    e["data"]["prompt_id"]
                    for e in sock.events()
                    if e["type"] == "executing" and e["data"]["node"] is None
                }
                if done >= set(ids):
                    break
                await asyncio.sleep(0.01)
        assert time.monotonic() - started < 20
        await sock.close()


async def test_outputs_and_previews_are_real_images(comfy_server: FakeComfyServer) -> None:
    graph = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 24, "height": 12, "batch_size": 1, "color": 0x336699},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "real"}},
    }
    async with aiohttp.ClientSession() as http:
        sock = await Sock.open(http, comfy_server.ws_url("img"))
        async with http.post(
            f"{comfy_server.url}/prompt", json={"prompt": graph, "client_id": "img"}
        ) as a:
            prompt_id = (await a.json())["prompt_id"]
        await sock.wait_finished(prompt_id)
        await sock.close()
        ref = next(e for e in sock.events() if e["type"] == "executed")["data"]["output"]["images"][
            0
        ]
        assert ref["filename"] == "real_00001_.png"
        async with http.get(f"{comfy_server.url}/view", params=ref) as answer:
            image = Image.open(io.BytesIO(await answer.read()))
    assert image.size == (24, 12)
    assert image.getpixel((0, 0)) == (0x33, 0x66, 0x99)
    assert Image.open(io.BytesIO(PREVIEW_JPEG)).format == "JPEG"


def test_png_decoder_reads_what_pillow_writes() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (5, 3), (1, 2, 3, 40)).save(buffer, "PNG")
    decoded = decode_png(buffer.getvalue())
    assert (decoded.width, decoded.height) == (5, 3)
    assert decoded.rgba[:4] == bytes((1, 2, 3, 40))
    assert decode_png(solid_png(2, 2, 0x010203)).rgba[:4] == bytes((1, 2, 3, 255))


async def test_mask_upload_applies_alpha(comfy_server: FakeComfyServer) -> None:
    mask = io.BytesIO()
    Image.new("RGBA", (4, 4), (0, 0, 0, 7)).save(mask, "PNG")
    async with aiohttp.ClientSession() as http:
        form = aiohttp.FormData()
        form.add_field("image", solid_png(4, 4, 0xFF0000), filename="orig.png")
        async with http.post(f"{comfy_server.url}/upload/image", data=form):
            pass
        form = aiohttp.FormData()
        form.add_field("image", mask.getvalue(), filename="mask.png")
        form.add_field("original_ref", json.dumps({"filename": "orig.png", "type": "input"}))
        async with http.post(f"{comfy_server.url}/upload/mask", data=form) as answer:
            assert await answer.json() == {"name": "mask.png", "subfolder": "", "type": "input"}
        async with http.get(
            f"{comfy_server.url}/view", params={"filename": "mask.png [input]"}
        ) as a:
            result = Image.open(io.BytesIO(await a.read()))
    assert result.getpixel((1, 1)) == (255, 0, 0, 7)


async def test_registered_behaviours_and_time_scale() -> None:
    behaviours = {
        "SaveImage": NodeBehaviour(duration=1.0, steps=2, preview="image/png", text="saving"),
    }
    async with FakeComfyServer(time_scale=0.05, behaviours=behaviours) as server:
        async with aiohttp.ClientSession() as http:
            sock = await Sock.open(http, server.ws_url("b"))
            started = time.monotonic()
            async with http.post(
                f"{server.url}/prompt", json={"prompt": GRAPH, "client_id": "b"}
            ) as a:
                prompt_id = (await a.json())["prompt_id"]
            await sock.wait_finished(prompt_id)
            elapsed = time.monotonic() - started
            await sock.close()
    kinds = [s[1] for s in sock.shapes()]
    assert kinds.count("progress") == 2
    assert kinds.count("PREVIEW_IMAGE") == 2
    assert ("binary", "TEXT", "2") in sock.shapes()
    assert 0.05 <= elapsed < 1.0


async def test_sampler_previews_only_when_asked(comfy_server: FakeComfyServer) -> None:
    graph: dict[str, Any] = {
        "2": {"class_type": "ProbeTextOutput", "inputs": {"value": ["3", 0]}},
        "3": {"class_type": "KSampler", "inputs": {"steps": 3, "seed": 1}},
    }
    comfy_server.behaviours.set_duration("KSampler", 0.0)
    comfy_server.validator = TopLevelValidator()  # a bare sampler graph: no input validation
    previews = []
    async with aiohttp.ClientSession() as http:
        for extra in ({}, {"preview_method": "auto"}):
            sock = await Sock.open(http, comfy_server.ws_url("s"))
            graph["3"]["inputs"]["seed"] += 1
            body = {"prompt": graph, "client_id": "s", "extra_data": extra}
            async with http.post(f"{comfy_server.url}/prompt", json=body) as a:
                await sock.wait_finished((await a.json())["prompt_id"])
            await sock.close()
            kinds = [shape[1] for shape in sock.shapes()]
            assert kinds.count("progress") >= 2  # first and last always; others throttled
            previews.append(kinds.count("PREVIEW_IMAGE"))
    assert previews == [0, 3]  # §3.3: sampler previews are off unless the prompt asks


async def test_validator_seam_plugs_in(comfy_server: FakeComfyServer) -> None:
    class RejectAll:
        def validate(self, prompt: Any, object_info: Any, targets: Any) -> ValidationOutcome:
            outcome = TopLevelValidator().validate(prompt, object_info, targets)
            if outcome.error is not None:
                return outcome
            errors = {
                "1": {
                    "errors": [{"type": "required_input_missing"}],
                    "dependent_outputs": ["2"],
                    "class_type": "EmptyImage",
                }
            }
            return ValidationOutcome(
                error={"type": "prompt_outputs_failed_validation", "message": "m", "details": "",
                       "extra_info": {}},
                node_errors=errors,
            )  # fmt: skip

    comfy_server.validator = RejectAll()
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{comfy_server.url}/prompt", json={"prompt": GRAPH}) as answer:
            assert answer.status == 400
            body = await answer.json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert body["node_errors"]["1"]["class_type"] == "EmptyImage"
