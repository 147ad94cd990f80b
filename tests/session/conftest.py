"""Fixtures of the session tests: a minimal scriptable WebSocket server on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer


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
