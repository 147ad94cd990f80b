"""``ComfyClient``: the session object users hold, for a local ComfyUI or for Comfy Cloud.

A session owns one :class:`~comfy_async._transport.http.HttpClient` (base URL, route table,
credentials, the aiohttp session) and exposes the REST surface as namespaces: ``prompts``,
``queue``, ``history``, ``jobs``, ``files``, ``system``, ``models``, ``userdata``,
``settings``, ``users``, ``manager`` (ComfyUI-Manager).
The live side — one WebSocket opened on first need, ``submit()`` returning
:class:`~comfy_async.job.Job` handles, reconciliation over HTTP — is a
:class:`~comfy_async._live.session.LiveSession` built on the same HTTP client and ``client_id``.
The session never shows a secret: not in ``repr()``, logs or errors.

This module does no I/O of its own and does not import aiohttp at runtime.
"""

from __future__ import annotations

import asyncio
import importlib
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, Self, TypeVar, cast, overload

from yarl import URL

from comfy_async._transport.http import HttpClient
from comfy_async._transport.routes import CLOUD, LOCAL
from comfy_async.errors import ClientClosedError, ConfigurationError, UnsupportedOperationError

if TYPE_CHECKING:
    import os
    from collections.abc import (
        AsyncIterable,
        AsyncIterator,
        Awaitable,
        Callable,
        Iterable,
        Sequence,
    )
    from pathlib import Path
    from types import TracebackType

    import aiohttp

    from comfy_async._live.batch import BatchOutcome
    from comfy_async._live.connection import Connection, ConnectionState, ReconnectInfo
    from comfy_async._live.dispatch import EventTap
    from comfy_async._live.keyed_lock import KeyedLocks
    from comfy_async._live.session import LiveSession
    from comfy_async._live.v2_backend import ApiV2Session
    from comfy_async._pool.core import PoolCore
    from comfy_async._transport.rest import (
        ComfyUIManager,
        Files,
        History,
        Jobs,
        Models,
        Prompts,
        Queue,
        Settings,
        System,
        UserData,
        Users,
    )
    from comfy_async._transport.routes import RouteTable
    from comfy_async.catalogue import Catalogue
    from comfy_async.config import AdmissionPolicy, ClientOptions
    from comfy_async.events import Event
    from comfy_async.job import Job, JobResult
    from comfy_async.models.api_v2 import V2Asset
    from comfy_async.workflow import Workflow

    WorkflowInput = Workflow | Mapping[str, object]

__all__ = ["CLOUD_BASE_URL", "DEFAULT_BASE_URL", "ComfyClient", "Flavour"]

N = TypeVar("N")

DEFAULT_BASE_URL: Final = "http://127.0.0.1:8188"
"""Where a local ComfyUI listens by default."""
CLOUD_BASE_URL: Final = "https://cloud.comfy.org"
"""Comfy Cloud's API."""

Flavour = Literal["local", "cloud"]
_TABLES: Final[dict[str, RouteTable]] = {"local": LOCAL, "cloud": CLOUD}


def _infer_flavour(base_url: str | URL, api_key: str | None) -> Flavour:
    """Cloud for a ``*.comfy.org`` host or when an API key is given; local otherwise."""
    host = (URL(str(base_url)).host or "").lower()
    if host == "comfy.org" or host.endswith(".comfy.org"):
        return "cloud"
    return "cloud" if api_key else "local"


class _Namespace(Generic[N]):
    """A REST namespace of the client, built (and its module imported) on first access.

    Building namespaces lazily keeps ``from comfy_async import ComfyClient`` cheap: a bot that
    only submits never imports the user-data or model-file modules.
    """

    def __init__(
        self,
        module: str,
        name: str,
        doc: str,
        build: Callable[[ComfyClient, type[N]], N] | None = None,
    ) -> None:
        self._module = module
        self._name = name
        self._build = build
        self.__doc__ = doc

    def __set_name__(self, owner: type, attribute: str) -> None:
        self._attribute = attribute

    @overload
    def __get__(self, client: None, owner: type) -> Self: ...
    @overload
    def __get__(self, client: ComfyClient, owner: type) -> N: ...
    def __get__(self, client: ComfyClient | None, owner: type) -> N | Self:
        if client is None:
            return self
        found = client._namespaces.get(self._attribute)
        if found is not None:
            return cast("N", found)
        cls: type[N] = getattr(importlib.import_module(self._module), self._name)
        built = self._build(client, cls) if self._build else cls(client._http)  # type: ignore[call-arg]
        client._namespaces[self._attribute] = built
        return built


