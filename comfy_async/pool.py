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
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from comfy_async._live.session import SubmitOptions, checked_prompt_id, step_weights
from comfy_async._pool.announcer import Announcer, PoolEventStream
from comfy_async._pool.backend import PoolJobBackend
from comfy_async._pool.breaker import Health
from comfy_async._pool.held import Demand, Entry
from comfy_async._pool.member import Member, MemberSettings
from comfy_async._pool.needs import needs_of
from comfy_async._pool.scheduler import Scheduler, SchedulerSettings
from comfy_async.client import ComfyClient
from comfy_async.config import ClientOptions
from comfy_async.errors import (
    ClientClosedError,
    ConfigurationError,
    JobLost,
    NoCapableServerError,
)
from comfy_async.job import Job

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
    from pathlib import Path
    from types import TracebackType

    from comfy_async._live.batch import BatchOutcome
    from comfy_async.client import WorkflowInput
    from comfy_async.job import JobResult

__all__ = ["ComfyPool", "PoolServer", "ServerStats"]


@dataclass(frozen=True, slots=True)
class PoolServer:
    """One server of a pool, with its options.

    Args:
        server: its base URL, or a :class:`~comfy_async.client.ComfyClient` (which the pool
            uses and leaves open).
        name: how stats, logs and ``job.server`` name it (default: its base URL).
        weight: how fast it is relative to the others (2.0: twice as fast), used until its own
            job times are measured.
        max_queue: jobs it is sent at once (its own queue counted, other clients' prompts
            included); the rest wait in the pool, where they can still go anywhere.
        tags: labels a submit can require (``submit(..., tags={"80gb"})``).
        warm_slots: how many model sets it can keep loaded at once (lowered when it is seen
            to evict).

    """

    server: str | ComfyClient
    name: str | None = None
    weight: float = 1.0
    max_queue: int = 2
    tags: frozenset[str] = frozenset()
    warm_slots: int = 2


@dataclass(frozen=True, slots=True)
class ServerStats:
    """What a pool knows of one server (see :meth:`ComfyPool.stats`)."""

    name: str
    health: str
    """``up``, ``down`` or ``recovering`` (clearing moved jobs from its queue)."""
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


def _settings(spec: PoolServer, client: ComfyClient) -> MemberSettings:
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
        tags=frozenset(spec.tags),
        warm_slots=spec.warm_slots,
    )


