"""Where the examples run: a real server given with ``--url``, else the embedded fake one."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from comfy_async.testing import FakeComfyServer

#: A small workflow of the fake server's probe nodes (a real server needs your own export).
PROBE_WORKFLOW = Path(__file__).parent / "workflows" / "probe_api.json"
#: The standard SD 1.5 text-to-image workflow (the fake server holds its checkpoint).
SD15_WORKFLOW = Path(__file__).parent / "workflows" / "sd15_txt2img_api.json"


def arguments(description: str, workflow: Path = PROBE_WORKFLOW) -> argparse.ArgumentParser:
    """The options every example shares (``workflow``: the default of ``--workflow``)."""
    parser = argparse.ArgumentParser(description=description)
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
