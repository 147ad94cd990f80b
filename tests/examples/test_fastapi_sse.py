"""The FastAPI example under uvicorn on a loopback port, driven by a real HTTP client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from comfy_async import ComfyClient, Workflow
from comfy_async.testing import FakeComfyServer

from .test_examples import EXAMPLES, load

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def slow_workflow(folder: Path, *, steps: int, delay: float) -> Path:
    """The probe workflow with a longer sampler, written to ``folder``."""
    workflow = Workflow.from_file(EXAMPLES / "workflows" / "probe_api.json")
    workflow.set("Sampler", steps=steps, delay=delay)
    path = folder / "workflow_api.json"
    workflow.save(path)
    return path


@contextlib.asynccontextmanager
async def serving(url: str, workflow: Path) -> AsyncIterator[str]:
    """The example app under uvicorn on a free loopback port; yields its base URL."""
    app = load("fastapi_sse").make_app(url, workflow)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        listener.close()


async def read_events(response: httpx.Response) -> AsyncIterator[tuple[str, object]]:
    """Server-Sent Events as (name, data) pairs."""
    name = ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield name, json.loads(line.removeprefix("data: "))


async def test_a_job_streams_progress_and_previews_then_serves_its_image(tmp_path: Path) -> None:
    async with (
        FakeComfyServer() as fake,
        serving(fake.url, slow_workflow(tmp_path, steps=8, delay=0.05)) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as browser,
    ):
        page = await browser.get("/")
        assert page.status_code == 200
        assert "EventSource" in page.text
        job = (await browser.post("/generate")).json()["job"]
        seen: list[tuple[str, object]] = []
        async with browser.stream("GET", f"/jobs/{job}/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            seen = [pair async for pair in read_events(response)]
        names = [name for name, _ in seen]
        assert "progress" in names
        assert "preview" in names
        assert names[-1] == "done"
        fractions = [data["fraction"] for name, data in seen if name == "progress"]  # type: ignore[index]
        assert fractions == sorted(fractions)
        preview = next(data for name, data in seen if name == "preview")
        assert str(preview["url"]).startswith("data:image/jpeg;base64,")  # type: ignore[index]
        image = await browser.get(seen[-1][1]["result"])  # type: ignore[index]
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/png"
        assert image.content.startswith(PNG_SIGNATURE)
        again = await browser.get(f"/jobs/{job}/events")
        assert again.status_code == 409
        assert (await browser.get("/jobs/nope/events")).status_code == 404


async def test_the_job_is_cancelled_on_the_server_when_the_browser_leaves(tmp_path: Path) -> None:
    async with (
        FakeComfyServer() as fake,
        ComfyClient(fake.url) as observer,
        serving(fake.url, slow_workflow(tmp_path, steps=200, delay=0.05)) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as browser,
    ):
        job = (await browser.post("/generate")).json()["job"]
        async with browser.stream("GET", f"/jobs/{job}/events") as response:
            async for name, _ in read_events(response):
                if name == "progress":
                    break  # the browser leaves mid-job: the connection is closed
        async with asyncio.timeout(20):
            while True:
                detail = await observer.jobs.get(job)
                if detail is not None and detail.status in {"cancelled", "failed", "completed"}:
                    break
                await asyncio.sleep(0.05)
        assert detail.status == "cancelled", detail.status
        result = await browser.get(f"/jobs/{job}/result")
        assert result.status_code == 409


pytestmark = pytest.mark.filterwarnings("error")
