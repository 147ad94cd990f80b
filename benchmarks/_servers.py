"""The servers the benchmarks talk to, each run in its own process on a loopback address.

``python -m benchmarks._servers KIND [options]`` prints ``listening on URL`` once it serves, then
answers commands on its standard input, one JSON line each (``stats``, ``reset``, and per kind
``hold``/``release``). It stops when its standard input closes or on SIGTERM.

* ``push``: a bare WebSocket server that streams pre-built frames as fast as the socket takes
  them, so that the client is the bottleneck (P1, P2). The WebSocket frames are encoded once,
  before the clock starts, and written in large chunks; ``POST /prepare`` builds a scenario
  (``events``: the exact ComfyUI event sequence of N concurrent jobs, interleaved; ``previews``:
  50 KB type-4 preview frames), ``POST /go`` streams it to the socket of a ``clientId``.
* ``prompt``: a minimal ``POST /prompt`` that answers like ComfyUI (P4).
* ``fake``: :class:`~comfy_async.testing.FakeComfyServer` (ComfyUI-faithful), with counters of
  TCP connections and WebSockets, of prompts POSTed and run (and of those POSTed or run more than
  once), and a ``hold``/``release`` gate on its queue (P6, P7, P9).
* ``fleet``: one box of a fleet (P8): a :class:`~comfy_async.testing.FakeComfyServer` with its
  ``speed``, ``load_time``, VRAM budget and checkpoints, that appends every prompt it ran
  (``run PROMPT_ID SEED OUTCOME``) and every cold model load (``load NAME``) to a log file, one
  flushed line each, so that the log survives the process being killed (a later process on the
  same port appends to the same file).
* ``v2``: :class:`~comfy_async.testing.FakeComfyApiV2` (the Comfy API v2 in front of that fake,
  bearer token :data:`V2_KEY`), with its request and TCP connection counts (P11).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import signal
import struct
import sys
import uuid
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

# --------------------------------------------------------------------------- scenarios

PREVIEW_SIZE = 50 * 1024


def prompt_id_of(round_: int, index: int) -> str:
    """The prompt id of job ``index`` in round ``round_`` (client and server agree on it)."""
    return str(uuid.UUID(int=(0xBE7C << 112) | (round_ << 32) | index))


def _text(type_: str, data: object) -> bytes:
    return orjson.dumps({"type": type_, "data": data})


def job_frames(prompt_id: str, steps: int) -> list[list[bytes]]:
    """The frames of one job as ComfyUI sends them, grouped in phases (one frame each, or two).

    execution_start, execution_cached, executing, (progress_state + progress) × steps, executed,
    execution_success, executing{node: null}.
    """
    stamp = 1_760_000_000_000

    def node(node_id: str, value: float, max_: float, state: str) -> dict[str, object]:
        return {
            "value": value,
            "max": max_,
            "state": state,
            "node_id": node_id,
            "prompt_id": prompt_id,
            "display_node_id": node_id,
            "parent_node_id": None,
            "real_node_id": node_id,
        }

    done = {"4": node("4", 1, 1, "finished"), "5": node("5", 1, 1, "finished")}
    phases: list[list[bytes]] = [
        [_text("execution_start", {"prompt_id": prompt_id, "timestamp": stamp})],
        [_text("execution_cached", {"nodes": ["4"], "prompt_id": prompt_id, "timestamp": stamp})],
        [_text("executing", {"node": "3", "display_node": "3", "prompt_id": prompt_id})],
    ]
    for step in range(1, steps + 1):
        nodes = {**done, "3": node("3", step, steps, "running")}
        phases.append(
            [
                _text("progress_state", {"prompt_id": prompt_id, "nodes": nodes}),
                _text(
                    "progress", {"value": step, "max": steps, "prompt_id": prompt_id, "node": "3"}
                ),
            ]
        )
    image = {"filename": "ComfyUI_00001_.png", "subfolder": "", "type": "output"}
    phases += [
        [
            _text(
                "executed",
                {
                    "node": "9",
                    "display_node": "9",
                    "output": {"images": [image]},
                    "prompt_id": prompt_id,
                },
            )
        ],
        [_text("execution_success", {"prompt_id": prompt_id, "timestamp": stamp})],
        [_text("executing", {"node": None, "prompt_id": prompt_id})],
    ]
    return phases


def events_scenario(round_: int, jobs: int, steps: int) -> list[tuple[bool, bytes]]:
    """Every frame of ``jobs`` concurrent jobs, interleaved phase by phase (all in flight)."""
    per_job = [job_frames(prompt_id_of(round_, i), steps) for i in range(jobs)]
    frames: list[tuple[bool, bytes]] = []
    for phase in range(len(per_job[0])):
        for job in per_job:
            frames.extend((True, frame) for frame in job[phase])
    return frames


def preview_frame(prompt_id: str, index: int, size: int = PREVIEW_SIZE) -> bytes:
    """A type-4 preview (metadata naming the prompt) with a ``size``-byte JPEG-looking payload."""
    meta = orjson.dumps(
        {
            "node_id": "3",
            "prompt_id": prompt_id,
            "display_node_id": "3",
            "parent_node_id": None,
            "real_node_id": "3",
            "image_type": "image/jpeg",
        }
    )
    body = b"\xff\xd8\xff\xe0" + bytes([index % 251]) * (size - 4)
    return struct.pack(">II", 4, len(meta)) + meta + body


def previews_scenario(round_: int, jobs: int, previews: int) -> list[tuple[bool, bytes]]:
    """``previews`` type-4 preview frames per job, interleaved across ``jobs`` jobs."""
    ids = [prompt_id_of(round_, i) for i in range(jobs)]
    return [(False, preview_frame(pid, step)) for step in range(previews) for pid in ids]


def ws_frame(payload: bytes, *, text: bool) -> bytes:
    """One unmasked, final server-to-client WebSocket frame."""
    head = 0x81 if text else 0x82
    size = len(payload)
    if size < 126:
        return struct.pack(">BB", head, size) + payload
    if size < 1 << 16:
        return struct.pack(">BBH", head, 126, size) + payload
    return struct.pack(">BBQ", head, 127, size) + payload


def encode_blob(frames: list[tuple[bool, bytes]], chunk: int = 1 << 20) -> list[bytes]:
    """The frames as WebSocket wire bytes, cut into ``chunk``-sized writes (whole frames)."""
    chunks: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for text, payload in frames:
        frame = ws_frame(payload, text=text)
        current.append(frame)
        size += len(frame)
        if size >= chunk:
            chunks.append(b"".join(current))
            current, size = [], 0
    if current:
        chunks.append(b"".join(current))
    return chunks


# --------------------------------------------------------------------------- push server

_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class PushServer:
    """A minimal HTTP/1.1 + WebSocket server: ``/ws?clientId=``, ``POST /prepare``, ``POST /go``."""

    def __init__(self) -> None:
        self.sockets: dict[str, asyncio.StreamWriter] = {}
        self.prepared: dict[str, list[bytes]] = {}
        self.counts: Counter[str] = Counter()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counts["tcp"] += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {
                    key.strip().lower(): value.strip()
                    for key, _, value in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                url = urlsplit(target)
                query = {key: values[0] for key, values in parse_qs(url.query).items()}
                if headers.get("upgrade", "").lower() == "websocket":
                    await self._websocket(reader, writer, headers, query)
                    return
                self.counts[f"{method} {url.path}"] += 1
                answer = await self._http(method, url.path, query, body)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(answer)}\r\n\r\n".encode()
                    + answer
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _http(self, method: str, path: str, query: dict[str, str], body: bytes) -> bytes:
        params: dict[str, Any] = {**query, **(orjson.loads(body) if body else {})}
        if method == "POST" and path == "/prepare":
            round_ = int(params.get("round", 0))
            if params["scenario"] == "events":
                frames = events_scenario(round_, int(params["jobs"]), int(params["steps"]))
            else:
                frames = previews_scenario(round_, int(params["jobs"]), int(params["previews"]))
            self.prepared[params["client_id"]] = encode_blob(frames)
            return orjson.dumps(
                {"frames": len(frames), "bytes": sum(map(len, self.prepared[params["client_id"]]))}
            )
        if method == "POST" and path == "/go":
            writer = self.sockets[params["client_id"]]
            chunks = self.prepared.pop(params["client_id"])
            asyncio.get_running_loop().create_task(self._stream(writer, chunks))
            return b"{}"
        return b'{"error": "unknown route"}'

    @staticmethod
    async def _stream(writer: asyncio.StreamWriter, chunks: list[bytes]) -> None:
        with contextlib.suppress(ConnectionError):
            for chunk in chunks:
                writer.write(chunk)
                await writer.drain()

    async def _websocket(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        headers: dict[str, str],
        query: dict[str, str],
    ) -> None:
        key = headers["sec-websocket-key"]
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        )
        client_id = query.get("clientId") or uuid.uuid4().hex
        self.counts["ws"] += 1
        self.sockets[client_id] = writer
        status = {"status": {"exec_info": {"queue_remaining": 0}}, "sid": client_id}
        writer.write(ws_frame(_text("status", status), text=True))
        try:
            while True:  # read (and mostly ignore) client frames; answer pings and closes
                first, second = await reader.readexactly(2)
                size = second & 0x7F
                if size == 126:
                    (size,) = struct.unpack(">H", await reader.readexactly(2))
                elif size == 127:
                    (size,) = struct.unpack(">Q", await reader.readexactly(8))
                mask = await reader.readexactly(4) if second & 0x80 else b"\0\0\0\0"
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(await reader.readexactly(size)))
                opcode = first & 0x0F
                if opcode == 0x9:
                    writer.write(struct.pack(">BB", 0x8A, len(data)) + data)  # pong
                elif opcode == 0x8:
                    writer.write(b"\x88\x00")
                    await writer.drain()
                    return
        finally:
            if self.sockets.get(client_id) is writer:
                del self.sockets[client_id]

    def stats(self) -> dict[str, Any]:
        return dict(self.counts)


async def run_push(args: argparse.Namespace) -> None:
    server = PushServer()
    listener = await asyncio.start_server(server.serve, args.host, args.port, limit=1 << 20)
    port = listener.sockets[0].getsockname()[1]
    await _serve_commands(
        f"http://{args.host}:{port}", {"stats": server.stats, "reset": server.counts.clear}
    )
    listener.close()


# --------------------------------------------------------------------------- prompt server


async def run_prompt(args: argparse.Namespace) -> None:
    from aiohttp import web

    counts: Counter[str] = Counter()
    number = 0

    async def submit(request: web.Request) -> web.Response:
        nonlocal number
        counts["POST /prompt"] += 1
        body = orjson.loads(await request.read())
        number += 1
        answer = {
            "prompt_id": body.get("prompt_id") or str(uuid.uuid4()),
            "number": number,
            "node_errors": {},
        }
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/prompt", submit)
    app.router.add_post("/api/prompt", submit)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    port = runner.addresses[0][1]
    await _serve_commands(
        f"http://{args.host}:{port}", {"stats": lambda: dict(counts), "reset": counts.clear}
    )
    await runner.cleanup()


# --------------------------------------------------------------------------- fake ComfyUI


async def run_fake(args: argparse.Namespace) -> None:
    from aiohttp import web_protocol

    from comfy_async.testing import FakeComfyServer
    from comfy_async.testing._hub import Hub
    from comfy_async.testing._store import PromptQueue

    counts: Counter[str] = Counter()
    original_made = web_protocol.RequestHandler.connection_made

    def connection_made(self: Any, transport: Any) -> None:
        counts["tcp"] += 1
        original_made(self, transport)

    web_protocol.RequestHandler.connection_made = connection_made  # type: ignore[method-assign]
    original_handle = Hub.handle

    async def handle(self: Hub, request: Any, **kwargs: Any) -> Any:
        counts["ws"] += 1
        return await original_handle(self, request, **kwargs)

    Hub.handle = handle  # type: ignore[method-assign]

    gate = {"open": True}
    original_take = PromptQueue.take

    async def take(self: PromptQueue, *, may_run: Any = None) -> Any:
        def allowed() -> bool:
            return gate["open"] and (may_run is None or may_run())

        return await original_take(self, may_run=allowed)

    PromptQueue.take = take  # type: ignore[method-assign]

    server = FakeComfyServer(
        host=args.host,
        port=args.port,
        time_scale=args.time_scale,
        history_max_items=args.history,
        sequential_sends=True,
    )
    if args.no_validation:
        from comfy_async.testing import TopLevelValidator

        server.validator = TopLevelValidator()
    async with server:

        def stats() -> dict[str, Any]:
            posts = Counter(record.prompt_id for record in server.prompt_posts)
            runs = Counter(pid for pid, outcome in server.finished if outcome == "success")
            return {
                "requests": dict(server.request_counts),
                "http_requests": sum(server.request_counts.values()),
                "tcp": counts["tcp"],
                "ws": counts["ws"],
                "queue": server.queue_remaining,
                "prompt_posts": len(server.prompt_posts),
                "posted_twice": sum(1 for n in posts.values() if n > 1),
                "successes": sum(1 for _, outcome in server.finished if outcome == "success"),
                "ran_twice": sum(1 for n in runs.values() if n > 1),
            }

        def reset() -> None:
            server.request_counts.clear()
            counts.clear()

        def hold() -> None:
            gate["open"] = False

        def release() -> None:
            gate["open"] = True
            server._context.queue.poke()

        reset()
        await _serve_commands(
            server.url,
            {"stats": stats, "reset": reset, "hold": hold, "release": release},
        )


# --------------------------------------------------------------------------- one box of a fleet


class _LoggedRuns(list[tuple[str, str]]):
    """The server's ``finished`` list that also writes each entry to the log, at once."""

    def __init__(self, log: Any, seeds: dict[str, object]) -> None:
        super().__init__()
        self._log = log
        self._seeds = seeds

    def append(self, entry: tuple[str, str]) -> None:
        prompt_id, outcome = entry
        self._log.write(f"run {prompt_id} {self._seeds.pop(prompt_id, '-')} {outcome}\n")
        self._log.flush()
        super().append(entry)


