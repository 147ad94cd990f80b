"""Fixtures and helpers of the session tests.

* a minimal scriptable WebSocket server on loopback (:class:`MiniServer`);
* the scenario kit shared by the fault scenarios: the time unit ``UNIT`` (env
  ``COMFY_ASYNC_TEST_UNIT``, seconds) every duration is a multiple of, client :func:`options`
  scaled to it, the fake ``server`` fixture, :func:`outcome` and :func:`assert_clean`;
* :class:`ChaosProxy`, a loopback TCP proxy in front of a server that cuts connections silent
  for longer than an idle timeout (as load balancers and reverse proxies do) and can black-hole
  WebSocket traffic while HTTP still flows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from comfy_async import ComfyClient
from comfy_async._live.connection import ConnectionState
from comfy_async.config import (
    Backoff,
    ClientOptions,
    HeartbeatPolicy,
    ReconcilePolicy,
    ReconnectPolicy,
    Timeouts,
)
from comfy_async.errors import JobError
from comfy_async.job import Job, JobResult
from comfy_async.testing import FakeComfyServer

UNIT = float(os.environ.get("COMFY_ASYNC_TEST_UNIT", "0.1"))


@dataclass
class MiniServer:
    """A WebSocket endpoint whose behaviour each test scripts."""

    status: int | None = None  # refuse the upgrade with this status
    first_messages: list[dict[str, object]] = field(default_factory=list)
    received: list[str] = field(default_factory=list)
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    closed: list[float] = field(default_factory=list)
    opened: list[float] = field(default_factory=list)
    autoping: bool = True

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.status is not None:
            return web.Response(status=self.status, text="no")
        ws = web.WebSocketResponse(autoping=self.autoping)
        await ws.prepare(request)
        self.opened.append(asyncio.get_running_loop().time())
        self.sockets.append(ws)
        sid = request.query.get("clientId", "minted")
        await ws.send_str(json.dumps({"type": "status", "data": {"status": {}, "sid": sid}}))
        for message in self.first_messages:
            await ws.send_str(json.dumps(message))
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                self.received.append(message.data)
        self.closed.append(asyncio.get_running_loop().time())
        return ws


@pytest.fixture
async def mini() -> AsyncIterator[tuple[MiniServer, TestServer]]:
    script = MiniServer()
    app = web.Application()
    app.router.add_get("/ws", script.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield script, server
    await server.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def send_event(script: MiniServer, type_: str, data: dict[str, object]) -> None:
    """Send one JSON event on the newest socket of the mini server."""
    await script.sockets[-1].send_str(json.dumps({"type": type_, "data": data}))


# --------------------------------------------------------------------------- scenario kit


def options(**changes: object) -> ClientOptions:
    """Client options scaled to UNIT: quick heartbeats, reconnects and silent-job checks."""
    base = ClientOptions(
        timeouts=Timeouts(connect=20 * UNIT, read=100 * UNIT),
        reconnect=ReconnectPolicy(backoff=Backoff(initial=UNIT / 10, maximum=UNIT, jitter=0.5)),
        heartbeat=HeartbeatPolicy(interval=5 * UNIT),
        reconcile=ReconcilePolicy(silent_after=5 * UNIT, max_silent_after=20 * UNIT),
    )
    return base.replace(**changes)


@pytest.fixture
async def server() -> AsyncIterator[FakeComfyServer]:
    async with FakeComfyServer(time_scale=1.0) as fake:
        yield fake


async def outcome(job: Job, limit: float) -> JobResult | JobError:
    """The job's result, or the job error it raised, within ``limit`` seconds."""
    try:
        return await asyncio.wait_for(job.result(), limit)
    except JobError as error:
        return error


def assert_clean(comfy: ComfyClient) -> None:
    """Nothing of the session is left: no task, no registration, no socket."""
    live = comfy._live
    assert len(live.tasks) == 0
    assert live.dispatcher.registered == 0
    assert live.connection.state is ConnectionState.CLOSED
    leftover = [t for t in asyncio.all_tasks() if t.get_name().startswith("comfy_async")]
    assert leftover == []


# --------------------------------------------------------------------------- idle proxy


@dataclass(eq=False)
class _Link:
    """One proxied connection: both sockets, when bytes last crossed, what it carries."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    last_traffic: float
    websocket: bool = False
    swallowed: bool = False


class ChaosProxy:
    """A loopback TCP proxy in front of a server, with faults a network path has.

    ``idle``: connections silent (both ways) for that many seconds are closed. It counts what it
    cut: :attr:`websocket_closes` (connections that upgraded to a WebSocket) and
    :attr:`http_closes` (idle keep-alive HTTP connections), and the WebSocket connections that
    went through it (:attr:`websockets`).

    :meth:`blackhole_websockets` silently discards every byte of WebSocket connections, old and
    new (a new one's handshake goes unanswered), while HTTP still flows; :meth:`restore` ends it
    and resets the black-holed connections, as a rebooted middlebox would.
    """

    def __init__(self, target_port: int, idle: float | None = None) -> None:
        self._target_port = target_port
        self.idle = idle
        self.websocket_closes = 0
        self.http_closes = 0
        self.websockets = 0
        self.blackholed = False
        self.swallowed_bytes = 0
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._watchdog: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """The base URL to give a client instead of the server's."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> ChaosProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self._watchdog = asyncio.create_task(self._cut_idle())
        return self

    def blackhole_websockets(self) -> None:
        """From now on, WebSocket bytes in both directions vanish (see the class docstring)."""
        self.blackholed = True

    def restore(self) -> None:
        """End the black hole: the connections it swallowed are reset."""
        self.blackholed = False
        for link in list(self._links):
            if link.swallowed:
                self._close(link)

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        assert self._watchdog is not None
        self._server.close()
        self._watchdog.cancel()
        for link in list(self._links):
            self._close(link)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(self._watchdog, *self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        except OSError:
            writer.close()
            return
        link = _Link(writer, up_writer, loop.time())
        self._links.add(link)
        pumps = [
            asyncio.create_task(self._pump(link, reader, up_writer, upstream=True)),
            asyncio.create_task(self._pump(link, up_reader, writer, upstream=False)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            self._tasks.difference_update(pumps)
            self._close(link)

    async def _pump(
        self,
        link: _Link,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        *,
        upstream: bool,
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            while data := await source.read(65536):
                if upstream and not link.websocket and b"upgrade: websocket" in data.lower():
                    link.websocket = True
                    self.websockets += 1
                if link.websocket and self.blackholed:
                    link.swallowed = True
                    self.swallowed_bytes += len(data)
                    continue
                link.last_traffic = loop.time()
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._close(link)

    async def _cut_idle(self) -> None:
        loop = asyncio.get_running_loop()
        idle = self.idle
        if idle is None:
            return
        while True:
            await asyncio.sleep(idle / 10)
            for link in list(self._links):
                if loop.time() - link.last_traffic > idle:
                    if link.websocket:
                        self.websocket_closes += 1
                    else:
                        self.http_closes += 1
                    self._close(link)

    def _close(self, link: _Link) -> None:
        if link in self._links:
            self._links.discard(link)
            for writer in (link.client, link.upstream):
                with contextlib.suppress(Exception):
                    writer.transport.abort()
