"""``FakeComfyApiV2``: the Comfy API v2 (``/api/v2/*``) in front of a fake ComfyUI, for tests.

It is what a self-hosted v2 proxy is: a small aiohttp app that turns v2 requests into native
ones on a :class:`~comfy_async.testing.FakeComfyServer` it runs (so jobs really execute, with the
same behaviours, durations, outputs and failures) and follows that server's WebSocket to keep
each v2 job object current. It serves:

* ``POST /api/v2/jobs`` — API-format workflows only (``workflow_format_ui`` otherwise), the
  native server's validation as ``invalid_workflow``, ``Idempotency-Key`` single-use
  (``idempotency_key_reuse``, released when a submission definitively fails);
* ``GET /api/v2/jobs/{id}`` — the truth: status, the latest progress, outputs committed so far
  (each an asset with an absolute content URL; the job links are host-relative), error, links;
* ``GET /api/v2/jobs/{id}/events`` — SSE: a snapshot on connect (``status``, the latest
  ``progress``, the latest ``preview``), then ``status``/``progress``/``preview``/``output``
  updates, ending after the terminal ``status``; no ids, no replay. Previews are the native
  server's preview frames of the job (its workflow makes them: a sampler with a preview method,
  a node that sends previews) as ``{node_id, content_type, data_base64}``, at most one per
  ``preview_every`` seconds per job, the newest kept for a stream that connects later;
* ``POST /api/v2/jobs/{id}/cancel`` — ``canceling`` then ``canceled`` (idempotent);
* ``POST /api/v2/assets`` (multipart; blake3 computed here, a client's ``expected_hash``
  verified, ``hash_mismatch`` otherwise), ``HEAD /api/v2/assets/by-hash/{hash}``,
  ``POST /api/v2/assets/from-hash`` (``blob_not_found``), ``GET /api/v2/assets/{id}`` and
  ``…/content``: content-addressed blobs under UUID asset records; a ``core/ASSET`` reference in
  a workflow is checked (``missing_asset``) and becomes the uploaded file's name on the server.

``Authorization: Bearer <api_key>`` is required on every route. Faults (:class:`V2Faults`, on
:attr:`FakeComfyApiV2.faults`): SSE streams cut after some events, 5xx answers, slow polls,
submissions whose answer is lost after the job was created; :meth:`FakeComfyApiV2.suspend` and
:meth:`~FakeComfyApiV2.resume` freeze and thaw the whole box (the v2 front and its native server).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Self

import aiohttp
import blake3
import orjson
from aiohttp import web

from comfy_async.errors import FrameError
from comfy_async.events import PreviewImage
from comfy_async.protocol.frames import parse_binary_frame
from comfy_async.testing.server import FakeComfyServer

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from types import TracebackType

__all__ = ["FakeComfyApiV2", "V2Faults"]

_UI_KINDS = {"images": "image", "gifs": "video", "video": "video", "audio": "audio"}
_TERMINAL = frozenset({"succeeded", "canceled", "failed", "expired"})


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, code: str, message: str, details: object = None) -> web.Response:
    body = {"error": {"code": code, "message": message, "details": details}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


def _json(payload: object, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(payload), content_type="application/json")


@dataclass
class V2Faults:
    """Faults the v2 fake injects; each count is used up as it fires.

    Attributes:
        cut_streams_after: cut the next SSE stream abruptly after this many events (then reset
            to ``None``); ``0`` cuts it right after the headers.
        submit_errors: answer the next N submissions 503 before anything is created (the key
            is released, as the contract says for a definite failure).
        poll_errors: answer the next N ``GET /api/v2/jobs/{id}`` with 500.
        poll_delay: seconds every ``GET /api/v2/jobs/{id}`` waits before answering.
        streams_unavailable: answer every SSE request 501 ``not_implemented`` (poll only).
        stall_streams: the next N SSE streams send their snapshot, then nothing while staying
            open (a dead link no one closed).
        lose_submit_answers: the next N submissions create their job (it runs), then the
            connection is cut before the answer: the client cannot know the job exists.

    """

    cut_streams_after: int | None = None
    submit_errors: int = 0
    poll_errors: int = 0
    poll_delay: float = 0.0
    streams_unavailable: bool = False
    stall_streams: int = 0
    lose_submit_answers: int = 0


@dataclass(eq=False)
class _Job:
    id: str
    nodes_total: int
    key: str | None = None
    status: str = "queued"
    created_at: str = field(default_factory=_now)
    started_at: str | None = None
    completed_at: str | None = None
    progress: dict[str, Any] | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    finished_nodes: set[str] = field(default_factory=set)
    current_class: str | None = None
    classes: dict[str, str] = field(default_factory=dict)
    cancel_requested: bool = False
    preview: dict[str, Any] | None = None
    preview_sent_at: float = float("-inf")
    listeners: set[asyncio.Queue[tuple[str, object] | None]] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        base = f"/api/v2/jobs/{self.id}"
        expires = datetime.fromisoformat(self.created_at.replace("Z", "+00:00"))
        return {
            "id": self.id,
            "status": self.status,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "expires_at": (expires + timedelta(days=7)).isoformat().replace("+00:00", "Z"),
            "queue_position": 0 if self.status == "queued" else None,
            "progress": self.progress,
            "outputs": list(self.outputs),
            "error": self.error,
            "metrics": {"queue_ms": None, "execution_ms": None},
            "urls": {"self": base, "events": f"{base}/events", "cancel": f"{base}/cancel"},
        }

    def status_event(self) -> dict[str, Any]:
        event: dict[str, Any] = {"status": self.status, "queue_position": None}
        if self.status in _TERMINAL:
            event["outputs"] = list(self.outputs)
            event["error"] = self.error
        return event

    def publish(self, name: str, data: object) -> None:
        for listener in self.listeners:
            listener.put_nowait((name, data))
        if name == "status" and self.status in _TERMINAL:
            for listener in self.listeners:
                listener.put_nowait(None)


class FakeComfyApiV2:
    """A fake Comfy API v2 server (see the module docstring).

    Args:
        api_key: the bearer token every request must carry (a random one when ``None``).
        server: the native fake to run jobs on (started and closed by this one when it is not
            running yet); by default one is made from ``server_options``.
        host: a loopback address to bind.
        preview_every: the least seconds between two ``preview`` events of one job (the
            contract's throttling; ``0``: every preview the native server sends).
        server_options: keyword arguments for the :class:`FakeComfyServer` made by default.

    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        server: FakeComfyServer | None = None,
        host: str = "127.0.0.1",
        preview_every: float = 0.0,
        **server_options: Any,
    ) -> None:
        self.api_key = api_key or ("v2-" + secrets.token_hex(8))
        self.preview_every = preview_every
        self.native = server if server is not None else FakeComfyServer(**server_options)
        self.host = host
        self.faults = V2Faults()
        #: Every job, by id (``.key``: the ``Idempotency-Key`` it was submitted with).
        self.jobs: dict[str, _Job] = {}
        #: Every ``Idempotency-Key`` claimed.
        self.claimed_keys: set[str] = set()
        #: Submissions received (accepted or not).
        self.submissions = 0
        #: Previews sent as ``preview`` events (all streams of all jobs).
        self.previews_sent = 0
        #: SSE streams opened.
        self.streams_opened = 0
        #: Requests served (any route, authorised or not).
        self.requests = 0
        #: When set, ``…/content`` answers 302 to ``{redirect_content_to}/{asset id}`` (a signed
        #: URL on another origin, as Cloud and serverless answer).
        self.redirect_content_to: str | None = None
        self._assets: dict[str, dict[str, Any]] = {}
        self._streams: set[asyncio.Queue[tuple[str, object] | None]] = set()
        #: Content-addressed blobs: ``blake3:<hex>`` → the name the native server stored it as.
        self.blobs: dict[str, str] = {}
        #: Uploads that carried bytes (``POST /api/v2/assets``).
        self.byte_uploads = 0
        self._client_id = uuid.uuid4().hex
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._listener: asyncio.Task[None] | None = None
        self._owns_native = False
        self._port = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """The base URL of the v2 API (``http://host:port``)."""
        return f"http://{self.host}:{self._port}"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the native fake (if needed), follow its WebSocket and serve the v2 API."""
        if self.native._runner is None:
            await self.native.start()
            self._owns_native = True
        self._session = aiohttp.ClientSession()
        await self._listen()
        await self._serve()

    async def _listen(self) -> None:
        """Follow the native server's WebSocket, asking for previews with their metadata."""
        assert self._session is not None
        ws = await self._session.ws_connect(self.native.ws_url(self._client_id))
        flags = {"type": "feature_flags", "data": {"supports_preview_metadata": True}}
        await ws.send_str(orjson.dumps(flags).decode())
        self._listener = asyncio.get_running_loop().create_task(self._follow(ws))

    async def _serve(self) -> None:
        app = web.Application(middlewares=[self._auth])
        app.add_routes(
            [
                web.post("/api/v2/jobs", self._submit),
                web.get("/api/v2/jobs/{id}", self._get_job),
                web.get("/api/v2/jobs/{id}/events", self._events),
                web.post("/api/v2/jobs/{id}/cancel", self._cancel),
                web.post("/api/v2/assets", self._upload),
                web.post("/api/v2/assets/from-hash", self._from_hash),
                web.head("/api/v2/assets/by-hash/{hash}", self._by_hash),
                web.get("/api/v2/assets/{id}", self._get_asset),
                web.get("/api/v2/assets/{id}/content", self._asset_content),
            ]
        )
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port, reuse_address=True)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self._port = server.sockets[0].getsockname()[1]

    async def suspend(self) -> None:
        """Freeze the box: the v2 front serves nothing, its native server runs nothing.

        Open streams are cut, the port is closed; jobs, keys and assets are kept, and the native
        server keeps its queue and the prompt it was running (see
        :meth:`FakeComfyServer.suspend`). :meth:`resume` thaws both.
        """
        self._end_streams()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._stop_listening()
        await self.native.suspend()

    async def resume(self, *, run_after: float = 0.0) -> None:
        """Serve again on the same port; the native worker goes on after ``run_after`` s."""
        await self.native.resume(run_after=run_after)
        await self._listen()
        await self._serve()

    def _end_streams(self) -> None:
        for stream in self._streams:
            stream.put_nowait(None)  # every open stream ends, stalled ones too

    async def _stop_listening(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def close(self) -> None:
        """Stop serving, stop following, and close the native fake if this one started it."""
        self._end_streams()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._stop_listening()
        if self._session is not None:
            await self._session.close()
        if self._owns_native:
            await self.native.close()

    # ------------------------------------------------------------------ middleware

    @web.middleware
    async def _auth(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.requests += 1
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "unauthorized", "missing or invalid credentials")
        return await handler(request)

    # ------------------------------------------------------------------ jobs

    async def _submit(self, request: web.Request) -> web.Response:
        self.submissions += 1
        key = request.headers.get("Idempotency-Key")
        if key is not None and key in self.claimed_keys:
            return _error(422, "idempotency_key_reuse", "this Idempotency-Key was used already")
        if self.faults.submit_errors > 0:
            self.faults.submit_errors -= 1
            return _error(503, "upstream_error", "try again")
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _error(422, "invalid_workflow", "the body is not JSON")
        workflow = body.get("workflow") if isinstance(body, dict) else None
        if not isinstance(workflow, dict):
            return _error(422, "invalid_workflow", "workflow must be an object")
        if "nodes" in workflow and "links" in workflow:
            return _error(422, "workflow_format_ui", "send the API-format workflow")
        try:
            workflow = self._resolve_assets(workflow)
        except KeyError as missing:
            return _error(422, "missing_asset", f"no asset {missing.args[0]}")
        if key is not None:
            self.claimed_keys.add(key)
        job_id = str(uuid.uuid4())
        job = _Job(id=job_id, nodes_total=len(workflow), key=key)
        for node_id, node in workflow.items():
            if isinstance(node, dict) and isinstance(node.get("class_type"), str):
                job.classes[str(node_id)] = node["class_type"]
        self.jobs[job_id] = job  # before the POST: its first events may come before the answer
        assert self._session is not None
        async with self._session.post(
            f"{self.native.url}/api/prompt",
            json={"prompt": workflow, "client_id": self._client_id, "prompt_id": job_id},
        ) as answer:
            native = await answer.json(loads=orjson.loads)
        if answer.status != 200:
            del self.jobs[job_id]
            if key is not None:
                self.claimed_keys.discard(key)  # a definite failure releases the key
            error = native.get("error", {}) if isinstance(native, dict) else {}
            message = error.get("message", "invalid workflow") if isinstance(error, dict) else ""
            details = {"node_errors": native.get("node_errors", {})}
            return _error(422, "invalid_workflow", str(message), details)
        if self.faults.lose_submit_answers > 0:
            self.faults.lose_submit_answers -= 1
            transport = request.transport
            if transport is not None:
                transport.abort()  # the job exists and runs; its answer is lost on the way
            return _json(job.as_dict(), status=201)
        return _json(job.as_dict(), status=201)

    def _job(self, request: web.Request) -> _Job | None:
        return self.jobs.get(request.match_info["id"])

    async def _get_job(self, request: web.Request) -> web.Response:
        if self.faults.poll_delay:
            await asyncio.sleep(self.faults.poll_delay)
        if self.faults.poll_errors > 0:
            self.faults.poll_errors -= 1
            return _error(500, "upstream_error", "something went wrong")
        job = self._job(request)
        if job is None:
            return _error(404, "not_found", "no such job")
        return _json(job.as_dict())

    async def _cancel(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if job is None:
            return _error(404, "not_found", "no such job")
        if job.status not in _TERMINAL and not job.cancel_requested:
            job.cancel_requested = True
            assert self._session is not None
            ctx = self.native._ctx
            if ctx is not None and ctx.queue.find_pending(job.id) is not None:
                async with self._session.post(
                    f"{self.native.url}/api/queue", json={"delete": [job.id]}
                ):
                    self._finish(job, "canceled")  # deleted before it ran: no event follows
            else:
                async with self._session.post(
                    f"{self.native.url}/api/interrupt", json={"prompt_id": job.id}
                ):
                    job.status = "canceling"  # canceled when the interruption lands
                    job.publish("status", job.status_event())
        return _json(job.as_dict())

    # ------------------------------------------------------------------ SSE

    async def _events(self, request: web.Request) -> web.StreamResponse:
        job = self._job(request)
        if job is None:
            return _error(404, "not_found", "no such job")
        if self.faults.streams_unavailable:
            return _error(501, "not_implemented", "no live streaming here")
        self.streams_opened += 1
        cut_after, self.faults.cut_streams_after = self.faults.cut_streams_after, None
        queue: asyncio.Queue[tuple[str, object] | None] = asyncio.Queue()
        self._streams.add(queue)
        queue.put_nowait(("status", job.status_event()))
        if job.progress is not None:
            queue.put_nowait(("progress", job.progress))
        if job.preview is not None and job.status not in _TERMINAL:
            queue.put_nowait(("preview", job.preview))
        stalled = self.faults.stall_streams > 0
        if stalled:
            self.faults.stall_streams -= 1
        if job.status in _TERMINAL:
            queue.put_nowait(None)
        elif not stalled:
            job.listeners.add(queue)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        sent = 0
        try:
            while True:
                if cut_after is not None and sent >= cut_after:
                    transport = request.transport
                    if transport is not None:
                        transport.abort()  # cut mid-stream, as a dropped connection is
                    return response
                item = await queue.get()
                if item is None:
                    break
                name, data = item
                await response.write(b"event: " + name.encode() + b"\ndata: ")
                await response.write(orjson.dumps(data) + b"\n\n")
                sent += 1
                if name == "preview":
                    self.previews_sent += 1
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            job.listeners.discard(queue)
            self._streams.discard(queue)
        return response

    # ------------------------------------------------------------------ assets

    def _resolve_assets(self, workflow: dict[str, Any]) -> dict[str, Any]:
        """Replace every ``core/ASSET`` input by its file's name; KeyError names a missing one."""
        resolved: dict[str, Any] = {}
        for node_id, node in workflow.items():
            if not isinstance(node, dict) or not isinstance(node.get("inputs"), dict):
                resolved[node_id] = node
                continue
            inputs = dict(node["inputs"])
            for name, value in inputs.items():
                if isinstance(value, dict) and value.get("__type") == "core/ASSET":
                    info = value.get("info")
                    asset_id = info.get("id") if isinstance(info, dict) else None
                    asset = self._assets.get(str(asset_id))
                    if asset is None or asset["record"]["job_id"] is not None:
                        raise KeyError(asset_id)
                    inputs[name] = asset["ref"]["filename"]
            resolved[node_id] = {**node, "inputs": inputs}
        return resolved

    async def _upload(self, request: web.Request) -> web.Response:
        self.byte_uploads += 1
        fields: dict[str, Any] = {}
        tags: list[str] = []
        async for part in await request.multipart():
            if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                continue
            if part.name == "file":
                fields["file"] = await part.read()
            elif part.name == "tags":
                tags.append(await part.text())
            else:
                fields[part.name] = await part.text()
        data = fields.get("file")
        if not isinstance(data, bytes | bytearray) or "file_path" not in fields:
            return _error(422, "invalid_request", "file, content_type and file_path are required")
        digest = "blake3:" + blake3.blake3(bytes(data)).hexdigest()
        expected = fields.get("expected_hash")
        if expected is not None and expected != digest:
            return _error(409, "hash_mismatch", "the bytes do not have the expected hash")
        created = digest not in self.blobs
        if created:
            self.blobs[digest] = await self._store_blob(bytes(data), str(fields["file_path"]))
        record = self._mint(digest, len(data), fields, tags, created_new=created)
        return _json(record, status=201 if created else 200)

    async def _store_blob(self, data: bytes, file_path: str) -> str:
        """Put the bytes in the native server's input folder; return the name it chose."""
        assert self._session is not None
        form = aiohttp.FormData()
        name = file_path.rsplit("/", 1)[-1] or "asset"
        form.add_field("image", data, filename=name)
        form.add_field("type", "input")
        async with self._session.post(f"{self.native.url}/api/upload/image", data=form) as answer:
            stored = await answer.json(loads=orjson.loads)
        return str(stored["name"])

    def _mint(
        self,
        digest: str,
        size: int,
        fields: dict[str, Any],
        tags: list[str],
        *,
        created_new: bool,
    ) -> dict[str, Any]:
        asset_id = str(uuid.uuid4())
        record = {
            "id": asset_id,
            "hash": digest,
            "size_bytes": size,
            "content_type": str(fields.get("content_type", "application/octet-stream")),
            "file_path": fields.get("file_path"),
            "created_new": created_new,
            "created_at": _now(),
            "url": f"{self.url}/api/v2/assets/{asset_id}/content",
            "url_expires_at": _now(),
            "expires_at": None,
            "job_id": None,
            "tags": tags,
        }
        ref = {"filename": self.blobs[digest], "subfolder": "", "type": "input"}
        self._assets[asset_id] = {"record": record, "ref": ref}
        return record

    async def _by_hash(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if request.match_info["hash"] in self.blobs else 404)

    async def _from_hash(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _error(422, "invalid_request", "the body is not JSON")
        digest = body.get("hash") if isinstance(body, dict) else None
        if not isinstance(digest, str) or digest not in self.blobs:
            return _error(404, "blob_not_found", "no blob you may mint from")
        tags = body.get("tags") if isinstance(body.get("tags"), list) else []
        ref = await self._read_blob(digest)
        record = self._mint(digest, len(ref), body, [str(tag) for tag in tags], created_new=False)
        return _json(record, status=201)

    async def _read_blob(self, digest: str) -> bytes:
        assert self._session is not None
        params = {"filename": self.blobs[digest], "type": "input"}
        async with self._session.get(f"{self.native.url}/api/view", params=params) as view:
            return await view.read()

    async def _get_asset(self, request: web.Request) -> web.Response:
        asset = self._assets.get(request.match_info["id"])
        if asset is None:
            return _error(404, "not_found", "no such asset")
        return _json(asset["record"])

    async def _asset_content(self, request: web.Request) -> web.StreamResponse:
        asset = self._assets.get(request.match_info["id"])
        if asset is None:
            return _error(404, "not_found", "no such asset")
        if self.redirect_content_to is not None:
            location = f"{self.redirect_content_to}/{request.match_info['id']}"
            return web.Response(status=302, headers={"Location": location})
        assert self._session is not None
        async with self._session.get(f"{self.native.url}/api/view", params=asset["ref"]) as view:
            data = await view.read()
        return web.Response(body=data, content_type=asset["record"]["content_type"])

    def _output(self, job: _Job, node: str, kind: str, item: dict[str, Any]) -> dict[str, Any]:
        asset_id = str(uuid.uuid4())
        filename = str(item.get("filename", ""))
        content_type = "image/png" if filename.endswith(".png") else "application/octet-stream"
        record = {
            "id": asset_id,
            "node_id": node,
            "name": filename,
            "type": _UI_KINDS.get(kind, "file"),
            "content_type": content_type,
            "size_bytes": 0,
            "hash": None,
            "url": f"{self.url}/api/v2/assets/{asset_id}/content",
            "url_expires_at": _now(),
            "job_id": job.id,
            "created_at": _now(),
            "file_path": filename,
        }
        ref = {
            "filename": filename,
            "subfolder": str(item.get("subfolder", "")),
            "type": str(item.get("type", "output")),
        }
        self._assets[asset_id] = {"record": record, "ref": ref}
        return record

    # ------------------------------------------------------------------ following the native server

    async def _follow(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async with ws:
            async for message in ws:
                if message.type is aiohttp.WSMsgType.BINARY:
                    self._binary(message.data)
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                frame = orjson.loads(message.data)
                data = frame.get("data")
                if not isinstance(data, dict):
                    continue
                job = self.jobs.get(str(data.get("prompt_id")))
                if job is not None and job.status not in _TERMINAL:
                    self._apply(job, str(frame.get("type")), data)

    def _binary(self, data: bytes) -> None:
        """A native preview frame becomes its job's ``preview`` event (throttled, newest kept)."""
        try:
            event = parse_binary_frame(data)
        except FrameError:
            return
        if not isinstance(event, PreviewImage) or event.prompt_id is None:
            return
        job = self.jobs.get(event.prompt_id)
        if job is None or job.status in _TERMINAL:
            return
        job.preview = {
            "node_id": event.node_id or "",
            "content_type": event.mime,
            "data_base64": base64.b64encode(event.image).decode("ascii"),
        }
        now = asyncio.get_running_loop().time()
        if now - job.preview_sent_at >= self.preview_every:
            job.preview_sent_at = now
            job.publish("preview", job.preview)

    def _apply(self, job: _Job, kind: str, data: dict[str, Any]) -> None:
        if kind in ("execution_start", "execution_cached") and job.status == "queued":
            job.status = "running"
            job.started_at = _now()
            job.publish("status", job.status_event())
        if kind == "execution_cached":
            job.finished_nodes.update(str(node) for node in data.get("nodes", []))
        elif kind == "executing" and isinstance(data.get("node"), str):
            self._progress(job, data["node"], None, None)
        elif kind == "progress":
            node = data.get("node")
            if isinstance(node, str):
                self._progress(job, node, int(data.get("value", 0)), int(data.get("max", 1)))
        elif kind == "executed":
            node = str(data.get("node"))
            job.finished_nodes.add(node)
            output = data.get("output")
            for ui_kind, items in (output or {}).items():
                for item in items if isinstance(items, list) else []:
                    if isinstance(item, dict) and isinstance(item.get("filename"), str):
                        record = self._output(job, node, ui_kind, item)
                        job.outputs.append(record)
                        job.publish("output", record)
        elif kind == "execution_success":
            self._finish(job, "succeeded")
        elif kind == "execution_interrupted":
            self._finish(job, "canceled")
        elif kind == "execution_error":
            traceback = data.get("traceback")
            job.error = {
                "code": "node_execution_error",
                "message": str(data.get("exception_message", "")),
                "node_id": data.get("node_id"),
                "class_type": data.get("node_type"),
                "traceback": "".join(traceback) if isinstance(traceback, list) else None,
            }
            self._finish(job, "failed")

    def _progress(self, job: _Job, node: str, step: int | None, steps: int | None) -> None:
        done = len(job.finished_nodes)
        fraction = done / job.nodes_total if job.nodes_total else 0.0
        if step is not None and steps:
            fraction += (step / steps) / max(job.nodes_total, 1)
        class_type = job.classes.get(node)
        job.progress = {
            "value": min(fraction, 1.0),
            "nodes_done": done,
            "nodes_total": job.nodes_total,
            "current_node": node,
            "current_node_class": class_type,
            "step": step,
            "steps": steps,
            "message": f"{class_type} {step}/{steps}" if step is not None else class_type,
        }
        job.publish("progress", job.progress)

    def _finish(self, job: _Job, status: str) -> None:
        job.status = status
        job.completed_at = _now()
        if status == "succeeded" and job.progress is not None:
            job.progress = {**job.progress, "value": 1.0, "nodes_done": job.nodes_total}
        job.publish("status", job.status_event())