class ComfyClient:
    """A session with one ComfyUI server or Comfy Cloud.

    ::

        async with ComfyClient("http://127.0.0.1:8188") as comfy:
            stats = await comfy.system.stats()

        async with ComfyClient.cloud(api_key=key) as comfy:
            page = await comfy.jobs.list(limit=10)

    Args:
        base_url: the server, optionally with a path prefix (a reverse proxy at ``/comfy/``).
        api_key: the Comfy Cloud key, sent as ``X-API-Key`` to ``base_url``'s origin only.
        flavour: ``"local"`` or ``"cloud"``; inferred from the host and ``api_key`` if omitted.
        options: timeouts, retries and the other session options.
        session: an aiohttp session to borrow (it is never closed by this client).
        headers: extra headers for every request to the server (never ``Origin``).
        bearer_token: ``Authorization: Bearer`` for a proxy in front of the server.
        basic_auth: ``(login, password)`` for a proxy in front of the server.
        user: the user of a ``--multi-user`` server (sent as ``comfy-user``).
        client_id: the id of this session's WebSocket and submits (default: a fresh uuid4 hex).
        jobs_api: whether the server has the jobs API (``None``: detected at first use).
        on_reconnect: awaited after every WebSocket reconnect (before jobs are reconciled);
            raising from it stops reconnecting and ends every job with that error.
        admission: hold jobs client-side and release them fairly between tenants, with
            per-tenant limits (:class:`~comfy_async.config.AdmissionPolicy`); every submit then
            goes through it, and ``submit(tenant=..., priority=...)`` is allowed.

    """

    def __init__(
        self,
        base_url: str | URL = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        flavour: Flavour | None = None,
        options: ClientOptions | None = None,
        session: aiohttp.ClientSession | None = None,
        headers: Mapping[str, str] | None = None,
        bearer_token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        user: str | None = None,
        client_id: str | None = None,
        jobs_api: bool | None = None,
        on_reconnect: Callable[[ReconnectInfo], Awaitable[None]] | None = None,
        admission: AdmissionPolicy | None = None,
    ) -> None:
        chosen = flavour or _infer_flavour(base_url, api_key)
        if chosen not in _TABLES:
            raise ConfigurationError(f"flavour must be 'local' or 'cloud', got {chosen!r}")
        self.client_id: str = client_id or uuid.uuid4().hex
        """This session's client id (WebSocket ``clientId`` and the ``client_id`` of submits)."""
        self._http = HttpClient(
            base_url,
            routes=_TABLES[chosen],
            options=options,
            session=session,
            api_key=api_key,
            bearer_token=bearer_token,
            basic_auth=basic_auth,
            headers=headers,
            user=user,
        )
        # The REST namespaces and the live session are built on first use, and their modules
        # imported then: ``from comfy_async import ComfyClient`` loads only the request path.
        self._jobs_api = jobs_api
        self._on_reconnect = on_reconnect
        self._namespaces: dict[str, object] = {}  # filled by the _Namespace attributes
        self._live_session: LiveSession | None = None
        self._catalogue: Catalogue | None = None
        self._catalogue_lock: asyncio.Lock | None = None
        self._admission = admission
        self._admitting: PoolCore | None = None
        self._items: KeyedLocks | None = None
        self._api_v2_token: str | None = None  # set by ComfyClient.v2: jobs go through API v2
        self._api_v2: ApiV2Session | None = None

    # ------------------------------------------------------------------ REST namespaces

    queue: _Namespace[Queue] = _Namespace(
        "comfy_async._transport.rest.queue",
        "Queue",
        "The server's queue: get, delete, clear, interrupt.",
    )
    history: _Namespace[History] = _Namespace(
        "comfy_async._transport.rest.history",
        "History",
        "Finished prompts: list, get, delete, clear.",
    )
    jobs: _Namespace[Jobs] = _Namespace(
        "comfy_async._transport.rest.jobs",
        "Jobs",
        "The jobs API: list, get, cancel (absent on older servers).",
        lambda client, cls: cls(client._http, available=client._jobs_api),
    )
    prompts: _Namespace[Prompts] = _Namespace(
        "comfy_async._transport.rest.prompts",
        "Prompts",
        "Submitting prompts (with reconciliation of ambiguous failures) and the queue size.",
        lambda client, cls: cls(
            client._http, jobs=client.jobs, queue=client.queue, history=client.history
        ),
    )
    files: _Namespace[Files] = _Namespace(
        "comfy_async._transport.rest.files",
        "Files",
        "Uploads, ``/view`` streams, downloads and saving outputs safely.",
    )
    system: _Namespace[System] = _Namespace(
        "comfy_async._transport.rest.system",
        "System",
        "Stats, features, node schemas and server upkeep.",
    )
    models: _Namespace[Models] = _Namespace(
        "comfy_async._transport.rest.model_files", "Models", "Model folders, files and previews."
    )
    userdata: _Namespace[UserData] = _Namespace(
        "comfy_async._transport.rest.userdata", "UserData", "The user's data files."
    )
    settings: _Namespace[Settings] = _Namespace(
        "comfy_async._transport.rest.userdata", "Settings", "The user's frontend settings."
    )
    users: _Namespace[Users] = _Namespace(
        "comfy_async._transport.rest.userdata", "Users", "The server's users (``--multi-user``)."
    )
    manager: _Namespace[ComfyUIManager] = _Namespace(
        "comfy_async._transport.rest.comfyui_manager",
        "ComfyUIManager",
        "ComfyUI-Manager: install node packs and models, follow its queue, reboot.",
        lambda client, cls: cls(client._http, client.client_id),
    )

    # ------------------------------------------------------------------ live session

    @property
    def _live(self) -> LiveSession:
        """The live session (jobs, the WebSocket, reconciliation), built on first use."""
        live = self._live_session
        if live is None:
            if self._http.closed:
                raise ClientClosedError("the session is closed")
            if self._api_v2_token is not None:
                raise UnsupportedOperationError(
                    "the WebSocket session", "Comfy API v2", "its jobs carry their own events"
                )
            from comfy_async._live.http_backend import HttpJobBackend  # noqa: PLC0415
            from comfy_async._live.session import LiveSession  # noqa: PLC0415

            backend = HttpJobBackend(
                prompts=self.prompts,
                queue=self.queue,
                history=self.history,
                jobs=self.jobs,
                files=self.files,
                finish_marker=self._http.routes.finish_marker,
                history_window=self.flavour == "local",
                crowded=self._crowded,
            )
            live = self._live_session = LiveSession(
                backend,
                self._connect,
                client_id=self.client_id,
                options=self._http.options,
                on_reconnect=self._on_reconnect,
                events_broadcast=self.flavour == "cloud",
                server=self.base_url.rstrip("/"),
            )
        return live

    def _crowded(self) -> bool:
        """Whether several jobs are in flight on the live session (their ends may come close)."""
        live = self._live_session
        return live is not None and len(live.jobs) > 1

    def _connect(
        self,
        dispatch: Callable[[Event], None],
        on_reconnect: Callable[[ReconnectInfo], Awaitable[None]],
    ) -> Connection:
        from comfy_async._live.connection import Connection  # noqa: PLC0415 - with the live session

        http = self._http
        return Connection(
            http.session,
            http.ws_url(self.client_id),
            options=http.options,
            dispatch=dispatch,
            headers=http.ws_headers(),
            on_reconnect=on_reconnect,
        )

    @classmethod
    def cloud(
        cls,
        *,
        api_key: str,
        base_url: str | URL = CLOUD_BASE_URL,
        options: ClientOptions | None = None,
        session: aiohttp.ClientSession | None = None,
        headers: Mapping[str, str] | None = None,
        client_id: str | None = None,
        jobs_api: bool | None = None,
        on_reconnect: Callable[[ReconnectInfo], Awaitable[None]] | None = None,
    ) -> Self:
        """A session with Comfy Cloud (the other options are the constructor's)."""
        if not api_key:
            raise ConfigurationError("Comfy Cloud needs an API key (platform.comfy.org)")
        return cls(
            base_url,
            api_key=api_key,
            flavour="cloud",
            options=options,
            session=session,
            headers=headers,
            client_id=client_id,
            jobs_api=jobs_api,
            on_reconnect=on_reconnect,
        )

    @classmethod
    def v2(
        cls,
        base_url: str | URL,
        *,
        api_key: str | None = None,
        options: ClientOptions | None = None,
        session: aiohttp.ClientSession | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Self:
        """A session whose jobs go through the Comfy API v2 (``/api/v2/*``) at ``base_url``.

        Comfy Cloud, a serverless deployment (``https://{deployment}.run.comfy.app``) or a
        self-hosted v2 proxy; ``api_key`` is sent as ``Authorization: Bearer`` (a self-hosted
        server may need none). Jobs are the same :class:`~comfy_async.job.Job`: the same events,
        the same :class:`~comfy_async.job.JobResult`, cancel by task cancellation, timeouts,
        :meth:`attach` by id. They are followed over the job's SSE stream and read over HTTP
        whenever the stream ends or is cut (the job object is the truth).
        :meth:`submit_or_attach` uses its key as the ``Idempotency-Key``.
        """
        if api_key is not None and not api_key.strip():
            raise ConfigurationError("api_key must not be empty (pass None for no credentials)")
        client = cls(base_url, flavour="local", options=options, session=session, headers=headers)
        client._api_v2_token = api_key or ""
        return client

    @property
    def _v2(self) -> ApiV2Session | None:
        """The API v2 job session of a ``ComfyClient.v2`` session (``None`` otherwise)."""
        if self._api_v2_token is None:
            return None
        v2 = self._api_v2
        if v2 is None:
            if self._http.closed:
                raise ClientClosedError("the session is closed")
            from comfy_async._live.v2_backend import ApiV2Session  # noqa: PLC0415

            v2 = self._api_v2 = ApiV2Session(
                self._http.session,
                self._http.base_url,
                token=self._api_v2_token,
                options=self._http.options,
            )
        return v2

    async def upload_asset(
        self,
        source: bytes | str | os.PathLike[str],
        *,
        file_path: str | None = None,
        content_type: str | None = None,
        tags: Sequence[str] = ("input",),
    ) -> V2Asset:
        """Upload an input as a Comfy API v2 asset, once per content; return the asset.

        ``source`` is bytes (then ``file_path`` names them) or a file. Its blake3 hash is
        computed in a worker thread; content this session uploaded before is returned from
        memory, content the server already holds is minted from its hash without sending the
        bytes, and only new content is uploaded (the server verifies the hash). Put
        ``asset.reference()`` in the workflow where a file name would go.

        Raises:
            UnsupportedOperationError: not a ``ComfyClient.v2`` session.
            ConfigurationError: bytes without a ``file_path``, or blake3 is not installed.

        """
        v2 = self._v2
        if v2 is None:
            raise UnsupportedOperationError("upload_asset", self.flavour, "use ComfyClient.v2")
        return await v2.upload(source, file_path=file_path, content_type=content_type, tags=tags)

    def __repr__(self) -> str:
        closed = " closed" if self._http.closed else ""
        flavour = "v2" if self._api_v2_token is not None else self.flavour
        return f"<ComfyClient {flavour} {self.base_url} client_id={self.client_id}{closed}>"

    # ------------------------------------------------------------------ identity

    @property
    def base_url(self) -> str:
        """The server's base URL (with its path prefix, if any)."""
        return str(self._http.base_url)

    @property
    def flavour(self) -> Flavour:
        """``"local"`` or ``"cloud"``."""
        return "cloud" if self._http.routes is CLOUD else "local"

    @property
    def routes(self) -> RouteTable:
        """The route table of this server flavour."""
        return self._http.routes

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._http.closed

    # ------------------------------------------------------------------ jobs

    async def submit(
        self,
        workflow: WorkflowInput,
        *,
        prompt_id: str | None = None,
        number: float | None = None,
        front: bool = False,
        extra_data: Mapping[str, object] | None = None,
        partial_execution_targets: Iterable[str] | None = None,
        preview_method: str | None = None,
        timeout: float | None = None,
        detach: bool = False,
        validate: bool = False,
        tenant: str | None = None,
        priority: int = 0,
    ) -> Job:
        r"""Queue a workflow and return its :class:`~comfy_async.job.Job` at once.

        ``workflow`` is a :class:`~comfy_async.workflow.Workflow`, an API-format graph, or a
        workflow saved from the UI (converted with the server's catalogue). With ``validate``
        the graph is first checked offline against the catalogue and refused before any GPU
        time is spent, with the error the server would give.

        The job is registered, and the session's WebSocket open, before the prompt is POSTed
        with a client-minted canonical ``prompt_id`` (or the one given), so no event is lost.
        ``timeout`` is a deadline for the whole job: when it passes the job is cancelled on the
        server (unless ``detach``) and ends with :class:`~comfy_async.errors.JobTimeout`.
        With ``detach``, cancelling a task that awaits the job leaves the server job running.

        Raises:
            PromptValidationError: the server (or, with ``validate``, the offline check)
                refused the graph; nothing was queued.
            WorkflowError: the workflow is not a graph, or a UI export cannot be converted.
            ComfyError: the server could not be reached, or refused the credentials.

        Cancelling the caller while the POST is in flight cancels the prompt on the server if it
        was queued (unless ``detach``): nothing runs unseen.

        With ``admission`` (see the constructor) the job is held client-side and returned at
        once (``job.state`` ``HELD``, ``job.position`` its place in line); it goes to the server
        in the fair order between ``tenant``\ s (a higher ``priority`` first). A tenant at one of
        its limits is refused with :class:`~comfy_async.errors.AdmissionRefused`.
        """
        if self._admission is None and (tenant is not None or priority):
            raise ConfigurationError(
                "tenant and priority need admission: ComfyClient(..., admission=AdmissionPolicy())"
            )
        targets = (
            tuple(partial_execution_targets) if partial_execution_targets is not None else None
        )
        v2 = self._v2
        if v2 is not None:
            if number is not None or front or targets is not None or preview_method is not None:
                raise ConfigurationError(
                    "the Comfy API v2 takes no number, front, partial execution or preview method"
                )
            if self._admission is not None or prompt_id is not None:
                raise ConfigurationError(
                    "on the Comfy API v2 the server names jobs and there is no admission: "
                    "use submit_or_attach(..., prompt_id=key) for idempotent submission"
                )
            prompt = await self._prompt_of(workflow, validate=validate, targets=None)
            return await v2.submit(prompt, extra_data=extra_data, timeout=timeout, detach=detach)
        prompt = await self._prompt_of(workflow, validate=validate, targets=targets)
        live = self._live
        from comfy_async._live.session import SubmitOptions  # noqa: PLC0415 - loaded with the session

        options = SubmitOptions(
            number=number,
            front=front,
            extra_data=extra_data,
            partial_execution_targets=targets,
            preview_method=preview_method,
        )
        if self._admission is not None:
            if number is not None or front:
                raise ConfigurationError("with admission the order is fair: no number or front")
            core = await self._admission_core(self._admission)
            return core.submit(
                prompt,
                prompt_id=prompt_id,
                options=options,
                tenant=tenant,
                priority=priority,
                timeout=timeout,
                detach=detach,
            )
        return await live.submit(
            prompt, prompt_id=prompt_id, options=options, timeout=timeout, detach=detach
        )

    async def submit_or_attach(
        self, workflow: WorkflowInput, *, prompt_id: str, **submit_options: Any
    ) -> Job:
        """Submit under ``prompt_id`` unless the server has it already: idempotent by the id.

        With :func:`~comfy_async.batch_prompt_id` each item of a batch has the same id every
        time, so a retried item (a worker restarted, a command re-run) attaches to its prompt
        when the server has it queued, running or done, and is submitted only when it is found
        nowhere. Two tasks of this process asking at once make one decision (the second gets the
        first one's job). Two processes racing on one item both POST; each then reads the queue,
        and the one whose submission came later deletes one of the two entries, so the prompt
        runs once; both jobs then follow it over HTTP as well as by events.

        Returns the job (an attached one is detached: see :meth:`attach`). The options are
        :meth:`submit`'s.
        """
        from comfy_async._live.keyed_lock import KeyedLocks  # noqa: PLC0415 - built on first use
        from comfy_async._live.session import checked_prompt_id  # noqa: PLC0415

        v2 = self._v2
        if v2 is not None:
            if not prompt_id:
                raise ConfigurationError("the idempotency key must not be empty")
            prompt = await self._prompt_of(
                workflow, validate=bool(submit_options.pop("validate", False)), targets=None
            )
            return await v2.submit(prompt, idempotency_key=prompt_id, **submit_options)
        checked_prompt_id(prompt_id)
        if self._items is None:
            self._items = KeyedLocks()
        async with self._items.hold(prompt_id):
            live = self._live
            job = live.jobs.get(prompt_id)
            if job is not None:
                return job
            timeout = submit_options.get("timeout")
            if await live.backend.lookup(prompt_id) is not None:
                return await self.attach(prompt_id, timeout=timeout)
            job = await self.submit(workflow, prompt_id=prompt_id, **submit_options)
            if self._admission is None:
                from comfy_async._live.duplicates import keep_one_entry  # noqa: PLC0415

                await keep_one_entry(self.queue, live, job)
            elif self._admitting is not None:
                self._admitting.mark_idempotent(prompt_id)
            return job

    async def _admission_core(self, policy: AdmissionPolicy) -> PoolCore:
        """The admission line of this client: a pool of one server, itself (built once)."""
        core = self._admitting
        if core is None:
            from comfy_async._pool.core import PoolCore  # noqa: PLC0415 - built on first use
            from comfy_async._pool.member import Member, MemberSettings  # noqa: PLC0415
            from comfy_async._pool.scheduler import SchedulerSettings  # noqa: PLC0415

            name = self.base_url.rstrip("/")
            settings = MemberSettings(name, 1.0, policy.max_queue, frozenset(), warm_slots=1)
            member = Member(
                self, settings, owned=False, failures_to_trip=2, prior_duration=10.0, prior_load=0.0
            )
            core = self._admitting = PoolCore(
                [member],
                settings=SchedulerSettings(),
                admission=policy,
                limits=self._http.options.limits,
            )
        await core.start()
        return core

    async def _prompt_of(
        self, workflow: WorkflowInput, *, validate: bool, targets: tuple[str, ...] | None
    ) -> Mapping[str, object]:
        from comfy_async._graph.formats import is_ui_format  # noqa: PLC0415 - optional part

        if not validate and isinstance(workflow, Mapping) and not is_ui_format(workflow):
            return workflow  # an API-format prompt sent as it is: no graph machinery loaded
        from comfy_async.workflow import Workflow  # noqa: PLC0415 - optional part

        if isinstance(workflow, Workflow):
            graph = workflow
        elif is_ui_format(workflow):
            graph = Workflow.from_ui(workflow, await self.nodes())
        elif validate:
            graph = Workflow(workflow)
        else:
            return workflow
        if validate:
            graph.check(await self.nodes(), targets=targets, allow_partial=True)
        return graph.to_prompt()

    async def nodes(self, *, refresh: bool = False) -> Catalogue:
        """The server's node catalogue (``GET /object_info``), cached for the session.

        Decoded lazily: the index of classes at once, a node's typed schema when first asked.
        ``refresh`` fetches it again (after installing custom nodes or models). Concurrent
        callers share one request; cancelling one of them does not cancel it for the others.
        """
        from comfy_async.catalogue import Catalogue  # noqa: PLC0415 - optional part

        if self._catalogue is not None and not refresh:
            return self._catalogue
        if self._catalogue_lock is None:
            self._catalogue_lock = asyncio.Lock()
        stale = self._catalogue
        async with self._catalogue_lock:
            if self._catalogue is None or (refresh and self._catalogue is stale):
                self._catalogue = Catalogue.from_bytes(await self.system.object_info_bytes())
            return self._catalogue

    async def attach(self, prompt_id: str, *, timeout: float | None = None) -> Job:
        """Follow a prompt submitted earlier (by this or another process) to its outcome.

        The job is looked up over HTTP at once, so a prompt that already ended settles
        immediately; one found nowhere on consecutive checks ends as
        :class:`~comfy_async.errors.JobLost`. An attached job is detached: cancelling a task
        that awaits it does not cancel it on the server (call :meth:`Job.cancel` for that).
        """
        v2 = self._v2
        if v2 is not None:
            return await v2.attach(prompt_id, timeout=timeout)
        return await self._live.attach(prompt_id, timeout=timeout)

    async def run(
        self,
        workflow: WorkflowInput,
        *,
        save_to: str | Path | None = None,
        timeout: float | None = None,
        **submit_options: object,
    ) -> JobResult:
        """Submit a workflow, wait for its outcome and (with ``save_to``) save its output files.

        Raises what :meth:`Job.result` raises. Cancelling the caller cancels the job on the
        server.
        """
        from comfy_async._live.batch import run_one  # noqa: PLC0415 - built on first use

        return await run_one(
            self.submit, workflow, save_to=save_to, timeout=timeout, options=submit_options
        )

    async def submit_many(
        self,
        workflows: Iterable[WorkflowInput] | AsyncIterable[WorkflowInput],
        *,
        concurrency: int = 8,
        timeout: float | None = None,
        **submit_options: object,
    ) -> AsyncIterator[BatchOutcome[WorkflowInput]]:
        """Run many workflows with at most ``concurrency`` in flight; yield outcomes as they end.

        Each :class:`~comfy_async._live.batch.BatchOutcome` carries the workflow's index, its prompt
        id and a result or an error; one failure does not stop the batch. Leaving the loop early
        cancels the jobs still in flight on the server.
        """

        async def submit(workflow: WorkflowInput) -> Job:
            return await self.submit(workflow, timeout=timeout, **submit_options)  # type: ignore[arg-type]

        from comfy_async._live.batch import run_batch  # noqa: PLC0415 - built on first use

        async for outcome in run_batch(workflows, submit, concurrency=concurrency):
            yield outcome

    def events(self, *, include_jobs: bool = False) -> EventTap:
        """A stream of the session's events, as an async iterator (and context manager).

        By default it carries what belongs to no job of this session: ``status``, feature
        flags, logs, unknown event types, frames nothing could attribute, events of other
        clients' prompts, and ``Reconnected`` markers. With ``include_jobs`` it carries every
        event. It is bounded: when its reader falls behind, the oldest events are dropped (and
        counted in ``stats``). ``close()`` it, or leave its ``async with`` block, when done.
        """
        return self._live.tap(include_jobs=include_jobs)

    @property
    def in_flight(self) -> Mapping[str, Job]:
        """The jobs of this session that have not ended, by prompt id (held ones included)."""
        if self._api_v2 is not None:
            return self._api_v2.jobs
        live = self._live_session
        jobs = live.jobs if live is not None else {}
        if self._admitting is None:
            return jobs
        held = {pid: entry.job for pid, entry in self._admitting.scheduler.entries.items()}
        return {**jobs, **held}

    @property
    def connection_state(self) -> ConnectionState:
        """The state of the session's WebSocket (``IDLE`` until first needed)."""
        live = self._live_session
        if live is None:
            from comfy_async._live.connection import ConnectionState  # noqa: PLC0415

            return ConnectionState.IDLE
        return live.connection_state

    async def connect(self) -> None:
        """Open the WebSocket now rather than on first need (to fail fast on bad credentials).

        Raises:
            AuthenticationError: the server refused the credentials.
            ConnectError: the server cannot be reached.

        """
        await self._live.connection.ensure_open()

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self, *, drain: bool = False, timeout: float | None = None) -> None:
        """Close the session; idempotent. Leaves no task, socket or registration behind.

        With ``drain``, first waits (up to ``timeout`` seconds) for the jobs in flight to end.
        Jobs still in flight then end with :class:`~comfy_async.errors.ClientClosedError` here;
        they go on running on the server (re-:meth:`attach` them later by prompt id). The
        session's own aiohttp session is closed (a borrowed one stays open). Later calls raise
        ``ClientClosedError``.
        """
        if self._admitting is not None:
            await self._admitting.aclose(drain=drain, timeout=timeout)
        if self._live_session is not None:
            await self._live_session.aclose(drain=drain, timeout=timeout)
        if self._api_v2 is not None:
            await self._api_v2.aclose(drain=drain, timeout=timeout)
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
