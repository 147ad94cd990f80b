"""The examples run against the embedded fake server and do what they say (no rot)."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str) -> ModuleType:
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while building
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(EXAMPLES))


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


async def test_quickstart(capsys: pytest.CaptureFixture[str], in_tmp: Path) -> None:
    assert await load("quickstart").main([]) == 0
    out = capsys.readouterr().out
    assert "step 8/8" in out
    assert "preview image/jpeg" in out
    assert "text: done" in out
    saved = list((in_tmp / "example-output").glob("example_*.png"))
    assert len(saved) == 1


async def test_batch(capsys: pytest.CaptureFixture[str], in_tmp: Path) -> None:
    assert await load("batch").main(["--count", "8"]) == 0
    out = capsys.readouterr().out
    assert "8/8 done" in out
    saved = list((in_tmp / "batch-output").glob("*/ComfyUI_*.png"))
    assert len(saved) == 8
    assert len({path.read_bytes() for path in saved}) == 8  # many seeds, many images
    per_server = [
        int(line.split(": ")[1].split()[0]) for line in out.splitlines() if " done, " in line
    ]
    assert len(per_server) == 2  # two servers …
    assert sum(per_server) == 8  # … shared the batch


async def test_chat_bot(capsys: pytest.CaptureFixture[str]) -> None:
    assert await load("chat_bot").main(["--users", "3", "--edits-per-second", "50"]) == 0
    out = capsys.readouterr().out
    assert "3/3 users served" in out
    assert out.count("done: example_") == 3
    assert out.count("one picture at a time, please") == 3  # a second ask is refused at once
    assert "you are 2nd in line" in out  # users take turns, and know where they stand


async def test_web_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert await load("web_backend").main(["--selftest"]) == 0
    out = capsys.readouterr().out
    assert "event: progress" in out
    assert "event: done" in out


async def test_web_backend_cancels_the_job_when_the_browser_leaves() -> None:
    """A real HTTP client opens the stream, reads the first progress, and hangs up mid-job."""
    import aiohttp
    from aiohttp import web

    from comfy_async import ComfyClient, Workflow
    from comfy_async.testing import FakeComfyServer

    example = load("web_backend")
    async with FakeComfyServer() as fake, ComfyClient(fake.url) as comfy:
        workflow = Workflow.from_file(EXAMPLES / "workflows" / "probe_api.json")
        workflow.set("2", steps=40, delay=0.25)  # a 10 s job
        runner = web.AppRunner(example.make_app(comfy, workflow))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            job_id = None
            async with aiohttp.ClientSession() as browser:
                response = await browser.post(f"http://127.0.0.1:{port}/generate")
                async for line in response.content:
                    text = line.decode()
                    if text.startswith('data: {"job"'):
                        job_id = text.split('"')[3]
                    if text.startswith("event: progress"):
                        break
                response.close()  # the browser leaves mid-job
            assert job_id is not None
            async with asyncio.timeout(10):
                while True:
                    detail = await comfy.jobs.get(job_id)
                    if detail is not None and detail.status in {"cancelled", "failed"}:
                        break
                    await asyncio.sleep(0.05)
            assert detail.status == "cancelled", detail.status
        finally:
            await runner.cleanup()
