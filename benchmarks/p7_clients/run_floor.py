"""P7 floor: the least a client that follows its jobs' events can do, on bare aiohttp.

Not a library and not a contender: a lower bound for every client that reads the WebSocket, as
the hand-off floors of P1 and P2 are for the event path. One aiohttp session and one WebSocket
(announcing preview metadata, so that each preview names its prompt); each job registers its
prompt id, is POSTed once, and waits for its ``executing`` end marker; the one reader task decodes
every frame with orjson, routes it by prompt id and counts progress events and previews for that
job; the outputs come from the job's ``executed`` event and the image is fetched with one GET.

What it leaves out, and every real client needs: error and interruption handling, reconnects,
retries and timeouts, checks of the server's answers, any confirmation over HTTP, progress and
previews handed to the code that waits for a job. Two requests per job (the submit and the
download) and one decode per frame are all it pays for.
"""

from __future__ import annotations

import asyncio
import struct
import sys
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
import orjson
from _job import arguments, digest, graph, run_all, write_result

_HEADER = struct.Struct(">II")
_PREVIEW_WITH_METADATA = 4


class Followed:
    """One job as the reader sees it: its counts, its outputs and the future of its end."""

    __slots__ = ("done", "outputs", "previews", "progress")

    def __init__(self, done: asyncio.Future[None]) -> None:
        self.done = done
        self.outputs: dict[str, Any] = {}
        self.progress = 0
        self.previews = 0


async def read(ws: aiohttp.ClientWebSocketResponse, jobs: dict[str, Followed]) -> None:
    """Route every frame to its job until the socket closes."""
    text, binary = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
    while True:
        message = await ws.receive()
        if message.type is text:
            frame = orjson.loads(message.data)
            data = frame.get("data") or {}
            job = jobs.get(data.get("prompt_id"))
            if job is None:
                continue
            kind = frame.get("type")
            if kind == "progress":
                job.progress += 1
            elif kind == "executed" and data.get("output"):
                job.outputs[data["node"]] = data["output"]
            elif kind == "executing" and data.get("node") is None and not job.done.done():
                job.done.set_result(None)
        elif message.type is binary:
            view = memoryview(message.data)
            kind, length = _HEADER.unpack_from(view, 0)
            if kind == _PREVIEW_WITH_METADATA:
                job = jobs.get(orjson.loads(view[8 : 8 + length]).get("prompt_id"))
                if job is not None:
                    job.previews += 1
        else:
            return


async def main() -> None:
    url, count, base, deadline, result = arguments()
    results: dict[int, dict[str, object]] = {}
    jobs: dict[str, Followed] = {}
    events = {"progress": 0, "previews": 0}
    client_id = uuid.uuid4().hex
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{url}/ws?clientId={client_id}", max_msg_size=0)
        await ws.send_str('{"type":"feature_flags","data":{"supports_preview_metadata":true}}')
        reader = asyncio.create_task(read(ws, jobs))

        async def one(index: int) -> None:
            prompt_id = str(uuid.uuid4())
            job = jobs[prompt_id] = Followed(loop.create_future())
            try:
                body = {
                    "prompt": graph(index, base),
                    "client_id": client_id,
                    "prompt_id": prompt_id,
                }
                async with http.post(f"{url}/prompt", json=body) as response:
                    response.raise_for_status()
                await job.done
                image = job.outputs["4"]["images"][0]
                async with http.get(f"{url}/view", params=image) as response:
                    response.raise_for_status()
                    data = await response.read()
                results[index] = {"sha256": digest(data), "prompt_id": prompt_id}
            except Exception as error:
                results[index] = {"error": f"{type(error).__name__}: {error}"}
            finally:
                del jobs[prompt_id]
                events["progress"] += job.progress
                events["previews"] += job.previews

        wall = await run_all(one, count, deadline)
        await ws.close()
        await reader
    write_result(result, wall, results, "bare aiohttp, one WebSocket, orjson", events=events)


if __name__ == "__main__":
    asyncio.run(main())
