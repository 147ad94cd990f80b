"""The WebSocket connection against a minimal in-test aiohttp server (loopback only)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from comfy_async._live.connection import Connection, ConnectionState, ReconnectInfo
from comfy_async.config import Backoff, ClientOptions, HeartbeatPolicy, ReconnectPolicy, Timeouts
from comfy_async.errors import (
    AuthenticationError,
    ClientClosedError,
    ConnectError,
    ConnectionLostError,
    NotFoundError,
)
from comfy_async.events import Event, FeatureFlags, Status, UnknownEvent
from comfy_async.protocol.messages import encode_message

FAST = ClientOptions(
    timeouts=Timeouts(connect=2.0),
    reconnect=ReconnectPolicy(backoff=Backoff(initial=0.01, maximum=0.05, jitter=0)),
    heartbeat=HeartbeatPolicy(interval=None),
)


def connect(
    http: aiohttp.ClientSession,
    server: TestServer,
    events: list[Event],
    options: ClientOptions = FAST,
    on_reconnect: Callable[[ReconnectInfo], object] | None = None,
) -> Connection:
    url = URL(str(server.make_url("/ws"))).with_query(clientId="c-1")
    return Connection(
        http,
        url,
        options=options,
        dispatch=events.append,
        on_reconnect=on_reconnect,  # type: ignore[arg-type]
    )


async def test_opens_lazily_sends_hello_first_and_dispatches(mini, http) -> None:
    script, server = mini
    script.first_messages = [{"type": "feature_flags", "data": {"supports_preview_metadata": True}}]
    events: list[Event] = []
    connection = connect(http, server, events)
    assert connection.state is ConnectionState.IDLE
    await connection.ensure_open()
    assert connection.state is ConnectionState.OPEN
    await asyncio.sleep(0.05)
    assert json.loads(script.received[0]) == {
        "type": "feature_flags",
        "data": {"supports_preview_metadata": True},
    }
    assert isinstance(events[0], Status)
    assert events[0].sid == "c-1"
    assert isinstance(events[1], FeatureFlags)
    assert connection.protocol.preview_metadata
    await connection.ensure_open()  # already open: no second socket
    assert len(script.sockets) == 1
    await connection.aclose()
    assert connection.state is ConnectionState.CLOSED
    with pytest.raises(ClientClosedError):
        await connection.ensure_open()


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationError), (403, AuthenticationError), (404, NotFoundError)],
)
async def test_fatal_handshake_errors_are_not_retried(mini, http, status, error) -> None:
    script, server = mini
    script.status = status
    connection = connect(http, server, [])
    with pytest.raises(error):
        await connection.ensure_open()
    assert connection.state is ConnectionState.FAILED
    with pytest.raises(error):  # the stored error again, no new attempt
        await connection.ensure_open()
    await connection.aclose()


async def test_first_connect_failure_raises_and_a_later_call_retries(http) -> None:
    app = web.Application()
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    url = URL(str(server.make_url("/ws")))
    await server.close()  # nothing listens there any more
    connection = Connection(http, url, options=FAST, dispatch=lambda e: None)
    with pytest.raises(ConnectError):
        await connection.ensure_open()
    assert connection.state is ConnectionState.IDLE
    with pytest.raises(ConnectError):
        await connection.ensure_open()
    await connection.aclose()


async def test_reconnects_after_a_drop_closing_the_old_socket_first(mini, http) -> None:
    script, server = mini
    infos: list[ReconnectInfo] = []

    async def on_reconnect(info: ReconnectInfo) -> None:
        infos.append(info)

    events: list[Event] = []
    connection = connect(http, server, events, on_reconnect=on_reconnect)
    await connection.ensure_open()
    await script.sockets[0].close()
    await connection.wait_for_state(ConnectionState.RECONNECTING)
    await connection.wait_for_state(ConnectionState.OPEN)
    await asyncio.sleep(0.05)
    assert len(script.sockets) == 2
    assert script.closed[0] <= script.opened[1]  # old socket gone before the new one opened
    assert len(infos) == 1
    assert infos[0].attempt == 1
    assert "closed by the server" in infos[0].reason
    assert connection.connects == 2
    # the new socket got the hello first too
    assert [json.loads(m)["type"] for m in script.received] == ["feature_flags", "feature_flags"]
    await connection.aclose()


async def test_on_reconnect_raising_stops_reconnecting(mini, http) -> None:
    script, server = mini

    async def refuse(info: ReconnectInfo) -> None:
        raise ConnectionLostError("the application gives up")

    connection = connect(http, server, [], on_reconnect=refuse)
    await connection.ensure_open()
    await script.sockets[0].close()
    await connection.wait_for_state(ConnectionState.FAILED)
    assert isinstance(connection.error, ConnectionLostError)
    await connection.aclose()


async def test_reopen_replaces_the_socket_without_delay(mini, http) -> None:
    script, server = mini
    slow = FAST.replace(reconnect=ReconnectPolicy(backoff=Backoff(initial=30, jitter=0)))
    connection = connect(http, server, [], options=slow)
    await connection.ensure_open()
    connection.reopen()
    await connection.wait_for_state(ConnectionState.RECONNECTING)
    await asyncio.wait_for(connection.wait_for_state(ConnectionState.OPEN), 2)
    assert len(script.sockets) == 2
    await connection.aclose()


async def test_heartbeat_detects_a_silent_peer(mini, http) -> None:
    script, server = mini
    script.autoping = False  # a zombie: open, but never answers pings
    options = FAST.replace(heartbeat=HeartbeatPolicy(interval=0.2))
    connection = connect(http, server, [], options=options)
    await connection.ensure_open()
    started = asyncio.get_running_loop().time()
    await asyncio.wait_for(connection.wait_for_state(ConnectionState.RECONNECTING), 2)
    detected = asyncio.get_running_loop().time() - started
    assert detected <= 1.5 * 0.2 + 0.5
    await connection.aclose()


async def test_malformed_frames_become_events_and_the_socket_survives(mini, http) -> None:
    script, server = mini
    events: list[Event] = []
    connection = connect(http, server, events)
    await connection.ensure_open()
    ws = script.sockets[0]
    await ws.send_str("{not json")
    await ws.send_bytes(b"\x00")
    await ws.send_str(encode_message("custom.event", {"x": 1}).decode())
    await asyncio.sleep(0.05)
    kinds = [type(e).__name__ for e in events]
    assert kinds[-3:] == ["MalformedFrame", "MalformedFrame", "UnknownEvent"]
    assert isinstance(events[-1], UnknownEvent)
    assert connection.state is ConnectionState.OPEN
    await connection.aclose()


async def test_oversized_frame_drops_the_socket_and_it_reconnects(mini, http) -> None:
    script, server = mini
    connection = connect(http, server, [], options=FAST.replace(max_message_size=1024))
    await connection.ensure_open()
    await script.sockets[0].send_bytes(b"\x00\x00\x00\x01" + b"x" * 4096)
    await asyncio.wait_for(connection.wait_for_state(ConnectionState.RECONNECTING), 2)
    await asyncio.wait_for(connection.wait_for_state(ConnectionState.OPEN), 2)
    await connection.aclose()


async def test_too_many_failed_reconnects_give_up(mini, http) -> None:
    script, server = mini
    options = FAST.replace(
        reconnect=ReconnectPolicy(backoff=Backoff(initial=0.01, jitter=0), max_attempts=2)
    )
    connection = connect(http, server, [], options=options)
    await connection.ensure_open()
    script.status = 503  # every reconnect is refused with a retryable status
    await script.sockets[0].close()
    await asyncio.wait_for(connection.wait_for_state(ConnectionState.FAILED), 2)
    assert connection.error is not None
    assert getattr(connection.error, "status", None) == 503
    await connection.aclose()
