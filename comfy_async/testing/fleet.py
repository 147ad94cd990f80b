"""Several fake servers at once: a fleet that differs the way real GPU boxes do.

For tests of code that spreads jobs over servers (a pool, a scheduler of your own): each server
gets its own options — models, custom nodes (``object_info``), ``speed``, ``load_time``,
``vram_budget``, faults — and a free loopback port::

    async with fake_fleet(
        {"speed": 2.0, "models": {"checkpoints": ["sdxl.safetensors"]}},
        {"speed": 1.0, "load_time": 5.0},
        time_scale=0.01,
    ) as servers:
        urls = [server.url for server in servers]
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from comfy_async.testing.server import FakeComfyServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

__all__ = ["fake_fleet"]


@contextlib.asynccontextmanager
async def fake_fleet(
    *servers: Mapping[str, Any], **shared: Any
) -> AsyncIterator[list[FakeComfyServer]]:
    """Start one fake server per options mapping (``shared`` options apply to all).

    Every server is started before the block runs and closed after it, whatever happens.
    """
    async with contextlib.AsyncExitStack() as stack:
        started = [
            await stack.enter_async_context(FakeComfyServer(**{**shared, **options}))
            for options in servers
        ]
        yield started
