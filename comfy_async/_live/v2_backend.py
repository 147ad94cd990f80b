"""The Comfy API v2 behind the same :class:`~comfy_async.job.Job`: poll-first, SSE for live events.

:class:`ApiV2Session` is what a ``ComfyClient.v2(...)`` session runs jobs with instead of the
WebSocket session. Per job it keeps one follower task:

* it opens the job's SSE stream (the ``events`` link of the job) and turns each ``status``,
  ``progress``, ``output`` and ``preview`` event into the library's events;
* when the stream ends or is cut, it reads the job (the ``self`` link, the truth) and feeds what
  the stream missed, then reopens the stream (its snapshot on connect re-syncs), with backoff;
* a server without streams (``501``), or one refusing more (``429``), is polled instead.

:class:`_Translator` is the one place a job's v2 state becomes events, whichever path it came
by: ``ExecutionStart`` when it first runs, ``Executing`` when the node changes, ``Progress``
(node, step/steps) when the step does, ``Executed`` per node as outputs are committed (each file
keeps the link to its bytes), ``PreviewImage``, and exactly one terminal event —
``ExecutionSuccess``, ``ExecutionFailed`` or ``ExecutionInterrupted`` — after which the
:class:`Job` settles as with the WebSocket backend.

Links are followed, never built, except the one a re-attach by id needs (``/api/v2/jobs/{id}``).
Requests carry ``Authorization: Bearer``; reads are retried on transport errors, 429 and 5xx
(``Retry-After`` honoured). A submission carries an ``Idempotency-Key``: retried with the same key
when the server refused it before creating anything (429/503), never replayed otherwise.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import mimetypes
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import msgspec
import orjson
from yarl import URL

from comfy_async._live.keyed_lock import KeyedLocks
from comfy_async._live.sse import sse_events
from comfy_async._live.tasks import TaskSet
from comfy_async._transport.rest.disk import destination, write_atomically
from comfy_async.errors import (
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ComfyError,
    ConfigurationError,
    ConflictError,
    ConnectError,
    ConnectionLostError,
    DecodeError,
    HTTPStatusError,
    JobLost,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    PromptValidationError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    ServiceUnavailableError,
)
from comfy_async.events import (
    Executed,
    Executing,
    ExecutionFailed,
    ExecutionInterrupted,
    ExecutionStart,
    ExecutionSuccess,
    PreviewImage,
    Progress,
)
from comfy_async.job import Job, JobSnapshot
from comfy_async.models.api_v2 import (
    V2Asset,
    V2Job,
    V2JobError,
    V2Output,
    V2PreviewEvent,
    V2Progress,
    V2StatusEvent,
    decode_v2_asset,
    decode_v2_error,
    decode_v2_event,
    decode_v2_job,
)

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping, Sequence

    from comfy_async.config import ClientOptions
    from comfy_async.models.files import OutputFile

__all__ = ["ApiV2Session"]

_KINDS: Final = {"image": "images", "video": "video", "audio": "audio", "text": "text"}
_PHASES: Final = {
    "queued": "pending",
    "running": "running",
    "canceling": "running",
    "succeeded": "success",
    "failed": "error",
    "canceled": "cancelled",
    "expired": "lost",
}
_STATUS_ERRORS: Final[dict[int, type[HTTPStatusError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BadRequestError,
    503: ServiceUnavailableError,
}
_RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})


def _status_error(
    status: int, method: str, url: URL, body: bytes, retry_after: str = ""
) -> HTTPStatusError:
    envelope = decode_v2_error(body)
    message = None
    if envelope is not None:
        message = f"{envelope.error.code}: {envelope.error.message}"
    text = body.decode("utf-8", "replace")
    if status == 429:
        after = float(retry_after) if retry_after.isdigit() else None
        return RateLimitedError(
            status, retry_after=after, method=method, url=url, body=text, message=message
        )
    cls = _STATUS_ERRORS.get(status, ServerError if status >= 500 else HTTPStatusError)
    return cls(status, method=method, url=url, body=text, message=message)


class _Http:
    """Bearer-authenticated requests to one v2 origin, links resolved against it."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: URL, token: str, options: ClientOptions
    ) -> None:
        self.session = session
        self.base_url = base_url
        self.options = options
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    def link(self, reference: str, origin: URL | None = None) -> URL:
        """Resolve a link: absolute as is, host-relative against the origin that gave it."""
        url = URL(reference)
        if url.is_absolute():
            return url
        return (origin or self.base_url).origin().join(url)

    async def send(
        self,
        method: str,
        url: URL,
        *,
        body: object = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = True,
        retry_statuses: frozenset[int] = _RETRY_STATUSES,
    ) -> bytes:
        """Send and return the body of a 2xx answer; retry what may succeed when repeated."""
        policy = self.options.retry
        delays = policy.backoff.delays()
        attempt = 0
        while True:
            try:
                return await self._once(method, url, body, headers)
            except (HTTPStatusError, ConnectError, ConnectionLostError, RequestTimeoutError) as e:
                status = e.status if isinstance(e, HTTPStatusError) else None
                retryable = status is None or status in retry_statuses
                if not retry or not retryable or attempt >= policy.max_retries:
                    raise
                delay = next(delays)
                after = e.retry_after if isinstance(e, RateLimitedError) else None
                if after is not None and after > delay:
                    delay = min(after, policy.max_retry_after)
                attempt += 1
                await asyncio.sleep(delay)

    async def _once(
        self, method: str, url: URL, body: object, headers: Mapping[str, str] | None
    ) -> bytes:
        sent = {**self._headers, **(headers or {})}
        data = None
        if body is not None:
            data = orjson.dumps(body)
            sent["Content-Type"] = "application/json"
        try:
            async with self.session.request(method, url, data=data, headers=sent) as response:
                raw = await response.read()
                if response.status >= 400:
                    after = response.headers.get("Retry-After", "")
                    raise _status_error(response.status, method, url, raw, after)
                return raw
        except aiohttp.ClientConnectorError as e:
            raise ConnectError(f"cannot connect: {e.os_error}", method=method, url=url) from None
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as e:
            raise ConnectionLostError(f"connection lost: {e}", method=method, url=url) from None
        except aiohttp.ClientError as e:
            raise ConnectionLostError(f"request failed: {e}", method=method, url=url) from None
        except TimeoutError:
            raise RequestTimeoutError("timed out", method=method, url=url) from None

    async def job(self, url: URL) -> V2Job:
        """Read a job object (the truth)."""
        raw = await self.send("GET", url)
        try:
            return decode_v2_job(raw)
        except msgspec.DecodeError as e:
            raise DecodeError(f"the job at {url} is not a v2 job: {e}") from None


