"""A pytest plugin with fake-server fixtures, for your own test suite.

Enable it from your own ``conftest.py``, with pytest-asyncio in auto mode (both come with
``pip install "comfy-async[testing]"``)::

    # conftest.py
    pytest_plugins = ["comfy_async.testing.pytest_plugin"]

    # pyproject.toml
    [tool.pytest.ini_options]
    asyncio_mode = "auto"
    asyncio_default_fixture_loop_scope = "function"

(In pytest-asyncio's default strict mode, mark each test ``@pytest.mark.asyncio`` instead.)
It is not registered as an entry point, so it never loads by itself. Fixtures (function-scoped,
fast timings: ``time_scale=0.01`` unless told otherwise):

* ``comfy_server`` — a running local :class:`~comfy_async.testing.FakeComfyServer`;
* ``comfy_cloud_server`` — a running Cloud-flavour one (``server.api_key``, ``server.headers``);
* ``comfy_server_factory`` — ``await comfy_server_factory(**options)`` starts one more server
  with any :class:`~comfy_async.testing.FakeComfyServer` option (flavour, behaviours,
  object_info, node_durations, time_scale, …); every server it started is closed after the test.

The marker ``@pytest.mark.comfy_server(**options)`` configures ``comfy_server`` and
``comfy_cloud_server`` for one test (or a module, with ``pytestmark``), for example
``@pytest.mark.comfy_server(time_scale=0, node_durations={"KSampler": 2.0})``. Fault knobs are
on the running server: ``comfy_server.faults``.

This module only defines fixtures; it starts nothing at import time.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Protocol

import pytest
import pytest_asyncio

from comfy_async.testing.server import FakeComfyServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = [
    "FAST_TIME_SCALE",
    "ServerFactory",
    "comfy_cloud_server",
    "comfy_server",
    "comfy_server_factory",
    "pytest_configure",
]

#: The ``time_scale`` of the fixtures unless a test says otherwise: a one-second node takes 10 ms.
FAST_TIME_SCALE = 0.01

_MARKER = "comfy_server"


class ServerFactory(Protocol):
    """Starts a fake server with the given options (see ``comfy_server_factory``)."""

    async def __call__(self, **options: Any) -> FakeComfyServer:
        """Start a :class:`FakeComfyServer` with ``options``; it is closed after the test."""
        ...


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``comfy_server`` marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**options): options of the comfy_server / comfy_cloud_server fake server",
    )


def _marked_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    options: dict[str, Any] = {"time_scale": FAST_TIME_SCALE}
    for marker in reversed(list(request.node.iter_markers(_MARKER))):
        if marker.args:
            raise pytest.UsageError(
                f"@pytest.mark.{_MARKER} takes keyword options only, got {marker.args!r}"
            )
        options.update(marker.kwargs)
    return options


@pytest_asyncio.fixture
async def comfy_server_factory() -> AsyncIterator[ServerFactory]:
    """Start fake servers with any options; all are closed when the test ends."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**options: Any) -> FakeComfyServer:
            options.setdefault("time_scale", FAST_TIME_SCALE)
            return await stack.enter_async_context(FakeComfyServer(**options))

        yield start


@pytest_asyncio.fixture
async def comfy_server(request: pytest.FixtureRequest) -> AsyncIterator[FakeComfyServer]:
    """A local fake ComfyUI on a free loopback port, closed after the test."""
    async with FakeComfyServer(**_marked_options(request)) as server:
        yield server


@pytest_asyncio.fixture
async def comfy_cloud_server(request: pytest.FixtureRequest) -> AsyncIterator[FakeComfyServer]:
    """A fake Comfy Cloud (API key required; ``/api/view`` redirects to 127.0.0.2)."""
    options = _marked_options(request)
    options["flavour"] = "cloud"
    async with FakeComfyServer(**options) as server:
        yield server