async def run_fleet(args: argparse.Namespace) -> None:
    from comfy_async.testing import FakeComfyServer
    from comfy_async.testing._executor import Executor

    seeds: dict[str, object] = {}
    original_run = Executor._run

    async def run(self: Executor, item: Any) -> None:
        sampler = item.prompt.get("3", {}) if isinstance(item.prompt, dict) else {}
        seeds[item.prompt_id] = sampler.get("inputs", {}).get("seed", "-")
        await original_run(self, item)

    Executor._run = run  # type: ignore[method-assign]
    server = FakeComfyServer(
        host=args.host,
        port=args.port,
        time_scale=1.0,
        speed=args.speed,
        load_time=args.load_time,
        vram_budget=int(args.vram_gib * 1024**3),
        models={"checkpoints": args.checkpoints.split(",")},
        node_durations={"KSampler": args.job_seconds},
        history_max_items=args.history,
        sequential_sends=True,
    )
    with open(args.log, "a", encoding="utf-8") as log:
        server.finished = _LoggedRuns(log, seeds)
        gpu = server._gpu
        original_use = gpu.use

        def use(folder: str, name: str) -> bool:
            cold = original_use(folder, name)
            if cold:
                log.write(f"load {name}\n")
                log.flush()
            return cold

        gpu.use = use  # type: ignore[method-assign]
        async with server:
            await _serve_commands(
                server.url,
                {"stats": lambda: {"queue": server.queue_remaining, "loads": gpu.loads}},
            )


