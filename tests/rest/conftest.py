"""Fixtures of the REST namespace tests: a local and a Cloud client over mocked HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from comfy_async import ComfyClient
from tests.http_mocks import CLOUD, FAST, KEY, LOCAL, mocked_http


@pytest.fixture
def mocked() -> Iterator[mocked_http]:
    with mocked_http() as mock:
        yield mock


@pytest.fixture
async def local() -> AsyncIterator[ComfyClient]:
    async with ComfyClient(LOCAL, options=FAST, jobs_api=True) as comfy:
        yield comfy


@pytest.fixture
async def cloud() -> AsyncIterator[ComfyClient]:
    async with ComfyClient.cloud(api_key=KEY, base_url=CLOUD, options=FAST) as comfy:
        yield comfy
