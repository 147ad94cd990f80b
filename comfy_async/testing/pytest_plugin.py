"""A pytest plugin with fake-server fixtures.

Enable it from your own ``conftest.py``::

    pytest_plugins = ["comfy_async.testing.pytest_plugin"]

It is not registered as an entry point, so it never loads by itself. It needs ``pytest`` and
``pytest-asyncio``. Fixtures (function-scoped, fast timings: ``time_scale=0.01``):

* ``comfy_server`` — a running local :class:`~comfy_async.testing.FakeComfyServer`;
* ``comfy_cloud_server`` — a running Cloud-flavour one (``server.api_key``, ``server.headers``).

This module only defines fixtures; it starts nothing at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest_asyncio

from comfy_async.testing.server import FakeComfyServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["FAST_TIME_SCALE", "comfy_cloud_server", "comfy_server"]

#: The ``time_scale`` of the fixtures: a one-second node takes 10 ms.
FAST_TIME_SCALE = 0.01


@pytest_asyncio.fixture
async def comfy_server() -> AsyncIterator[FakeComfyServer]:
    """A local fake ComfyUI on a free loopback port, closed after the test."""
    async with FakeComfyServer(time_scale=FAST_TIME_SCALE) as server:
        yield server


@pytest_asyncio.fixture
async def comfy_cloud_server() -> AsyncIterator[FakeComfyServer]:
    """A fake Comfy Cloud (API key required; ``/api/view`` redirects to 127.0.0.2)."""
    async with FakeComfyServer(flavour="cloud", time_scale=FAST_TIME_SCALE) as server:
        yield server