V2_KEY = "bench-v2-key"
"""The bearer token of the ``v2`` server (a loopback benchmark: no secret)."""


async def run_v2(args: argparse.Namespace) -> None:
    from aiohttp import web_protocol

    from comfy_async.testing import FakeComfyApiV2

    counts: Counter[str] = Counter()
    original_made = web_protocol.RequestHandler.connection_made

    def connection_made(self: Any, transport: Any) -> None:
        counts["tcp"] += 1
        original_made(self, transport)

    web_protocol.RequestHandler.connection_made = connection_made  # type: ignore[method-assign]
    server = FakeComfyApiV2(
        api_key=V2_KEY, host=args.host, time_scale=args.time_scale, history_max_items=args.history
    )
    async with server:
        # the v2 app's own connections only (the native server behind it counts its own)
        base_tcp = counts["tcp"]

        def stats() -> dict[str, Any]:
            requests = {
                "submissions": server.submissions,
                "streams": server.streams_opened,
                "other": server.requests - server.submissions - server.streams_opened,
            }
            return {
                "requests": requests,
                "http_requests": server.requests,
                "tcp": counts["tcp"] - base_tcp,
                "ws": 0,
            }

        def reset() -> None:
            nonlocal base_tcp
            base_tcp = counts["tcp"]

        await _serve_commands(server.url, {"stats": stats, "reset": reset})


