"""Shared test tools for the request path: fast options, recorded sleeps, mocked-call readers,
and a tiny scripted aiohttp server on loopback (127.0.0.1 / 127.0.0.2 only)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from aioresponses import aioresponses
from aioresponses.core import normalize_url
from yarl import URL

from comfy_async.config import Backoff, ClientOptions, RetryPolicy, Timeouts

KEY = "sk-test-0123456789abcdefSECRET"
TOKEN = "bearer-token-fedcba9876543210"
PASSWORD = "hunter2-proxy-password"
LOCAL = "http://127.0.0.1:8188"
CLOUD = "https://cloud.comfy.org"

FAST = ClientOptions(
    timeouts=Timeouts(connect=2.0, read=5.0, total=10.0),
    retry=RetryPolicy(max_retries=3, backoff=Backoff(initial=0.001, maximum=0.002, jitter=0)),
)


class _CompatResponse(aiohttp.ClientResponse):
    """aiohttp 3.14 added a required ``stream_writer`` argument that aioresponses 0.7.9 does not
    pass (aioresponses issue #289); a sent request only reads its ``output_size``."""

    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


class mocked_http(aioresponses):  # noqa: N801 - used like aioresponses itself
    """``aioresponses`` whose responses build on aiohttp 3.14."""

    def add(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("response_class") is None:
            kwargs["response_class"] = _CompatResponse
        super().add(*args, **kwargs)


@dataclass
class Sleeps:
    """An injected ``sleep`` that records the pauses and does not wait."""

    pauses: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)


def calls(mocked: aioresponses, method: str, url: str) -> list[dict[str, Any]]:
    """The kwargs of every mocked request of ``method`` to ``url`` (query included)."""
    wanted = normalize_url(URL(url))
    for (sent_method, sent_url), items in mocked.requests.items():
        if sent_method == method and sent_url == wanted:
            return [item.kwargs for item in items]
    return []


def sent(mocked: aioresponses) -> list[tuple[str, str]]:
    """Every ``(method, path?query)`` the mock saw (one per distinct request, not per call)."""
    return [(method, str(url.relative())) for method, url in mocked.requests]


def count(mocked: aioresponses, method: str, url: str) -> int:
    return len(calls(mocked, method, url))


def exception_chain(error: BaseException) -> Iterator[BaseException]:
    """The error and everything on its ``__cause__``/``__context__`` chain."""
    seen: set[int] = set()
    stack = [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack.extend(link for link in (current.__cause__, current.__context__) if link)


def assert_no_secret(error: BaseException, *secrets: str) -> None:
    for item in exception_chain(error):
        for text in (str(item), repr(item), *(repr(arg) for arg in item.args)):
            for secret in secrets:
                assert secret not in text, (type(item).__name__, text)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Recorder:
    """What a loopback server received."""

    requests: list[web.Request] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


@asynccontextmanager
async def serve(
    routes: dict[tuple[str, str], Handler], host: str = "127.0.0.1"
) -> AsyncIterator[tuple[TestServer, Recorder]]:
    """A scripted aiohttp server on ``host`` (loopback) recording every request's headers."""
    recorder = Recorder()

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        recorder.requests.append(request)
        recorder.headers.append(dict(request.headers))
        return await handler(request)

    app = web.Application(middlewares=[record])
    for (method, path), handler in routes.items():
        app.router.add_route(method, path, handler)
    server = TestServer(app, host=host)
    await server.start_server()
    try:
        yield server, recorder
    finally:
        await server.close()


def base(server: TestServer) -> str:
    return str(server.make_url("/")).rstrip("/")
