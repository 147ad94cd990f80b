"""The Comfy API v2 behind the same :class:`~comfy_async.job.Job`: poll-first, SSE for live events.

:class:`ApiV2Session` is what a ``ComfyClient.v2(...)`` session runs jobs with instead of the
WebSocket session. Per job it keeps one follower task:

* it opens the job's SSE stream (the ``events`` link of the job) and turns each ``status``,
  ``progress``, ``output`` and ``preview`` event into the library's events;
* when the stream ends, is cut, or stays silent for ``ReconcilePolicy.silent_after``, it reads
  the job (the ``self`` link, the truth) and feeds what the stream missed, then reopens the
  stream (its snapshot on connect re-syncs), with backoff;
* a server without streams (``501``) is polled instead; one refusing another stream for now
  (``429``) is polled until the stream is retried.

What the stream or a read says becomes events in one place (``v2_events``), requests go through
``v2_http``; the job then settles exactly as with the WebSocket backend.

A pool's job is run here with :meth:`ApiV2Session.adopt`: the job keeps its own id (the pool's
prompt id, sent as the ``Idempotency-Key``), the server's job id is kept beside it, and the pool
decides what to do with each attempt's outcome (:meth:`~ApiV2Session.release`,
:meth:`~ApiV2Session.ended` hand the job back or let it go).

Links are followed, never built: only entry points (``/api/v2/jobs``, ``/api/v2/assets…``) and
a job re-attached by id (``/api/v2/jobs/{id}``) are addressed from the base URL.
Requests carry ``Authorization: Bearer``; reads are retried on transport errors, 429 and 5xx
(``Retry-After`` honoured). A submission carries an ``Idempotency-Key``: retried with the same key
when the server refused it before creating anything (429/503), never replayed otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Final

import aiohttp
import msgspec
from yarl import URL

from comfy_async._live.keyed_lock import KeyedLocks
from comfy_async._live.session import drain_jobs, fail_jobs
from comfy_async._live.sse import sse_events
from comfy_async._live.tasks import TaskSet
from comfy_async._live.v2_events import V2Translator, snapshot_of
from comfy_async._live.v2_http import V2Http, status_error
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
    PromptValidationError,
    RequestTimeoutError,
)
from comfy_async.job import Job, JobSnapshot
from comfy_async.models.api_v2 import (
    V2Asset,
    V2Job,
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

_MAX_REDIRECTS: Final = 5
_FILE_LINKS: Final = 10_000
"""How many settled files' content links a session keeps for saving results."""


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
        self.http = V2Http(session, base_url, token, options)
        self.options = options
        self.tasks = TaskSet("comfy_async v2")
        self.server = str(base_url).rstrip("/")
        self._jobs: dict[str, Job] = {}
        self._links: dict[str, V2Job] = {}
        self._translators: dict[str, V2Translator] = {}
        self._keys: dict[str, str] = {}
        self._followers: dict[str, asyncio.Task[None]] = {}
        # Content links of settled jobs' files, for ``JobResult.save`` (bounded: oldest dropped).
        self._file_links: OrderedDict[tuple[str, str], str] = OrderedDict()
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
        if prompt_id in self._jobs:
            self._links[prompt_id] = v2
        return snapshot_of(v2)

    async def cancel(self, prompt_id: str, *, running: bool) -> bool:
        """Ask the server to cancel the job (its ``cancel`` link); idempotent."""
        known = self._links.get(prompt_id)
        url = (
            self.http.link(known.urls.cancel)
            if known is not None and known.urls.cancel
            else self._entry(f"jobs/{prompt_id}/cancel")
        )
        try:
            raw = await self.http.send("POST", url)
        except NotFoundError:
            return False
        v2 = decode_v2_job(raw)
        return v2.status in ("canceling", "canceled")

    async def cancel_job(self, v2: V2Job) -> bool:
        """Follow a job object's ``cancel`` link; whether the job ends cancelled.

        ``False`` for a job that had ended otherwise (cancelling it is a no-op) or is unknown.
        """
        url = (
            self.http.link(v2.urls.cancel)
            if v2.urls.cancel
            else self._entry(f"jobs/{v2.id}/cancel")
        )
        try:
            raw = await self.http.send("POST", url)
        except NotFoundError:
            return False
        return decode_v2_job(raw).status in ("canceling", "canceled")

    async def save(
        self, files: Sequence[OutputFile], folder: str | Path, *, overwrite: bool
    ) -> list[Path]:
        """Download each file by following its content link into ``folder``."""
        root = Path(folder)
        links = self._links_of_files()
        written: list[Path] = []
        for file in files:
            link = links.get((file.node_id, file.filename))
            if link is None:
                raise NotFoundError(
                    404,
                    message=(
                        f"no link to {file.filename!r}: attach the job by id again to save it"
                    ),
                )
            target = destination(root, file.filename, file.subfolder)
            written.append(await self._download(self.http.link(link), target, root, overwrite))
        return written

    def _links_of_files(self) -> dict[tuple[str, str], str]:
        links = dict(self._file_links)
        for v2 in self._links.values():
            for output in v2.outputs:
                links[(output.node_id, output.name)] = output.url
        return links

    async def _download(self, url: URL, target: Path, root: Path, overwrite: bool) -> Path:
        """Stream one file; redirects (to signed URLs) are followed here, the token kept home."""
        for _ in range(_MAX_REDIRECTS + 1):
            home = url.origin() == self.http.base_url.origin()
            headers = self.http.headers if home else {}
            async with self.http.session.get(
                url, headers=headers, allow_redirects=False
            ) as response:
                location = response.headers.get("Location")
                if response.status in (301, 302, 303, 307, 308) and location:
                    url = url.join(URL(location))
                    continue
                if response.status >= 400:
                    raise status_error(response.status, "GET", url, await response.read())
                return await write_atomically(
                    response.content.iter_chunked(64 * 1024), target, root=root, overwrite=overwrite
                )
        raise ConnectionLostError(f"more than {_MAX_REDIRECTS} redirects", method="GET", url=url)

    # ------------------------------------------------------------------ jobs

    @property
    def jobs(self) -> Mapping[str, Job]:
        """The jobs in flight, by id."""
        return self._jobs

    def _self_url(self, job_id: str) -> URL:
        known = self._links.get(job_id)
        if known is not None and known.urls.self_:
            return self.http.link(known.urls.self_)
        return self._entry(f"jobs/{job_id}")

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
        self._translators[job_id] = V2Translator(job)
        return job

    def _settled(self, job: Job) -> None:
        self._jobs.pop(job.prompt_id, None)
        self._translators.pop(job.prompt_id, None)
        follower = self._followers.pop(job.prompt_id, None)
        if follower is not None and follower is not asyncio.current_task():
            follower.cancel()  # a timed-out or closed job stops being followed at once
        v2 = self._links.pop(job.prompt_id, None)
        if v2 is not None:
            self._remember_files(v2)

    def _remember_files(self, v2: V2Job) -> None:
        for output in v2.outputs:
            self._file_links[(output.node_id, output.name)] = output.url
            self._file_links.move_to_end((output.node_id, output.name))
        while len(self._file_links) > _FILE_LINKS:
            self._file_links.popitem(last=False)

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
        url = self._entry("jobs")
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

    async def adopt(
        self,
        job: Job,
        prompt: Mapping[str, object],
        *,
        extra_data: Mapping[str, object] | None = None,
    ) -> V2Job:
        """One attempt to run a job made elsewhere (a pool's) here, keyed by its own id.

        The job's prompt id is the ``Idempotency-Key``, so presenting it again after an
        answer was lost can never create a second job. Nothing is retried here: the caller
        reads each attempt's error (a refusal, a key already claimed, a connection that never
        opened, an answer lost). On success the job is followed as if submitted here; its
        maker owns its outcome (:meth:`ended`, :meth:`release`).
        """
        if self._closed:
            raise ClientClosedError("the session is closed")
        key = job.prompt_id
        body: dict[str, object] = {"workflow": prompt}
        if extra_data:
            body["extra_data"] = dict(extra_data)
        try:
            raw = await self.http.send(
                "POST",
                self._entry("jobs"),
                body=body,
                headers={"Idempotency-Key": key},
                retry=False,
            )
        except BadRequestError as e:
            raise self._refusal(e, key) from None
        try:
            v2 = decode_v2_job(raw)
        except msgspec.DecodeError as e:
            raise DecodeError(f"the answer to a submission is not a v2 job: {e}") from None
        if job.done():
            return v2  # ended (cancelled, timed out) while the POST was in flight: its maker acts
        self._links[key] = v2
        self._jobs[key] = job
        self._translators[key] = V2Translator(job)
        job._accepted(0, {})
        self._follow(job, v2)
        return v2

    def ended(self, job: Job) -> None:
        """An adopted job ended: stop following it (keeping its files' links for saving)."""
        if self._jobs.get(job.prompt_id) is job:
            self._settled(job)

    def release(self, job: Job) -> None:
        """Stop following an adopted job without ending it (its maker moves it elsewhere)."""
        if self._jobs.get(job.prompt_id) is not job:
            return
        self._jobs.pop(job.prompt_id, None)
        translator = self._translators.pop(job.prompt_id, None)
        if translator is not None:
            translator.close()  # a read or stream under way feeds it nothing more
        self._links.pop(job.prompt_id, None)
        follower = self._followers.pop(job.prompt_id, None)
        if follower is not None and follower is not asyncio.current_task():
            follower.cancel()

    def _entry(self, path: str) -> URL:
        """An entry point of the API (``/api/v2/{path}`` under the base URL's own prefix)."""
        prefix = self.http.base_url.path.rstrip("/")
        return self.http.base_url.origin().join(URL(f"{prefix}/api/v2/{path}"))

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
        task = self.tasks.spawn(self._follow_job(job, v2), name=f"follow {job.prompt_id}")
        self._followers[job.prompt_id] = task

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
                except AuthenticationError as e:
                    if self._translators.get(job.prompt_id) is translator:  # not released
                        job._fail(e)  # the credentials were revoked: no read can succeed either
                    return
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
                if self._translators.get(job.prompt_id) is translator:  # not released
                    job._reconcile(None, source="v2 job", lost_after=1)
                return
            except AuthenticationError as e:
                if self._translators.get(job.prompt_id) is translator:
                    job._fail(e)
                return
            except ComfyError:
                await asyncio.sleep(next(backoff))
                continue
            if self._translators.get(job.prompt_id) is not translator:
                return  # released (its maker moved it) while the read was under way
            self._links[job.prompt_id] = v2
            translator.snapshot(v2)
            if not translator.ended:
                pause = self.options.reconcile.follow_every if not stream else next(backoff)
                await asyncio.sleep(pause)

    async def _stream(self, job: Job, translator: V2Translator, url: URL) -> None:
        headers = {**self.http.headers, "Accept": "text/event-stream"}
        # A stream silent for this long may be a dead link: read the job (the truth), then reopen.
        silent = self.options.reconcile.silent_after
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self.options.timeouts.connect, sock_read=silent
        )
        try:
            async with self.http.session.get(url, headers=headers, timeout=timeout) as response:
                if response.status >= 400:
                    raise status_error(response.status, "GET", url, await response.read())
                translator.stream_opened()
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
    def _event(translator: V2Translator, name: str, data: bytes) -> None:
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
            asset: V2Asset | None = None
            try:
                await self.http.send("HEAD", self._entry(f"assets/by-hash/{digest}"))
            except NotFoundError:
                pass
            else:
                with contextlib.suppress(NotFoundError):  # gone meanwhile: upload the bytes
                    raw = await self.http.send(
                        "POST",
                        self._entry("assets/from-hash"),
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
        url = self._entry("assets")
        form = aiohttp.FormData()
        form.add_field("file", data, filename=name, content_type=kind)
        form.add_field("content_type", kind)
        form.add_field("file_path", name)
        form.add_field("expected_hash", digest)
        for tag in tags:
            form.add_field("tags", tag)
        headers = {**self.http.headers, "Idempotency-Key": str(uuid.uuid4())}
        async with self.http.session.post(url, data=form, headers=headers) as response:
            raw = await response.read()
            if response.status >= 400:
                raise status_error(response.status, "POST", url, raw)
        return decode_v2_asset(raw)

    # ------------------------------------------------------------------ shutdown

    async def aclose(self, *, drain: bool = False, timeout: float | None = None) -> None:
        """Close; with ``drain`` first wait (up to ``timeout``) for the jobs to end.

        Jobs still in flight end with :class:`~comfy_async.errors.ClientClosedError` (they go
        on running on the server: re-attach them by id).
        """
        if self._closed:
            return
        if drain:
            await drain_jobs(list(self._jobs.values()), timeout)
        self._closed = True
        fail_jobs(self._jobs.values(), "the session was closed before the job ended")
        await self.tasks.aclose(grace=self.options.timeouts.connect or 10.0)
        self._jobs.clear()