# --------------------------------------------------------------------------- plumbing


async def _serve_commands(url: str, commands: dict[str, Any]) -> None:
    """Announce ``url``, then answer one JSON line per command line until stdin closes."""
    print(f"listening on {url}", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    stopping = loop.create_task(stop.wait())
    while True:
        reading = loop.create_task(reader.readline())
        done, _ = await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if stopping in done:
            reading.cancel()
            return
        line = reading.result().decode().strip()
        if not line:
            if reader.at_eof():
                stopping.cancel()
                return
            continue
        action = commands.get(line)
        answer = action() if action is not None else {"error": f"unknown command {line!r}"}
        print(json.dumps(answer if isinstance(answer, dict) else {"ok": True}), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["push", "prompt", "fake", "fleet", "v2"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--time-scale", type=float, default=0.0)
    parser.add_argument("--history", type=int, default=20_000)
    parser.add_argument("--no-validation", action="store_true")
    fleet = parser.add_argument_group("fleet")
    fleet.add_argument("--speed", type=float, default=1.0)
    fleet.add_argument("--load-time", type=float, default=0.0, help="seconds per cold load at 1x")
    fleet.add_argument("--vram-gib", type=float, default=24.0)
    fleet.add_argument("--checkpoints", default="v1-5-pruned-emaonly.safetensors")
    fleet.add_argument("--job-seconds", type=float, default=1.0, help="KSampler seconds at 1x")
    fleet.add_argument("--log", default="/dev/null", help="where runs and loads are appended")
    args = parser.parse_args(argv)
    runners = {
        "push": run_push,
        "prompt": run_prompt,
        "fake": run_fake,
        "fleet": run_fleet,
        "v2": run_v2,
    }
    runner = runners[args.kind]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(runner(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
