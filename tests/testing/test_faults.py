"""Each fault knob of the fake server, and sequential sends (a stalled reader stalls everyone)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from comfy_async.testing import (
    FakeComfyServer,
    malformed_binary_frame,
    malformed_text_frame,
    oversize_frame,
    unknown_binary_frame,
    unknown_text_frame,
)
from tests.testing.replay import Sock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

GRAPH = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 1},
    },
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "fault"}},
}
SLOW = {
    "1": GRAPH["1"],
    "2": {
        "class_type": "ProbeSleepProgress",
        "inputs": {
            "image": ["1", 0],
            "steps": 20,
            "delay": 0.05,
            "preview_format": "none",
            "text": "",
        },
    },
    "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, server: FakeComfyServer, body: Any) -> Any:
    async with http.post(f"{server.url}/api/prompt", json=body) as answer:
        assert answer.status == 200
        return await answer.json()


async def test_fail_route_then_recover(
    comfy_server: FakeComfyServer, http: aiohttp.ClientSession
) -> None:
    comfy_server.faults.fail_route("GET", "/queue", status=503, times=2)
    comfy_server.faults.fail_route("GET", "/history/{prompt_id}", status=429, retry_after=1.5)
    statuses = []
    for _ in range(3):
        async with http.get(f"{comfy_server.url}/api/queue") as answer:
            statuses.append(answer.status)
    assert statuses == [503, 503, 200]
    async with http.get(f"{comfy_server.url}/history/x") as answer:
        assert answer.status == 429
        assert answer.headers["Retry-After"] == "1.5"
    async with http.get(f"{comfy_server.url}/history/x") as answer:
        assert answer.status == 200
    assert comfy_server.request_counts["GET /queue"] == 3


async def test_delay_route(comfy_server: FakeComfyServer, http: aiohttp.ClientSession) -> None:
    comfy_server.faults.delay_route("GET", "/system_stats", 0.2)
    started = time.monotonic()
    async with http.get(f"{comfy_server.url}/api/system_stats") as answer:
        assert answer.status == 200
    assert time.monotonic() - started >= 0.2


async def test_cut_prompt_response_after_queueing(
    comfy_server: FakeComfyServer, http: aiohttp.ClientSession
) -> None:
    comfy_server.faults.cut_prompt_response()
    prompt_id = "0b6d3c1e-7c55-4c39-9a53-4b9a1f9c1d2e"
    with pytest.raises(aiohttp.ClientError):
        await post(http, comfy_server, {"prompt": GRAPH, "prompt_id": prompt_id})
    await comfy_server.wait_idle()
    async with http.get(f"{comfy_server.url}/api/history/{prompt_id}") as answer:
        assert prompt_id in await answer.json()  # it ran although the client saw no answer
    assert comfy_server.posts_for(prompt_id) == 1


async def test_delayed_prompt_response_lets_a_cached_prompt_finish_first(
    comfy_server: FakeComfyServer, http: aiohttp.ClientSession
) -> None:
    sock = await Sock.open(http, comfy_server.ws_url("early"))
    first = await post(http, comfy_server, {"prompt": GRAPH, "client_id": "early"})
    await sock.wait_finished(first["prompt_id"])
    comfy_server.faults.delay_prompt_response(0.3)
    answer = await post(http, comfy_server, {"prompt": GRAPH, "client_id": "early"})
    finished = [e for e in sock.events() if e["type"] == "executing" and e["data"]["node"] is None]
    assert finished[-1]["data"]["prompt_id"] == answer["prompt_id"]  # before the response
    await sock.close()


async def test_drop_websocket_now_and_after_n_frames(
    comfy_server: FakeComfyServer, http: aiohttp.ClientSession
) -> None:
    sock = await Sock.open(http, comfy_server.ws_url("drop-me"))
    await sock.wait_for(lambda e: e["type"] == "status")
    assert comfy_server.faults.drop_websocket("drop-me") == 1
    await asyncio.wait_for(sock.closed.wait(), 2)
    assert sock.ws.close_code != 1000  # no close frame: an abnormal closure

    comfy_server.faults.drop_websocket_after(3, "counted")
    counted = await Sock.open(http, comfy_server.ws_url("counted"))
    await post(http, comfy_server, {"prompt": SLOW, "client_id": "counted"})
    await asyncio.wait_for(counted.closed.wait(), 2)
    assert len(counted.frames) == 3


async def test_close_websocket_cleanly(
    comfy_server: FakeComfyServer, http: aiohttp.ClientSession
) -> None:
    sock = await Sock.open(http, comfy_server.ws_url("bye"))
    await sock.wait_for(lambda e: e["type"] == "status")
    assert await comfy_server.faults.close_websocket("bye", code=4000) == 1
    await asyncio.wait_for(sock.closed.wait(), 2)
    assert sock.ws.close_code == 4000


async def test_stall_holds_frames_and_pings_until_released(
    comfy_server: FakeComfyServer, http: aiohttp.ClientSession
) -> None:
    ws = await http.ws_connect(comfy_server.ws_url("stalled"), autoping=False)
    await ws.receive()  # greeting status
    comfy_server.faults.stall_websocket("stalled")
    await ws.ping(b"are you there")
    await post(http, comfy_server, {"prompt": GRAPH, "client_id": "stalled"})
    await comfy_server.wait_idle()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.receive(), 0.3)  # no event, no pong
    comfy_server.faults.release_websocket("stalled")
    kinds: list[str] = []
    finished = False
    while "pong" not in kinds or not finished:
        message = await asyncio.wait_for(ws.receive(), 2)
        if message.type is aiohttp.WSMsgType.PONG:
            kinds.append("pong")
            continue
        event = json.loads(message.data)
        kinds.append(event["type"])
        finished = finished or (event["type"] == "executing" and event["data"]["node"] is None)
    assert "pong" in kinds
    assert kinds.count("status") == 3  # held frames arrive in order after the release
    await ws.close()


@pytest.mark.parametrize("orphaning", [True, False])
async def test_orphaning_bug_switch(http: aiohttp.ClientSession, orphaning: bool) -> None:
    async with FakeComfyServer(time_scale=0.01, orphaning_bug=orphaning) as server:
        old = await Sock.open(http, server.ws_url("same"))
        new = await Sock.open(http, server.ws_url("same"))
        await new.wait_for(lambda e: e["type"] == "status")
        await old.close()
        await asyncio.sleep(0.05)
        answer = await post(http, server, {"prompt": GRAPH, "client_id": "same"})
        await server.wait_idle()
        await asyncio.sleep(0.05)
        received = [e["type"] for e in new.events()]
        await new.close()
    if orphaning:
        assert received == ["status"]  # orphaned: not even the broadcasts
    else:
        assert "execution_success" in received
        assert answer["prompt_id"] in json.dumps(new.events())


async def test_inject_frames(comfy_server: FakeComfyServer, http: aiohttp.ClientSession) -> None:
    sock = await Sock.open(http, comfy_server.ws_url("victim"))
    frames: list[str | bytes] = [
        oversize_frame(5 * 1024 * 1024),
        malformed_binary_frame(),
        unknown_binary_frame(),
        malformed_text_frame(),
        unknown_text_frame(),
    ]
    for frame in frames:
        comfy_server.faults.inject(frame, "victim")
    await comfy_server.wait_idle()
    async with asyncio.timeout(5):
        while len(sock.frames) < 1 + len(frames):
            await asyncio.sleep(0.01)
    assert sock.frames[1:] == frames
    await sock.close()


async def test_restart_same_port_loses_state(http: aiohttp.ClientSession) -> None:
    async with FakeComfyServer(time_scale=0.01) as server:
        port = server.port
        sock = await Sock.open(http, server.ws_url("r"))
        answer = await post(http, server, {"prompt": GRAPH, "client_id": "r"})
        await sock.wait_finished(answer["prompt_id"])
        server.faults.fail_route("GET", "/queue")  # knobs survive a restart
        await server.restart()
        await asyncio.wait_for(sock.closed.wait(), 2)
        assert server.port == port
        async with http.get(f"{server.url}/history") as history:
            assert await history.json() == {}
        async with http.get(f"{server.url}/queue") as queue:
            assert queue.status == 503
        again = await Sock.open(http, server.ws_url("r"))
        rerun = await post(http, server, {"prompt": GRAPH, "client_id": "r"})
        await again.wait_finished(rerun["prompt_id"])
        cached = next(e for e in again.events() if e["type"] == "execution_cached")
        assert cached["data"]["nodes"] == []  # the cache is gone too
        await again.close()


async def test_request_counters_and_prompt_record(
    comfy_server: FakeComfyServer, http: aiohttp.ClientSession
) -> None:
    await post(http, comfy_server, {"prompt": GRAPH})
    async with http.post(f"{comfy_server.url}/prompt", json={"client_id": "x"}) as answer:
        assert answer.status == 400
    assert comfy_server.request_counts["POST /prompt"] == 2
    assert [r.status for r in comfy_server.prompt_posts] == [200, 400]


# ------------------------------------------------------------------ sequential sends


async def raw_stalled_client(server: FakeComfyServer) -> tuple[asyncio.StreamWriter, socket.socket]:
    """A WebSocket peer that completes the handshake and then never reads."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (server.host, server.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws?clientId=stalled HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    return writer, sock


@pytest.mark.parametrize("sequential", [True, False])
async def test_a_reader_that_stops_stalls_everyone_only_when_sequential(
    http: aiohttp.ClientSession, sequential: bool
) -> None:
    async with FakeComfyServer(sequential_sends=sequential, ws_send_buffer=8192) as server:
        writer, _ = await raw_stalled_client(server)
        fast = await Sock.open(http, server.ws_url("fast"))
        await fast.wait_for(lambda e: e["type"] == "status")
        for _ in range(40):
            server.faults.inject(oversize_frame(64 * 1024))  # to every socket
        server.faults.inject(json.dumps({"type": "marker", "data": {}}))
        try:
            await fast.wait_for(lambda e: e["type"] == "marker", timeout=1.0)
            delivered = True
        except TimeoutError:
            delivered = False
        assert delivered is not sequential
        writer.transport.abort()  # the stalled peer goes away: delivery resumes
        await fast.wait_for(lambda e: e["type"] == "marker", timeout=5.0)
        await fast.close()