class _Translator:
    """Turns one job's v2 state (polled or streamed) into the library's events, once each."""

    __slots__ = ("_job", "_outputs", "_progress", "_seen", "_started", "_terminal")

    def __init__(self, job: Job) -> None:
        self._job = job
        self._started = False
        self._terminal = False
        self._progress: V2Progress | None = None
        self._seen: set[str] = set()
        self._outputs: dict[str, dict[str, list[dict[str, Any]]]] = {}

    @property
    def ended(self) -> bool:
        """Whether the terminal event was fed."""
        return self._terminal

    def snapshot(self, v2: V2Job) -> None:
        """Feed what a job object says that was not fed yet."""
        self.status(v2.status, (), None, partial=True)
        if v2.progress is not None:
            self.progress(v2.progress)
        for output in v2.outputs:
            self.output(output)
        self.status(v2.status, v2.outputs, v2.error)

    def status(
        self,
        status: str,
        outputs: Sequence[V2Output] | None,
        error: V2JobError | None,
        *,
        partial: bool = False,
    ) -> None:
        """A status (from a ``status`` event or a job object)."""
        if self._terminal:
            return
        prompt_id = self._job.prompt_id
        if status in ("running", "canceling", "succeeded", "failed"):
            self._start()
        if partial:
            return
        for output in outputs or ():
            self.output(output)
        now = time.time() * 1000
        if status == "succeeded":
            self._end(ExecutionSuccess(prompt_id=prompt_id, timestamp=now))
        elif status == "failed":
            error = error or V2JobError(code="unknown", message="the job failed")
            self._end(
                ExecutionFailed(
                    prompt_id=prompt_id,
                    node_id=error.node_id,
                    node_type=error.class_type,
                    exception_type=error.code,
                    exception_message=error.message,
                    traceback=[error.traceback] if error.traceback else [],
                    timestamp=now,
                )
            )
        elif status == "canceled":
            node = self._progress.current_node if self._progress is not None else None
            self._end(ExecutionInterrupted(prompt_id=prompt_id, node_id=node, timestamp=now))
        elif status == "expired":
            self._terminal = True
            self._job._reconcile(JobSnapshot("lost"), source="v2 job")

    def progress(self, snapshot: V2Progress) -> None:
        """A progress snapshot: ``Executing`` on a new node, ``Progress`` on a new step."""
        if self._terminal or snapshot == self._progress:
            return
        previous, self._progress = self._progress, snapshot
        node = snapshot.current_node
        if node is None:
            return
        self._start()
        prompt_id = self._job.prompt_id
        if previous is None or previous.current_node != node:
            self._job._feed(Executing(node=node, prompt_id=prompt_id))
        elif previous.step == snapshot.step:
            return
        if snapshot.step is not None and snapshot.steps:
            self._job._feed(
                Progress(value=snapshot.step, max=snapshot.steps, prompt_id=prompt_id, node=node)
            )

    def output(self, output: V2Output) -> None:
        """A committed output: an ``Executed`` event with every file of its node so far."""
        if self._terminal or output.id in self._seen:
            return
        self._seen.add(output.id)
        self._start()
        node = output.node_id
        kind = _KINDS.get(output.type, "files")
        ui = self._outputs.setdefault(node, {})
        item = {
            "filename": output.name,
            "subfolder": "",
            "type": "output",
            "url": output.url,
            "asset_id": output.id,
            "content_type": output.content_type,
        }
        ui.setdefault(kind, []).append(item)
        copy = {key: list(items) for key, items in ui.items()}
        self._job._feed(Executed(prompt_id=self._job.prompt_id, node=node, output=copy))

    def preview(self, event: V2PreviewEvent) -> None:
        """A live preview image."""
        if self._terminal:
            return
        try:
            image = base64.b64decode(event.data_base64, validate=True)
        except ValueError:
            return  # a damaged preview is skipped, never an error
        self._job._feed(
            PreviewImage(
                image=memoryview(image),
                mime=event.content_type,
                prompt_id=self._job.prompt_id,
                node_id=event.node_id or None,
            )
        )

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self._job._feed(
                ExecutionStart(prompt_id=self._job.prompt_id, timestamp=time.time() * 1000)
            )

    def _end(self, event: ExecutionSuccess | ExecutionFailed | ExecutionInterrupted) -> None:
        self._terminal = True
        self._job._feed(event)


