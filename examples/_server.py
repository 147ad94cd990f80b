"""Where the examples run: a real server given with ``--url``, else the embedded fake one."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from comfy_async.testing import FakeComfyServer
from comfy_async.testing.fleet import fake_fleet

#: A small workflow of the fake server's probe nodes (a real server needs your own export).
PROBE_WORKFLOW = Path(__file__).parent / "workflows" / "probe_api.json"
#: The standard SD 1.5 text-to-image workflow (the fake server holds its checkpoint).
SD15_WORKFLOW = Path(__file__).parent / "workflows" / "sd15_txt2img_api.json"


def arguments(
    description: str, workflow: Path = PROBE_WORKFLOW, *, fleet: bool = False
) -> argparse.ArgumentParser:
    """The options every example shares (``workflow``: the default of ``--workflow``).

    With ``fleet``, ``--url`` may be given several times (default: two embedded fake servers).
    """
    parser = argparse.ArgumentParser(description=description)
    if fleet:
        parser.add_argument(
            "--url",
            action="append",
            help="a ComfyUI server, repeatable (default: start two embedded fake ones)",
        )
    else:
        parser.add_argument("--url", help="a ComfyUI server (default: start the embedded fake one)")
    parser.add_argument(
        "--workflow",
        type=Path,
        default=workflow,
        help=f"an API-format workflow (default: {workflow.name})",
    )
    return parser


@contextlib.asynccontextmanager
async def server_url(url: str | None) -> AsyncIterator[str]:
    """Yield ``url``, or the URL of an embedded fake server started for the example."""
    if url is not None:
        yield url
        return
    async with FakeComfyServer() as fake:
        yield fake.url


@contextlib.asynccontextmanager
async def server_urls(urls: list[str] | None, *, count: int = 2) -> AsyncIterator[list[str]]:
    """Yield ``urls``, or the URLs of ``count`` embedded fake servers (one twice as fast)."""
    if urls:
        yield urls
        return
    speeds = [{"speed": 2.0 if index == 0 else 1.0} for index in range(count)]
    async with fake_fleet(*speeds) as servers:
        yield [server.url for server in servers]
