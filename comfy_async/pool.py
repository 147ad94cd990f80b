"""``ComfyPool``: one job API over a fleet of ComfyUI servers (local and Cloud may mix).

::

    async with ComfyPool(["http://gpu1:8188", "http://gpu2:8188"]) as pool:
        job = await pool.submit(workflow)        # the same Job as ComfyClient.submit returns
        async for event in job:
            ...
        print(job.server, (await job.result()).files)

Each server keeps its own :class:`~comfy_async.client.ComfyClient` (its session and WebSocket),
so one server's trouble never stalls another. Jobs are held client-side and placed late, when a
healthy server has room (``max_queue`` per server, counting other clients' prompts there), on
the server that can run them (node classes and models, read from its ``/object_info``) and
should: the one holding the models warm, unless the wait for it costs more than loading them
elsewhere. A server that fails is taken out until it answers again; its jobs move to others and
are deleted from its queue when it comes back, so none runs twice and each job has exactly one
outcome. ``job.server`` says where a job runs, ``job.servers`` every server it went through, and
the ``comfy_async.pool`` logger says why, at debug level.

Comfy API v2 servers (Comfy Cloud's v2, serverless deployments, self-hosted v2 proxies) join the
same pool: ``PoolServer(ComfyClient.v2(url, api_key=...))`` or ``PoolServer(url, api="v2")``.
The v2 API tells nothing of a server's nodes, models or queue, so a v2 server is assumed able to
run any workflow until it refuses one, and its load is the pool's jobs there; its jobs are the
same :class:`~comfy_async.job.Job`, submitted under their prompt id as the ``Idempotency-Key``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Self

from comfy_async._live.keyed_lock import KeyedLocks
from comfy_async._live.session import SubmitOptions, checked_prompt_id
from comfy_async._pool.breaker import Health
from comfy_async._pool.core import PoolCore
from comfy_async._pool.held import Demand
from comfy_async._pool.member import Member, MemberSettings
from comfy_async._pool.needs import needs_of
from comfy_async._pool.scheduler import SchedulerSettings
from comfy_async.client import ComfyClient
from comfy_async.config import AdmissionPolicy, AutoInstall, ClientOptions
from comfy_async.errors import ConfigurationError, NoCapableServerError

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator, Iterable
    from pathlib import Path
    from types import TracebackType

    from comfy_async._live.batch import BatchOutcome
    from comfy_async._pool.announcer import PoolEventStream
    from comfy_async.client import WorkflowInput
    from comfy_async.job import Job, JobResult

__all__ = ["ComfyPool", "PoolServer", "ServerStats"]

_NATIVE_API = "native-api"
"""The tag every native server carries: a job needing what only the native API offers
(``partial_execution_targets``) requires it, so it never goes to a Comfy API v2 server."""


@dataclass(frozen=True, slots=True)
class PoolServer:
    """One server of a pool, with its options.

    Args:
        server: its base URL, or a :class:`~comfy_async.client.ComfyClient` (which the pool
            uses and leaves open; ``ComfyClient.v2(...)`` for a Comfy API v2 server).
        name: how stats, logs and ``job.server`` name it (default: its base URL).
        weight: how fast it is relative to the others (2.0: twice as fast), used until its own
            job times are measured.
        max_queue: jobs it is sent at once (its own queue counted, other clients' prompts
            included); the rest wait in the pool, where they can still go anywhere.
        tags: labels a submit can require (``submit(..., tags={"80gb"})``).
        warm_slots: how many model sets it can keep loaded at once (lowered when it is seen
            to evict).
        api: for a URL, the API it speaks: ``"native"`` (ComfyUI's own, or Comfy Cloud's) or
            ``"v2"`` (the Comfy API v2, ``/api/v2/*``; a client given as ``server`` says it
            itself).
        api_key: for a URL, its key (default: the pool's ``api_key``); a v2 server gets it as
            ``Authorization: Bearer``.

    """

    server: str | ComfyClient
    name: str | None = None
    weight: float = 1.0
    max_queue: int = 2
    tags: frozenset[str] = frozenset()
    warm_slots: int = 2
    api: Literal["native", "v2"] = "native"
    api_key: str | None = None


@dataclass(frozen=True, slots=True)
class ServerStats:
    """What a pool knows of one server (see :meth:`ComfyPool.stats`)."""

    name: str
    health: str
    """``up``, ``down``, ``recovering`` (clearing moved jobs from its queue) or ``restarting``
    (draining, then restarting to load nodes it installed: a planned outage)."""
    in_flight: int
    """The pool's jobs there (queued or running)."""
    queued_elsewhere: int
    """Prompts of other clients in its queue."""
    warm_models: tuple[str, ...]
    done: int
    failed: int
    moved_away: int
    """Jobs moved off it to other servers (failover)."""
    model_loads: int
    """Jobs sent there whose models were not warm."""
    mean_duration: float
    """Seconds per job there (measured, or the prior until a job ends)."""
    load_cost: float
    """Seconds a model load adds there (measured, or the pool's estimate)."""
    api: str = "native"
    """``native`` or ``v2`` (the Comfy API v2: no catalogue, no queue to read)."""


def _client(spec: PoolServer, options: ClientOptions | None, api_key: str | None) -> ComfyClient:
    """The client the pool makes for a server given by URL."""
    assert isinstance(spec.server, str)
    key = spec.api_key or api_key
    if spec.api == "v2":
        return ComfyClient.v2(spec.server, api_key=key, options=options)
    if spec.api != "native":
        raise ConfigurationError(f"api must be 'native' or 'v2', got {spec.api!r}")
    return ComfyClient(spec.server, options=options, api_key=key)


def _member_settings(spec: PoolServer, client: ComfyClient) -> MemberSettings:
    """A server's validated options."""
    if spec.weight <= 0:
        raise ConfigurationError(f"a server's weight must be positive, got {spec.weight!r}")
    if spec.max_queue < 1:
        raise ConfigurationError(f"max_queue must be at least 1, got {spec.max_queue!r}")
    if spec.warm_slots < 1:
        raise ConfigurationError(f"warm_slots must be at least 1, got {spec.warm_slots!r}")
    return MemberSettings(
        name=spec.name or client.base_url.rstrip("/"),
        weight=spec.weight,
        max_queue=spec.max_queue,
        tags=frozenset(spec.tags) | ({_NATIVE_API} if client._api_v2_token is None else set()),
        warm_slots=spec.warm_slots,
    )


class ComfyPool:
    """A pool of ComfyUI servers behind the job API of :class:`~comfy_async.client.ComfyClient`.

    Args:
        servers: base URLs, clients, or :class:`PoolServer` entries with options; Comfy API v2
            servers among them as ``ComfyClient.v2(...)`` clients or ``PoolServer(url,
            api="v2")``.
        options: client options for the servers given as URLs.
        api_key: the key for Cloud URLs and v2 URLs among ``servers`` (a ``PoolServer`` may
            carry its own).
        retries: how many times a job that was *running* on a server that failed is run again
            elsewhere (a job that had not started always moves: it never ran). ``0`` gives
            at-most-once execution; with retries a job interrupted by a network partition (not
            a crash) could have run partly on the lost server.
        probe_every: seconds between health probes of each server.
        probe_timeout: a probe (or the first catalogue read) slower than this fails.
        down_after: seconds a server's WebSocket may stay down (with jobs there) before the
            server counts as failed.
        failures_to_trip: failures in a row that take a server down.
        admission: fairness between tenants and their limits (:class:`AdmissionPolicy`); by
            default one shared line, in priority then submission order, without limits.
        job_duration: seconds a job is assumed to take until measured.
        model_load_time: seconds a model load is assumed to add until one is measured (the
            default, 0, spreads jobs freely until the fleet has shown what a load costs).
        auto_install: what the pool may install, and from where, on a server with
            ComfyUI-Manager when no server has a node class or model file a job needs
            (:class:`~comfy_async.config.AutoInstall`). The least loaded server that can be
            equipped installs it once while the jobs that need it stay held; they then run
            there. Off by default: such a job is refused with
            :class:`~comfy_async.errors.NoCapableServerError`.

    Raises:
        UnsafeURLError: an ``auto_install`` source is not an ``http(s)`` URL.
        UnsafePathError: an ``auto_install`` model file name or folder is not a safe one.

    """

    def __init__(
        self,
        servers: Iterable[str | ComfyClient | PoolServer],
        *,
        options: ClientOptions | None = None,
        api_key: str | None = None,
        retries: int = 1,
        probe_every: float = 1.0,
        probe_timeout: float = 5.0,
        down_after: float = 10.0,
        failures_to_trip: int = 2,
        admission: AdmissionPolicy | None = None,
        job_duration: float = 10.0,
        model_load_time: float = 0.0,
        auto_install: AutoInstall | None = None,
    ) -> None:
        settings = SchedulerSettings(
            probe_every=probe_every,
            probe_timeout=probe_timeout,
            down_after=down_after,
            retries=retries,
            failures_to_trip=failures_to_trip,
        )
        self._options = options or ClientOptions()
        self._items = KeyedLocks()
        members: list[Member] = []
        self._clients: list[ComfyClient] = []
        for item in servers:
            spec = item if isinstance(item, PoolServer) else PoolServer(item)
            owned = not isinstance(spec.server, ComfyClient)
            client = (
                spec.server
                if isinstance(spec.server, ComfyClient)
                else _client(spec, options, api_key)
            )
            if not owned and spec.api == "v2" and client._api_v2_token is None:
                raise ConfigurationError(
                    f"{client.base_url} is a native client: make it with ComfyClient.v2(...)"
                )
            self._clients.append(client)
            members.append(
                Member(
                    client,
                    _member_settings(spec, client),
                    owned=owned,
                    failures_to_trip=failures_to_trip,
                    prior_duration=job_duration,
                    prior_load=model_load_time,
                )
            )
        self._core = PoolCore(
            members,
            settings=settings,
            admission=admission or AdmissionPolicy(),
            limits=self._options.limits,
            auto_install=auto_install,
        )

    def __repr__(self) -> str:
        members = self._core.members
        up = sum(1 for member in members if member.health is Health.UP)
        return f"<ComfyPool {up}/{len(members)} servers up>"

    @property
    def servers(self) -> tuple[ComfyClient, ...]:
        """The client of each server, in the order given."""
        return tuple(self._clients)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Read every server's catalogue and start probing (``async with`` does this)."""
        await self._core.start()

    async def aclose(self, *, drain: bool = False, timeout: float | None = None) -> None:
        """Close the pool; idempotent.

        With ``drain``, first waits (up to ``timeout``) for every job to end. Jobs still held
        end with :class:`~comfy_async.errors.ClientClosedError`; jobs on a server go on running
        there (re-:meth:`attach` them by prompt id) and end here with the same error. Clients
        the pool made are closed; clients given to it stay open.
        """
        if self._core.closed:
            return
        await self._core.aclose(drain=drain, timeout=timeout)
        for member in self._core.members:
            if member.owned:
                await member.client.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ jobs

    async def submit(
        self,
        workflow: WorkflowInput,
        *,
        prompt_id: str | None = None,
        tenant: str | None = None,
        priority: int = 0,
        tags: Iterable[str] = (),
        retries: int | None = None,
        extra_data: Mapping[str, object] | None = None,
        partial_execution_targets: Iterable[str] | None = None,
        preview_method: str | None = None,
        timeout: float | None = None,
        detach: bool = False,
        validate: bool = False,
    ) -> Job:
        r"""Hold a workflow for the pool's servers and return its :class:`~comfy_async.job.Job`.

        The job starts ``HELD``: it waits for its turn (fair between ``tenant``\ s, higher
        ``priority`` first; :class:`~comfy_async.config.AdmissionPolicy`), then for a server
        that can run it and has room (``job.server`` says which; ``job.position`` its place in
        line meanwhile). Only servers with every node class and model file the workflow names,
        and all of ``tags``, are considered (or, with ``auto_install``, a server that installs
        what it lacks first; with ``partial_execution_targets``, native servers only: the Comfy
        API v2 runs whole graphs; ``preview_method`` is not sent to a v2 server, whose previews
        are its own). The other options are those of
        :meth:`ComfyClient.submit`; ``retries`` overrides the pool's for this job, ``timeout``
        counts from now (time held included). Cancelling a held job needs no request.

        Raises:
            AdmissionRefused: the tenant is at one of its limits (nothing was queued).
            NoCapableServerError: no server of the pool can run it (what each one lacks), nor
                be made to with ``auto_install`` (:class:`~comfy_async.errors.AutoInstallError`
                when installs were tried; a held job ends with it when its installs fail).
            PromptValidationError: with ``validate``, the graph is refused offline.
            WorkflowError: the workflow is not a graph, or a UI export cannot be converted.
            ClientClosedError: the pool is closed.

        """
        await self.start()
        prompt = await self._prompt_of(workflow)
        if partial_execution_targets is not None:
            tags = {*tags, _NATIVE_API}  # the Comfy API v2 runs whole graphs only
        if validate:
            capable = self._core.capable(Demand(needs_of(prompt), frozenset(tags)))
            if capable is not None and capable.catalogue is not None:
                from comfy_async.workflow import Workflow  # noqa: PLC0415 - optional part

                Workflow(prompt).check(capable.catalogue, allow_partial=True)
        options = SubmitOptions(
            extra_data=extra_data,
            partial_execution_targets=(
                tuple(partial_execution_targets) if partial_execution_targets is not None else None
            ),
            preview_method=preview_method,
        )
        return self._core.submit(
            prompt,
            prompt_id=prompt_id,
            options=options,
            tenant=tenant,
            priority=priority,
            tags=tags,
            retries=retries,
            timeout=timeout,
            detach=detach,
        )

    async def _prompt_of(self, workflow: WorkflowInput) -> Mapping[str, object]:
        from comfy_async._graph.formats import is_ui_format  # noqa: PLC0415 - optional part

        if isinstance(workflow, Mapping) and not is_ui_format(workflow):
            return workflow  # an API-format prompt sent as it is: no graph machinery loaded
        from comfy_async.workflow import Workflow  # noqa: PLC0415 - optional part

        if isinstance(workflow, Workflow):
            return workflow.to_prompt()
        if not is_ui_format(workflow):
            return workflow
        for member in self._core.members:
            if member.catalogue is not None:
                return Workflow.from_ui(workflow, member.catalogue).to_prompt()
        raise NoCapableServerError(
            {member.name: ["a readable catalogue"] for member in self._core.members}
        )

    async def run(
        self,
        workflow: WorkflowInput,
        *,
        save_to: str | Path | None = None,
        timeout: float | None = None,
        **submit_options: object,
    ) -> JobResult:
        """Submit a workflow, wait for its outcome and (with ``save_to``) save its outputs.

        Raises what :meth:`Job.result` raises. Cancelling the caller cancels the job.
        """
        from comfy_async._live.batch import run_one  # noqa: PLC0415 - built on first use

        return await run_one(
            self.submit, workflow, save_to=save_to, timeout=timeout, options=submit_options
        )

    async def submit_many(
        self,
        workflows: Iterable[WorkflowInput] | AsyncIterable[WorkflowInput],
        *,
        concurrency: int | None = None,
        timeout: float | None = None,
        **submit_options: object,
    ) -> AsyncIterator[BatchOutcome[WorkflowInput]]:
        """Run many workflows over the pool; yield outcomes as they end.

        ``concurrency`` bounds the jobs in flight (held ones included); by default twice what
        the servers take at once. Leaving the loop early cancels the jobs still in flight.
        """
        from comfy_async._live.batch import run_batch  # noqa: PLC0415 - built on first use

        if concurrency is None:
            concurrency = 2 * sum(m.settings.max_queue for m in self._core.members)

        async def submit(workflow: WorkflowInput) -> Job:
            return await self.submit(workflow, timeout=timeout, **submit_options)  # type: ignore[arg-type]

        async for outcome in run_batch(workflows, submit, concurrency=concurrency):
            yield outcome

    async def submit_or_attach(
        self, workflow: WorkflowInput, *, prompt_id: str, **submit_options: Any
    ) -> Job:
        """Submit under ``prompt_id`` unless a server has it already: idempotent by the id.

        The healthy servers are asked first; a prompt found on one (queued, running or done) is
        attached there, and submitted only when found nowhere (see
        :meth:`ComfyClient.submit_or_attach`, :func:`~comfy_async.batch_prompt_id`). Two tasks
        of this process asking at once get one job. A server that is down when asked cannot
        answer: a prompt it holds may then run again elsewhere (keep ``retries`` and the
        servers' health in mind for strict once-only work).
        """
        checked_prompt_id(prompt_id)
        await self.start()
        async with self._items.hold(prompt_id):
            entry = self._core.scheduler.entries.get(prompt_id)
            if entry is not None:
                return entry.job
            member = await self._core.known(prompt_id)
            if member is not None:
                return await member.client.attach(prompt_id, timeout=submit_options.get("timeout"))
            job = await self.submit(workflow, prompt_id=prompt_id, **submit_options)
            self._core.mark_idempotent(prompt_id)
            return job

    async def attach(self, prompt_id: str, *, timeout: float | None = None) -> Job:
        """Follow a prompt one of the servers knows (submitted earlier, from anywhere).

        Returns the job of the server that has it (a plain client job: it does not move).

        Raises:
            JobLost: no server of the pool knows the prompt.

        """
        return await self._core.attach(prompt_id, timeout=timeout)

    def events(self) -> PoolEventStream:
        """Servers going down and coming back, and installs (:data:`~comfy_async.events.PoolEvent`).

        A bounded stream per caller (the oldest events are dropped when it falls behind);
        ``close()`` it, or use it as an async context manager.
        """
        return self._core.events()

    def stats(self) -> dict[str, ServerStats]:
        """Each server's health, load, warm models and figures, by name."""
        stats = {}
        for member in self._core.members:
            stats[member.name] = ServerStats(
                name=member.name,
                health="restarting" if member.paused else member.health.value,
                in_flight=len(member.entries),
                queued_elsewhere=member.external,
                warm_models=tuple(sorted(member.warm_models)),
                done=member.done,
                failed=member.failed,
                moved_away=member.moved_away,
                model_loads=member.model_loads,
                mean_duration=member.mean_duration,
                load_cost=member.load_cost,
                api="native" if member.v2 is None else "v2",
            )
        return stats

    @property
    def held(self) -> int:
        """Jobs waiting in the pool for a server."""
        return len(self._core.scheduler.fair) + len(self._core.scheduler.held)
