"""Replay helpers: drive the fake like the recordings did and compare what comes back.

* :class:`Sock` — a plain aiohttp WebSocket that records every frame in the background.
* :func:`shape_of_frame` / :func:`recorded_shapes` — a frame reduced to what must match a real
  server (event type, the set of data fields, node ids and states; binary type) and not what may
  differ (ids, timestamps, file names).
* :func:`json_shape` — an HTTP body reduced to key sets and value types.
* :func:`recorded_requests` — the recorded HTTP exchanges of a scenario.
"""

from __future__ import annotations

import asyncio
import base64
import difflib
import json
import re
import struct
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.recordings import REAL_COMFYUI

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
BINARY_NAMES = {1: "PREVIEW_IMAGE", 3: "TEXT", 4: "PREVIEW_IMAGE_WITH_METADATA"}

Shape = tuple[Any, ...]


def _detail(type_: str, data: dict[str, Any]) -> Any:
    if type_ == "progress_state":
        return tuple((node, value["state"]) for node, value in data["nodes"].items())
    if type_ in {"executing", "executed"}:
        return data.get("node")
    if type_ == "execution_cached":
        return tuple(data["nodes"])
    if type_ == "status":
        return data["status"]["exec_info"]["queue_remaining"]
    if type_ in {"execution_error", "execution_interrupted"}:
        return (data["node_id"], data.get("exception_type"))
    if type_ == "progress":
        return (data["node"], data["max"])
    return None


def shape_of_text(message: dict[str, Any]) -> Shape:
    """``("text", type, sorted data fields, detail)``."""
    data = message["data"]
    return ("text", message["type"], tuple(sorted(data)), _detail(message["type"], data))


def shape_of_binary(frame: bytes) -> Shape:
    """``("binary", name)``, plus the metadata fields of a type-4 frame."""
    (kind,) = struct.unpack_from(">I", frame, 0)
    if kind == 4:
        (length,) = struct.unpack_from(">I", frame, 4)
        meta = json.loads(frame[8 : 8 + length])
        return ("binary", BINARY_NAMES[kind], tuple(sorted(meta)))
    if kind == 3:
        (length,) = struct.unpack_from(">I", frame, 4)
        return ("binary", BINARY_NAMES[kind], frame[8 : 8 + length].decode())
    return ("binary", BINARY_NAMES.get(kind, str(kind)))


def recorded_shapes(filename: str) -> list[list[Shape]]:
    """The frames each connection of a recorded WS file received, one list per connection."""
    sockets: list[list[Shape]] = []
    for line in (REAL_COMFYUI / "ws" / filename).read_text().splitlines():
        record = json.loads(line)
        if record["direction"] == "meta" and record.get("event") == "connect":
            sockets.append([])
        if record["direction"] != "in":
            continue
        if record["frame"] == "text":
            sockets[-1].append(shape_of_text(record["json"]))
        else:
            sockets[-1].append(shape_of_binary(base64.b64decode(record["b64"])))
    return sockets


def without_steps(shapes: list[Shape]) -> list[Shape]:
    """Drop progress steps (their count and timing vary): ``progress``, previews, and
    ``progress_state`` frames that repeat the previous ``progress_state`` (same node states, new
    values), wherever they fall between other frames."""
    out: list[Shape] = []
    last_state: Shape | None = None
    for shape in shapes:
        if shape[1] in {"progress", "PREVIEW_IMAGE", "PREVIEW_IMAGE_WITH_METADATA"}:
            continue
        if shape[1] == "progress_state":
            if shape == last_state:
                continue
            last_state = shape
        out.append(shape)
    return out


def same_shapes(actual: list[Shape], recorded: list[Shape], name: str = "") -> None:
    """Assert two frame sequences have the same shapes, with a readable diff when they do not."""
    if actual == recorded:
        return
    diff = difflib.unified_diff(
        [repr(s) for s in recorded], [repr(s) for s in actual], "recorded", "fake", lineterm=""
    )
    raise AssertionError(f"{name}: frame shapes differ\n" + "\n".join(diff))


def only(shapes: list[Shape], *types: str) -> list[Shape]:
    """Keep the frames of these types (text type or binary name)."""
    return [s for s in shapes if s[1] in types]


def json_shape(value: Any) -> Any:
    """Key sets and value types; dicts keyed by UUIDs collapse to one sample entry."""
    if isinstance(value, dict):
        if value and all(isinstance(k, str) and UUID.match(k) for k in value):
            return {"<uuid>": json_shape(next(iter(value.values())))}
        return {k: json_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


def recorded_requests(filename: str) -> list[dict[str, Any]]:
    """The recorded exchanges of one HTTP file."""
    return json.loads((REAL_COMFYUI / "http" / filename).read_text())  # type: ignore[no-any-return]


def exchange(filename: str, label: str) -> dict[str, Any]:
    """One recorded exchange by label."""
    for item in recorded_requests(filename):
        if item["label"] == label:
            return item
    raise KeyError(label)


@dataclass
class Sock:
    """A recording WebSocket client (like the capture script: ``max_msg_size=0``)."""

    ws: aiohttp.ClientWebSocketResponse
    frames: list[str | bytes] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def open(
        cls, http: aiohttp.ClientSession, url: str, hello: list[str] | None = None
    ) -> Sock:
        ws = await http.ws_connect(url, max_msg_size=0)
        for text in hello or []:
            await ws.send_str(text)
        sock = cls(ws)
        sock.task = asyncio.get_running_loop().create_task(sock._read())
        return sock

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if message.type in {aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY}:
                    self.frames.append(message.data)
        finally:
            self.closed.set()

    def shapes(self) -> list[Shape]:
        return [
            shape_of_text(json.loads(f)) if isinstance(f, str) else shape_of_binary(f)
            for f in self.frames
        ]

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(f) for f in self.frames if isinstance(f, str)]

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
        """Wait for a text event matching ``predicate(event)``; returns it."""
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events():
                    if predicate(event):
                        return event
                await asyncio.sleep(0.005)

    async def wait_finished(self, prompt_id: str, timeout: float = 10.0) -> None:
        await self.wait_for(
            lambda e: (
                e["type"] == "executing"
                and e["data"]["node"] is None
                and e["data"].get("prompt_id") == prompt_id
            ),
            timeout,
        )

    async def settle(self, quiet: float = 0.05, limit: float = 5.0) -> None:
        """Wait until no frame arrived for ``quiet`` seconds: frames the server handed to its
        socket (``wait_idle``) may still be on their way to this one."""
        async with asyncio.timeout(limit):
            while True:
                seen = len(self.frames)
                await asyncio.sleep(quiet)
                if len(self.frames) == seen:
                    return

    async def close(self) -> None:
        if not self.closed.is_set():
            await self.settle()
        await self.ws.close()
        if self.task is not None:
            await self.task
