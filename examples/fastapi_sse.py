"""A FastAPI app: jobs queued over HTTP, progress and previews streamed to the browser (SSE).

    python examples/fastapi_sse.py                    # the embedded fake server; open the page
    python examples/fastapi_sse.py --url http://127.0.0.1:8188 --workflow my_api.json

Routes:

* ``GET /`` — a small page: a button, a progress bar, the newest preview, then the image.
* ``POST /generate`` — queues the workflow (seeds randomised) and answers ``{"job": id}``.
* ``GET /jobs/{id}/events`` — Server-Sent Events: ``progress`` (the job's overall fraction),
  ``preview`` (the newest preview as a data URL), then ``done`` (the result's URL) or
  ``failed``. The stream runs inside the job's scope: when the browser leaves, Starlette
  cancels the stream and the job is cancelled on the server.
* ``GET /jobs/{id}/result`` — the job's first image, once it has one (waits for the job).

One ``ComfyClient`` serves the whole app: opened in the lifespan, closed with it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import sys
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from _server import arguments, server_url
from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from comfy_async import ComfyClient, ComfyError, Job, JobError, Workflow
from comfy_async.events import PreviewImage, Progress

#: How many jobs the app remembers (the oldest are forgotten first).
REMEMBERED_JOBS = 256
#: At most this many previews a second go to one browser; the newest wins.
PREVIEWS_PER_SECOND = 10.0


@dataclass
class Jobs:
    """The jobs this process queued, by prompt id, and which of them a browser is streaming."""

    jobs: OrderedDict[str, Job] = field(default_factory=OrderedDict)
    streaming: set[str] = field(default_factory=set)

    def add(self, job: Job) -> None:
        self.jobs[job.prompt_id] = job
        while len(self.jobs) > REMEMBERED_JOBS:
            self.jobs.popitem(last=False)

    def get(self, prompt_id: str) -> Job:
        try:
            return self.jobs[prompt_id]
        except KeyError:
            raise HTTPException(404, f"no job {prompt_id}") from None


def sse(event: str, data: object) -> bytes:
    """One Server-Sent Event."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def data_url(preview: PreviewImage) -> str:
    return f"data:{preview.mime};base64,{base64.b64encode(preview.image).decode()}"


async def job_events(job: Job) -> AsyncIterator[bytes]:
    """The job's events as SSE, inside the job's scope: leaving early cancels the job."""
    async with job:
        last_preview = 0.0
        pending_preview: PreviewImage | None = None
        loop = asyncio.get_running_loop()
        async for event in job:
            if isinstance(event, Progress):
                yield sse("progress", {"fraction": round(job.progress.fraction, 3)})
            elif isinstance(event, PreviewImage):
                pending_preview = event
            if (
                pending_preview is not None
                and loop.time() - last_preview >= 1 / PREVIEWS_PER_SECOND
            ):
                yield sse("preview", {"url": data_url(pending_preview)})
                pending_preview, last_preview = None, loop.time()
        try:
            await job.result()
        except JobError as error:
            yield sse("failed", {"error": str(error)})
        else:
            if pending_preview is not None:
                yield sse("preview", {"url": data_url(pending_preview)})
            yield sse("done", {"result": f"/jobs/{job.prompt_id}/result"})


def make_app(url: str, workflow_path: Path) -> FastAPI:
    """The app, speaking to the ComfyUI server at ``url`` with the workflow at ``workflow_path``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with ComfyClient(url) as comfy:
            app.state.comfy = comfy
            app.state.workflow = Workflow.from_file(workflow_path, catalogue=await comfy.nodes())
            app.state.jobs = Jobs()
            yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return PAGE

    @app.post("/generate")
    async def generate() -> dict[str, str]:
        workflow: Workflow = app.state.workflow.copy()
        workflow.randomize_seeds()
        try:
            job = await app.state.comfy.submit(workflow, extra_data={"preview_method": "auto"})
        except ComfyError as error:
            raise HTTPException(502, str(error)) from error
        app.state.jobs.add(job)
        return {"job": job.prompt_id}

    @app.get("/jobs/{prompt_id}/events")
    async def events(prompt_id: str) -> StreamingResponse:
        jobs: Jobs = app.state.jobs
        job = jobs.get(prompt_id)
        if prompt_id in jobs.streaming:
            raise HTTPException(409, "this job is already streamed to a browser")
        jobs.streaming.add(prompt_id)
        return StreamingResponse(
            job_events(job),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store"},
        )

    @app.get("/jobs/{prompt_id}/result")
    async def result(prompt_id: str) -> Response:
        job = app.state.jobs.get(prompt_id)
        try:
            outcome = await job.result()
        except JobError as error:
            raise HTTPException(409, f"the job has no result: {error}") from error
        images = [file for file in outcome.files if file.kind == "images"]
        if not images:
            raise HTTPException(404, "the job produced no image")
        body = await app.state.comfy.files.read(images[0])
        media = "image/png" if images[0].filename.endswith(".png") else "application/octet-stream"
        return Response(body, media_type=media)

    return app


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>comfy_async</title>
<style>
body { font-family: sans-serif; margin: 2rem; background: #fafafa; }
progress { width: 320px; height: 1.2rem; }
img { display: block; margin-top: 1rem; width: 320px; min-height: 240px;
      image-rendering: pixelated; background: #ddd; }
</style></head>
<body>
<h1>comfy_async</h1>
<button id="generate">Generate</button>
<progress id="bar" max="1" value="0"></progress> <span id="status">idle</span>
<img id="preview" alt="preview">
<script>
const bar = document.getElementById("bar");
const status = document.getElementById("status");
const preview = document.getElementById("preview");
document.getElementById("generate").addEventListener("click", async () => {
  status.textContent = "queued";
  bar.value = 0;
  const answer = await fetch("/generate", {method: "POST"});
  const {job} = await answer.json();
  const stream = new EventSource(`/jobs/${job}/events`);
  stream.addEventListener("progress", (e) => {
    bar.value = JSON.parse(e.data).fraction;
    status.textContent = "running";
  });
  stream.addEventListener("preview", (e) => {
    preview.src = JSON.parse(e.data).url;
    preview.dataset.previews = String(Number(preview.dataset.previews || 0) + 1);
  });
  stream.addEventListener("done", (e) => {
    stream.close();
    bar.value = 1;
    preview.onload = () => { status.textContent = "done"; };
    preview.src = JSON.parse(e.data).result;
  });
  stream.addEventListener("failed", (e) => {
    stream.close();
    status.textContent = "failed: " + JSON.parse(e.data).error;
  });
});
</script>
</body></html>
"""


async def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    async with server_url(args.url) as url:
        config = uvicorn.Config(make_app(url, args.workflow), host="127.0.0.1", port=args.port)
        await uvicorn.Server(config).serve()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
