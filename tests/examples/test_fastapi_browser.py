"""The FastAPI example's page in a real headless Chromium: generate, watch, get the image."""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from comfy_async.testing import FakeComfyServer

from .test_fastapi_sse import serving, slow_workflow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Chromium is not installed (apt-get install chromium; .ci/run installs it)",
    ),
]


def not_blank(png: bytes) -> bool:
    """Whether a screenshot shows more than one flat colour."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return any(spread > 1.0 for spread in ImageStat.Stat(image).stddev)


async def test_the_page_shows_progress_previews_and_the_final_image(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    async with (
        FakeComfyServer() as fake,
        serving(fake.url, slow_workflow(tmp_path, steps=30, delay=0.1)) as base,
        async_playwright() as playwright,
    ):
        with tempfile.TemporaryDirectory() as profile:
            browser = await playwright.chromium.launch_persistent_context(
                profile,  # a fresh --user-data-dir
                executable_path=CHROMIUM,
                headless=True,
                args=FLAGS,
            )
            try:
                page = await browser.new_page()
                await page.goto(base)
                await page.click("#generate")
                await page.wait_for_function(
                    "Number(document.getElementById('preview').dataset.previews || 0) >= 2",
                    timeout=60_000,
                )
                running = await page.screenshot()
                assert await page.text_content("#status") == "running"
                await page.wait_for_function(
                    "document.getElementById('status').textContent === 'done'", timeout=60_000
                )
                src = await page.get_attribute("#preview", "src")
                assert src is not None
                assert src.endswith("/result")
                loaded = await page.evaluate(
                    "(() => { const i = document.getElementById('preview');"
                    " return [i.complete, i.naturalWidth, i.naturalHeight]; })()"
                )
                assert loaded == [True, 64, 48]
                assert await page.get_attribute("#bar", "value") == "1"
            finally:
                await browser.close()
    assert not_blank(running)
