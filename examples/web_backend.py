"""An async web backend: one ComfyClient per process, progress streamed to browsers (SSE).

    python examples/web_backend.py              # serves http://127.0.0.1:8080
    curl -N -X POST http://127.0.0.1:8080/generate

``POST /generate`` queues the workflow and streams Server-Sent Events: ``queued`` with the job
id, ``progress`` with the job's overall fraction, then ``done`` with the output file names (or
``failed``). If the browser goes away, the job is cancelled on the server: the handler streams
inside the job's scope (``async with await comfy.submit(...) as job``), and the write that finds
the connection gone ends the scope before the outcome. ``--selftest`` makes one request against
itself and exits.
"""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp
from _server import arguments, server_url
from aiohttp import web

from comfy_async import ComfyClient, ComfyError, Workflow
from comfy_async.events import Progress

CLIENT = web.AppKey("comfy", ComfyClient)
WORKFLOW = web.AppKey("workflow", Workflow)


async def generate(request: web.Request) -> web.StreamResponse:
    comfy = request.app[CLIENT]
    workflow = request.app[WORKFLOW].copy()
    workflow.randomize_seeds()
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)

    async def send(event: str, data: object) -> None:
        await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())

    # The job's scope: if the browser disconnects, the next write raises, the scope ends before
    # the outcome and the job is cancelled on the server, so nobody pays for an image nobody
    # will see. (The same holds if the server cancels this handler.)
    async with await comfy.submit(workflow, timeout=300) as job:
        await send("queued", {"job": job.prompt_id})
        async for event in job:
            if isinstance(event, Progress):
                await send("progress", {"fraction": round(job.progress.fraction, 3)})
        try:
            result = await job.result()
        except ComfyError as error:
            await send("failed", {"error": str(error)})
        else:
            await send("done", {"files": [file.filename for file in result.files]})
    await response.write_eof()
    return response


def make_app(comfy: ComfyClient, workflow: Workflow) -> web.Application:
    """The web application: one client for the whole process, shared by every request."""
    app = web.Application()
    app[CLIENT] = comfy
    app[WORKFLOW] = workflow
    app.router.add_post("/generate", generate)
    return app


async def selftest(port: int) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{port}/generate") as answer,
    ):
        body = (await answer.read()).decode()
    print(body)
    return 0 if "event: done" in body else 1


async def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--selftest", action="store_true")
    args = parser.parse_args(argv)
    async with server_url(args.url) as url, ComfyClient(url) as comfy:
        workflow = Workflow.from_file(args.workflow, catalogue=await comfy.nodes())
        runner = web.AppRunner(make_app(comfy, workflow))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0 if args.selftest else args.port)
        await site.start()
        port = runner.addresses[0][1]
        try:
            if args.selftest:
                return await selftest(port)
            print(f"serving http://127.0.0.1:{port}  (Ctrl-C to stop)")
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