class ComfyPool:
    """A pool of ComfyUI servers behind the job API of :class:`~comfy_async.client.ComfyClient`.

    Args:
        servers: base URLs, clients, or :class:`PoolServer` entries with options.
        options: client options for the servers given as URLs.
        api_key: the Comfy Cloud key for Cloud URLs among ``servers``.
        retries: how many times a job that was *running* on a server that failed is run again
            elsewhere (a job that had not started always moves: it never ran). ``0`` gives
            at-most-once execution; with retries a job interrupted by a network partition (not
            a crash) could have run partly on the lost server.
        probe_every: seconds between health probes of each server.
        probe_timeout: a probe (or the first catalogue read) slower than this fails.
        down_after: seconds a server's WebSocket may stay down (with jobs there) before the
            server counts as failed.
        failures_to_trip: failures in a row that take a server down.
        job_duration: seconds a job is assumed to take until measured.
        model_load_time: seconds a model load is assumed to add until one is measured (the
            default, 0, spreads jobs freely until the fleet has shown what a load costs).

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
        job_duration: float = 10.0,
        model_load_time: float = 0.0,
    ) -> None:
        if retries < 0:
            raise ConfigurationError(f"retries must not be negative, got {retries!r}")
        if probe_every <= 0 or probe_timeout <= 0 or down_after <= 0:
            raise ConfigurationError("probe_every, probe_timeout and down_after must be positive")
        if failures_to_trip < 1:
            raise ConfigurationError(f"failures_to_trip must be at least 1, not {failures_to_trip}")
        self._options = options or ClientOptions()
        members: list[Member] = []
        for item in servers:
            spec = item if isinstance(item, PoolServer) else PoolServer(item)
            owned = not isinstance(spec.server, ComfyClient)
            client = (
                spec.server
                if isinstance(spec.server, ComfyClient)
                else ComfyClient(spec.server, options=options, api_key=api_key)
            )
            members.append(
                Member(
                    client,
                    _settings(spec, client),
                    owned=owned,
                    failures_to_trip=failures_to_trip,
                    prior_duration=job_duration,
                    prior_load=model_load_time,
                )
            )
        if not members:
            raise ConfigurationError("a pool needs at least one server")
        names = [member.name for member in members]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"two servers of the pool have the same name: {names}")
        self._announcer = Announcer()
        self._scheduler = Scheduler(
            members,
            settings=SchedulerSettings(
                probe_every=probe_every,
                probe_timeout=probe_timeout,
                down_after=down_after,
                retries=retries,
            ),
            announcer=self._announcer,
        )
        self._started = False
        self._closed = False

    def __repr__(self) -> str:
        up = sum(1 for member in self._scheduler.members if member.health is Health.UP)
        return f"<ComfyPool {up}/{len(self._scheduler.members)} servers up>"

    @property
    def servers(self) -> tuple[ComfyClient, ...]:
        """The client of each server, in the order given."""
        return tuple(member.client for member in self._scheduler.members)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Read every server's catalogue and start probing (``async with`` does this)."""
        if self._closed:
            raise ClientClosedError("the pool is closed")
        if not self._started:
            self._started = True
            await self._scheduler.start()

    async def aclose(self, *, drain: bool = False, timeout: float | None = None) -> None:
        """Close the pool; idempotent.

        With ``drain``, first waits (up to ``timeout``) for every job to end. Jobs still held
        end with :class:`~comfy_async.errors.ClientClosedError`; jobs on a server go on running
        there (re-:meth:`attach` them by prompt id) and end here with the same error. Clients
        the pool made are closed; clients given to it stay open.
        """
        if self._closed:
            return
        self._closed = True
        scheduler = self._scheduler
        if drain and scheduler.entries:
            waiters = [
                asyncio.ensure_future(entry.job.wait()) for entry in scheduler.entries.values()
            ]
            await asyncio.wait(waiters, timeout=timeout)
            for waiter in waiters:
                waiter.cancel()
        await scheduler.aclose()
        for entry in list(scheduler.entries.values()):
            entry.job.detach()
            entry.job._fail(ClientClosedError("the pool was closed before the job ended"))
        self._announcer.close()
        for member in scheduler.members:
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
        tags: Iterable[str] = (),
        retries: int | None = None,
        extra_data: Mapping[str, object] | None = None,
        preview_method: str | None = None,
        timeout: float | None = None,
        detach: bool = False,
        validate: bool = False,
    ) -> Job:
        """Hold a workflow for the pool's servers and return its :class:`~comfy_async.job.Job`.

        The job starts ``HELD`` and is sent to a server when one that can run it has room
        (``job.server`` says which). Only servers with every node class and model file the
        workflow names, and all of ``tags``, are considered. The options are those of
        :meth:`ComfyClient.submit`; ``retries`` overrides the pool's for this job, ``timeout``
        counts from now (time held included). Cancelling a held job needs no request.

        Raises:
            NoCapableServerError: no server of the pool can run it (what each one lacks).
            PromptValidationError: with ``validate``, the graph is refused offline.
            WorkflowError: the workflow is not a graph, or a UI export cannot be converted.
            ClientClosedError: the pool is closed.

        """
        if self._closed:
            raise ClientClosedError("the pool is closed")
        await self.start()
        scheduler = self._scheduler
        prompt_id = checked_prompt_id(prompt_id)
        if prompt_id in scheduler.entries:
            raise ConfigurationError(f"prompt id {prompt_id} is already in flight in this pool")
        prompt = await self._prompt_of(workflow)
        demand = Demand(needs_of(prompt), frozenset(tags))
        capable = self._check_capable(demand)
        if validate and capable is not None:
            from comfy_async.workflow import Workflow  # noqa: PLC0415 - optional part

            catalogue = capable.catalogue
            assert catalogue is not None
            Workflow(prompt).check(catalogue, allow_partial=True)
        backend = PoolJobBackend(scheduler)
        job = Job(
            prompt_id,
            backend=backend,
            tasks=scheduler.tasks,
            limits=self._options.limits,
            on_settled=scheduler.ended,
            node_count=len(prompt),
            node_weights=step_weights(prompt),
            detach=detach,
            held=True,
        )
        job._rescue = scheduler.rescue
        entry = Entry(
            job=job,
            prompt=prompt,
            options=SubmitOptions(extra_data=extra_data, preview_method=preview_method),
            demand=demand,
            retries=scheduler.settings.retries if retries is None else retries,
            held_since=time.monotonic(),
        )
        backend.entry = entry
        scheduler.hold(entry)
        if timeout is not None:
            job._set_deadline(timeout)
        return job

    async def _prompt_of(self, workflow: WorkflowInput) -> Mapping[str, object]:
        from comfy_async.workflow import Workflow, is_ui_format  # noqa: PLC0415 - optional part

        if isinstance(workflow, Workflow):
            return workflow.to_prompt()
        if not is_ui_format(workflow):
            return workflow
        for member in self._scheduler.members:
            if member.catalogue is not None:
                return Workflow.from_ui(workflow, member.catalogue).to_prompt()
        raise NoCapableServerError(
            {member.name: ["a readable catalogue"] for member in self._scheduler.members}
        )

    def _check_capable(self, demand: Demand) -> Member | None:
        """A server that can run ``demand`` (``None``: only servers not read yet might)."""
        missing: dict[str, list[str]] = {}
        unknown = False
        for member in self._scheduler.members:
            lacks = member.lacks(demand.needs)
            absent = sorted(demand.tags - member.settings.tags)
            if lacks is None:
                unknown = unknown or not absent
                continue
            lacks = lacks + [f"tag {tag}" for tag in absent]
            if not lacks:
                return member
            missing[member.name] = lacks
        if unknown:
            return None  # held until a server that was down is read
        raise NoCapableServerError(missing)

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
        job = await self.submit(workflow, timeout=timeout, **submit_options)  # type: ignore[arg-type]
        result = await job.result()
        if save_to is not None:
            await result.save(save_to)
        return result

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
            concurrency = 2 * sum(m.settings.max_queue for m in self._scheduler.members)

        async def submit(workflow: WorkflowInput) -> Job:
            return await self.submit(workflow, timeout=timeout, **submit_options)  # type: ignore[arg-type]

        async for outcome in run_batch(workflows, submit, concurrency=concurrency):
            yield outcome

    async def attach(self, prompt_id: str, *, timeout: float | None = None) -> Job:
        """Follow a prompt one of the servers knows (submitted earlier, from anywhere).

        Returns the job of the server that has it (a plain client job: it does not move).

        Raises:
            JobLost: no server of the pool knows the prompt.

        """
        await self.start()
        for member in self._scheduler.members:
            if member.health is not Health.UP:
                continue
            if await member.client._live.backend.lookup(prompt_id) is not None:
                return await member.client.attach(prompt_id, timeout=timeout)
        raise JobLost(prompt_id, "no server of the pool knows it")

    def events(self) -> PoolEventStream:
        """Servers going down and coming back (:data:`~comfy_async.events.PoolEvent`).

        A bounded stream per caller (the oldest events are dropped when it falls behind);
        ``close()`` it, or use it as an async context manager.
        """
        return self._announcer.listen()

    def stats(self) -> dict[str, ServerStats]:
        """Each server's health, load, warm models and figures, by name."""
        stats = {}
        for member in self._scheduler.members:
            stats[member.name] = ServerStats(
                name=member.name,
                health=member.health.value,
                in_flight=len(member.entries),
                queued_elsewhere=member.external,
                warm_models=tuple(sorted(member.warm_models)),
                done=member.done,
                failed=member.failed,
                moved_away=member.moved_away,
                model_loads=member.model_loads,
                mean_duration=member.mean_duration,
                load_cost=member.load_cost,
            )
        return stats

    @property
    def held(self) -> int:
        """Jobs waiting in the pool for a server."""
        return len(self._scheduler.held)