def _blake3_of(source: bytes | Path) -> str:
    """``blake3:<hex>`` of bytes or of a file read in chunks (run off the event loop)."""
    try:
        import blake3  # noqa: PLC0415 - optional: the v2 extra
    except ImportError:
        raise ConfigurationError(
            "uploading assets needs blake3: pip install 'comfy-async[v2]'"
        ) from None
    hasher = blake3.blake3()
    if isinstance(source, bytes):
        hasher.update(source)
    else:
        with source.open("rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                hasher.update(chunk)
    return "blake3:" + hasher.hexdigest()


def _snapshot_of(v2: V2Job) -> JobSnapshot:
    outputs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for output in v2.outputs:
        ui = outputs.setdefault(output.node_id, {})
        items = ui.setdefault(_KINDS.get(output.type, "files"), [])
        if all(item["asset_id"] != output.id for item in items):
            items.append(
                {
                    "filename": output.name,
                    "subfolder": "",
                    "type": "output",
                    "url": output.url,
                    "asset_id": output.id,
                    "content_type": output.content_type,
                }
            )
    error = None
    if v2.error is not None:
        error = ExecutionFailed(
            prompt_id=v2.id,
            node_id=v2.error.node_id,
            node_type=v2.error.class_type,
            exception_type=v2.error.code,
            exception_message=v2.error.message,
            traceback=[v2.error.traceback] if v2.error.traceback else [],
        )
    return JobSnapshot(_PHASES.get(v2.status, "running"), outputs=outputs, error=error)


class ApiV2Session:
    """Jobs on a Comfy API v2 server: submit, attach, follow, cancel, save (see the module)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: URL,
        *,
        token: str,
        options: ClientOptions,
    ) -> None:
        self.http = _Http(session, base_url, token, options)
        self.options = options
        self.tasks = TaskSet("comfy_async v2")
        self.server = str(base_url).rstrip("/")
        self._jobs: dict[str, Job] = {}
        self._links: dict[str, V2Job] = {}
        self._translators: dict[str, _Translator] = {}
        self._keys: dict[str, str] = {}
        self._assets: dict[str, V2Asset] = {}
        self._hashing = KeyedLocks()
        self._closed = False

    # ------------------------------------------------------------------ JobBackend

    @property
    def finish_marker(self) -> bool:
        """The v2 API has no finish marker: the terminal status is the end."""
        return False

    async def lookup(self, prompt_id: str) -> JobSnapshot | None:
        """Read the job (its ``self`` link); ``None`` when the server does not know it."""
        try:
            v2 = await self.http.job(self._self_url(prompt_id))
        except NotFoundError:
            return None
        self._links[prompt_id] = v2
        return _snapshot_of(v2)

    async def cancel(self, prompt_id: str, *, running: bool) -> bool:
        """Ask the server to cancel the job (its ``cancel`` link); idempotent."""
        known = self._links.get(prompt_id)
        url = (
            self.http.link(known.urls.cancel)
            if known is not None and known.urls.cancel
            else self.http.base_url.origin().join(URL(f"/api/v2/jobs/{prompt_id}/cancel"))
        )
        try:
            raw = await self.http.send("POST", url)
        except NotFoundError:
            return False
        v2 = decode_v2_job(raw)
        return v2.status in ("canceling", "canceled")

    async def save(
        self, files: Sequence[OutputFile], folder: str | Path, *, overwrite: bool
    ) -> list[Path]:
        """Download each file by following its content link into ``folder``."""
        root = Path(folder)
        links = self._file_links()
        written: list[Path] = []
        for file in files:
            link = links.get((file.node_id, file.filename))
            if link is None:
                raise NotFoundError(404, message=f"no link to {file.filename!r} in the job")
            target = destination(root, file.filename, file.subfolder)
            written.append(await self._download(self.http.link(link), target, root, overwrite))
        return written

    def _file_links(self) -> dict[tuple[str, str], str]:
        links: dict[tuple[str, str], str] = {}
        for v2 in self._links.values():
            for output in v2.outputs:
                links[(output.node_id, output.name)] = output.url
        return links

    async def _download(self, url: URL, target: Path, root: Path, overwrite: bool) -> Path:
        headers = {} if url.origin() != self.http.base_url.origin() else self.http._headers
        async with self.http.session.get(url, headers=headers) as response:
            if response.status >= 400:
                raise _status_error(response.status, "GET", url, await response.read())
            return await write_atomically(
                response.content.iter_chunked(64 * 1024), target, root=root, overwrite=overwrite
            )

    # ------------------------------------------------------------------ jobs

    @property
    def jobs(self) -> Mapping[str, Job]:
        """The jobs in flight, by id."""
        return self._jobs

    def _self_url(self, job_id: str) -> URL:
        known = self._links.get(job_id)
        if known is not None and known.urls.self_:
            return self.http.link(known.urls.self_)
        return self.http.base_url.origin().join(URL(f"/api/v2/jobs/{job_id}"))

    def _new_job(self, job_id: str, *, detach: bool, node_count: int | None) -> Job:
        if self._closed:
            raise ClientClosedError("the session is closed")
        job = Job(
            job_id,
            backend=self,
            tasks=self.tasks,
            limits=self.options.limits,
            on_settled=self._settled,
            node_count=node_count,
            detach=detach,
            server=self.server,
        )
        self._jobs[job_id] = job
        self._translators[job_id] = _Translator(job)
        return job

    def _settled(self, job: Job) -> None:
        self._jobs.pop(job.prompt_id, None)
        self._translators.pop(job.prompt_id, None)

    async def submit(
        self,
        prompt: Mapping[str, object],
        *,
        idempotency_key: str | None = None,
        extra_data: Mapping[str, object] | None = None,
        timeout: float | None = None,
        detach: bool = False,
    ) -> Job:
        """POST the workflow (with an ``Idempotency-Key``), then follow the job it created.

        A key this session already used returns that job again. The server refusing a key used
        elsewhere (``idempotency_key_reuse``) raises :class:`~comfy_async.errors.ConflictError`:
        the job may exist, and the contract offers no way to find it by key.
        """
        if self._closed:
            raise ClientClosedError("the session is closed")
        key = idempotency_key or str(uuid.uuid4())
        known = self._keys.get(key)
        if known is not None and known in self._jobs:
            return self._jobs[known]
        body: dict[str, object] = {"workflow": prompt}
        if extra_data:
            body["extra_data"] = dict(extra_data)
        url = self.http.base_url.origin().join(URL(self._jobs_path()))
        try:
            raw = await self.http.send(
                "POST",
                url,
                body=body,
                headers={"Idempotency-Key": key},
                retry_statuses=frozenset({429, 503}),
            )
        except BadRequestError as e:
            raise self._refusal(e, key) from None
        v2 = decode_v2_job(raw)
        self._links[v2.id] = v2
        self._keys[key] = v2.id
        job = self._new_job(v2.id, detach=detach, node_count=len(prompt))
        job._accepted(0, {})
        self._follow(job, v2)
        if timeout is not None:
            job._set_deadline(timeout)
        return job

    def _jobs_path(self) -> str:
        path = self.http.base_url.path.rstrip("/")
        return f"{path}/api/v2/jobs"

    def _refusal(self, error: BadRequestError, key: str) -> ComfyError:
        envelope = decode_v2_error(error.body.encode())
        code = envelope.error.code if envelope is not None else ""
        if code == "idempotency_key_reuse":
            return ConflictError(
                409,
                message=(
                    f"the Idempotency-Key {key} was used before: the job may exist already "
                    "(re-attach it by id rather than resubmitting)"
                ),
            )
        if code in ("invalid_workflow", "workflow_format_ui", "missing_asset"):
            from comfy_async.models.prompts import NodeError, PromptErrorInfo  # noqa: PLC0415

            details = envelope.error.details if envelope is not None else None
            raw_nodes = (details or {}).get("node_errors", {})
            node_errors = msgspec.convert(
                raw_nodes if isinstance(raw_nodes, dict) else {}, dict[str, NodeError]
            )
            message = envelope.error.message if envelope is not None else str(error)
            info = PromptErrorInfo(type=code, message=message)
            return PromptValidationError(
                info, node_errors, status=422, url=error.url, body=error.body
            )
        return error

    async def attach(self, job_id: str, *, timeout: float | None = None) -> Job:
        """Follow a job submitted earlier (by id); it is detached, like a native attach."""
        if job_id in self._jobs:
            return self._jobs[job_id]
        try:
            v2 = await self.http.job(self._self_url(job_id))
        except NotFoundError:
            raise JobLost(job_id, "the server does not know this job") from None
        self._links[job_id] = v2
        job = self._new_job(job_id, detach=True, node_count=None)
        job._accepted(0, {})
        self._follow(job, v2)
        if timeout is not None:
            job._set_deadline(timeout)
        return job

    def _follow(self, job: Job, v2: V2Job) -> None:
        self.tasks.spawn(self._follow_job(job, v2), name=f"follow {job.prompt_id}")

    async def _follow_job(self, job: Job, v2: V2Job) -> None:
        """Stream the job's events, falling back to reading it, until its outcome is settled."""
        translator = self._translators.get(job.prompt_id)
        if translator is None:
            return
        translator.snapshot(v2)
        backoff = self.options.reconnect.backoff.delays()
        stream = True
        while not job.done() and not translator.ended:
            if stream:
                try:
                    await self._stream(job, translator, self.http.link(v2.urls.events))
                    backoff = self.options.reconnect.backoff.delays()
                except HTTPStatusError as e:
                    if e.status in (501, 405, 404):
                        stream = False  # no live streams here: poll
                except (ConnectionLostError, ConnectError, RequestTimeoutError, DecodeError):
                    pass
            if job.done() or translator.ended:
                return
            try:
                v2 = await self.http.job(self._self_url(job.prompt_id))
            except NotFoundError:
                job._reconcile(None, source="v2 job", lost_after=1)
                return
            except ComfyError:
                await asyncio.sleep(next(backoff))
                continue
            self._links[job.prompt_id] = v2
            translator.snapshot(v2)
            if not translator.ended:
                pause = self.options.reconcile.follow_every if not stream else next(backoff)
                await asyncio.sleep(pause)

    async def _stream(self, job: Job, translator: _Translator, url: URL) -> None:
        headers = {**self.http._headers, "Accept": "text/event-stream"}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=self.options.timeouts.read)
        try:
            async with self.http.session.get(url, headers=headers, timeout=timeout) as response:
                if response.status >= 400:
                    raise _status_error(response.status, "GET", url, await response.read())
                async for name, data in sse_events(response.content.iter_any()):
                    self._event(translator, name, data)
                    if translator.ended:
                        return
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as e:
            raise ConnectionLostError(f"event stream cut: {e}", method="GET", url=url) from None
        except aiohttp.ClientConnectorError as e:
            raise ConnectError(f"cannot connect: {e.os_error}", method="GET", url=url) from None
        except aiohttp.ClientError as e:
            raise ConnectionLostError(f"event stream failed: {e}", method="GET", url=url) from None
        except TimeoutError:
            raise RequestTimeoutError("event stream silent", method="GET", url=url) from None

    @staticmethod
    def _event(translator: _Translator, name: str, data: bytes) -> None:
        try:
            event = decode_v2_event(name, data)
        except msgspec.DecodeError:
            return  # a damaged frame is a hint lost; the job object stays the truth
        if isinstance(event, V2StatusEvent):
            translator.status(event.status, event.outputs, event.error)
        elif isinstance(event, V2Progress):
            translator.progress(event)
        elif isinstance(event, V2Output):
            translator.output(event)
        elif isinstance(event, V2PreviewEvent):
            translator.preview(event)

    # ------------------------------------------------------------------ assets

    async def upload(
        self,
        source: bytes | str | os.PathLike[str],
        *,
        file_path: str | None,
        content_type: str | None,
        tags: Sequence[str],
    ) -> V2Asset:
        """Upload bytes or a file as an asset, once per content hash (see ``ComfyClient``)."""
        if self._closed:
            raise ClientClosedError("the session is closed")
        path: Path | None = None
        data: bytes | None = None
        subject: bytes | Path
        if isinstance(source, bytes | bytearray):
            data = subject = bytes(source)
            name = file_path
        else:
            path = subject = Path(source)
            name = file_path or path.name
        if not name:
            raise ConfigurationError("file_path is needed to upload bytes")
        kind = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        digest = await asyncio.to_thread(_blake3_of, subject)
        async with self._hashing.hold(digest):
            known = self._assets.get(digest)
            if known is not None:
                return known
            origin = self.http.base_url.origin()
            asset: V2Asset | None = None
            try:
                await self.http.send("HEAD", origin.join(URL(f"/api/v2/assets/by-hash/{digest}")))
            except NotFoundError:
                pass
            else:
                with contextlib.suppress(NotFoundError):  # gone meanwhile: upload the bytes
                    raw = await self.http.send(
                        "POST",
                        origin.join(URL("/api/v2/assets/from-hash")),
                        body={"hash": digest, "file_path": name, "tags": list(tags)},
                    )
                    asset = decode_v2_asset(raw)
            if asset is None:
                if path is not None:
                    data = await asyncio.to_thread(path.read_bytes)
                assert data is not None
                asset = await self._upload_bytes(data, name, kind, digest, tags)
            self._assets[digest] = asset
            return asset

    async def _upload_bytes(
        self, data: bytes, name: str, kind: str, digest: str, tags: Sequence[str]
    ) -> V2Asset:
        url = self.http.base_url.origin().join(URL("/api/v2/assets"))
        form = aiohttp.FormData()
        form.add_field("file", data, filename=name, content_type=kind)
        form.add_field("content_type", kind)
        form.add_field("file_path", name)
        form.add_field("expected_hash", digest)
        for tag in tags:
            form.add_field("tags", tag)
        headers = {**self.http._headers, "Idempotency-Key": str(uuid.uuid4())}
        async with self.http.session.post(url, data=form, headers=headers) as response:
            raw = await response.read()
            if response.status >= 400:
                raise _status_error(response.status, "POST", url, raw)
        return decode_v2_asset(raw)

    # ------------------------------------------------------------------ shutdown

    async def aclose(self, *, drain: bool = False, timeout: float | None = None) -> None:
        """Close; with ``drain`` first wait (up to ``timeout``) for the jobs to end.

        Jobs still in flight end with :class:`~comfy_async.errors.ClientClosedError` (they go
        on running on the server: re-attach them by id).
        """
        if self._closed:
            return
        if drain and self._jobs:
            waiters = [asyncio.ensure_future(job.wait()) for job in list(self._jobs.values())]
            await asyncio.wait(waiters, timeout=timeout)
            for waiter in waiters:
                waiter.cancel()
        self._closed = True
        for job in list(self._jobs.values()):
            job.detach()
            job._fail(ClientClosedError("the session was closed before the job ended"))
        await self.tasks.aclose(grace=self.options.timeouts.connect or 10.0)
        self._jobs.clear()
