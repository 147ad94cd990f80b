"""The pool's job API over its members: what ``ComfyPool`` and an admitting client share.

A :class:`PoolCore` takes prepared API-format graphs: it checks what they need against the
servers (failing at once when none can run one), makes each a held :class:`~comfy_async.job.Job`
whose backend follows it from server to server, and hands it to the scheduler. ``ComfyPool`` is
this over many servers; a ``ComfyClient`` with ``admission=`` is this over itself.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from comfy_async._live.session import (
    SubmitOptions,
    checked_prompt_id,
    drain_jobs,
    fail_jobs,
    step_weights,
)
from comfy_async._pool.announcer import Announcer, PoolEventStream
from comfy_async._pool.backend import PoolJobBackend
from comfy_async._pool.breaker import Health
from comfy_async._pool.held import Demand, Entry
from comfy_async._pool.installer import Installer
from comfy_async._pool.needs import needs_of
from comfy_async._pool.scheduler import Scheduler, SchedulerSettings
from comfy_async.errors import (
    ClientClosedError,
    ComfyError,
    ConfigurationError,
    JobLost,
    NoCapableServerError,
)
from comfy_async.job import Job

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from comfy_async._pool.member import Member
    from comfy_async.config import AdmissionPolicy, AutoInstall, StreamLimits

__all__ = ["PoolCore"]


class PoolCore:
    """Held jobs over a set of members, with admission, routing and failover."""

    def __init__(
        self,
        members: Sequence[Member],
        *,
        settings: SchedulerSettings,
        admission: AdmissionPolicy,
        limits: StreamLimits,
        auto_install: AutoInstall | None = None,
    ) -> None:
        if not members:
            raise ConfigurationError("a pool needs at least one server")
        names = [member.name for member in members]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"two servers of the pool have the same name: {names}")
        self.announcer = Announcer()
        self.scheduler = Scheduler(
            members, settings=settings, announcer=self.announcer, admission=admission
        )
        self.installer: Installer | None = None
        if auto_install is not None:
            self.installer = Installer(auto_install, self.scheduler, self.announcer)
            self.scheduler.equip = self.installer.consider
        self._limits = limits
        self._demands: dict[Demand, Demand] = {}
        self._started = False
        self.closed = False

    @property
    def members(self) -> list[Member]:
        """The servers, in the order given."""
        return self.scheduler.members

    async def start(self) -> None:
        """Read every server's catalogue and start probing (once)."""
        if self.closed:
            raise ClientClosedError("the pool is closed")
        if not self._started:
            self._started = True
            await self.scheduler.start()

    async def aclose(self, *, drain: bool, timeout: float | None) -> None:
        """Stop; jobs not ended end with ``ClientClosedError`` (see ``ComfyPool.aclose``)."""
        if self.closed:
            return
        self.closed = True
        scheduler = self.scheduler
        if drain:
            await drain_jobs([entry.job for entry in scheduler.entries.values()], timeout)
        await scheduler.aclose()
        jobs = [entry.job for entry in scheduler.entries.values()]
        fail_jobs(jobs, "the pool was closed before the job ended")
        self.announcer.close()

    def _shared(self, demand: Demand) -> Demand:
        """One instance per distinct demand: held jobs of one workflow share it."""
        if len(self._demands) > 4096:
            self._demands.clear()
        return self._demands.setdefault(demand, demand)

    def capable(self, demand: Demand) -> Member | None:
        """A server that can run ``demand`` (``None``: not known yet, or after an install).

        ``None`` when only servers not read yet might run it, or when one will once it installs
        what it lacks (``auto_install``).

        Raises:
            NoCapableServerError: every server was read, and none has what it needs (nor can be
                made to have it: :class:`~comfy_async.errors.AutoInstallError` when installs
                were tried and failed).

        """
        missing: dict[str, list[str]] = {}
        unknown = False
        for member in self.members:
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
        installer = self.installer
        if installer is None:
            raise NoCapableServerError(missing)
        refusal = installer.refusal(demand, missing)
        if refusal is not None:
            raise refusal
        return None  # held until a server installs what it lacks

    def submit(
        self,
        prompt: Mapping[str, object],
        *,
        prompt_id: str | None,
        options: SubmitOptions,
        tenant: str | None = None,
        priority: int = 0,
        tags: Iterable[str] = (),
        retries: int | None = None,
        timeout: float | None = None,
        detach: bool = False,
    ) -> Job:
        """Hold a prepared graph and return its job (see ``ComfyPool.submit``)."""
        if self.closed:
            raise ClientClosedError("the pool is closed")
        scheduler = self.scheduler
        prompt_id = checked_prompt_id(prompt_id)
        if prompt_id in scheduler.entries:
            raise ConfigurationError(f"prompt id {prompt_id} is already in flight in this pool")
        if retries is not None and retries < 0:
            raise ConfigurationError(f"retries must not be negative, got {retries!r}")
        demand = self._shared(Demand(needs_of(prompt), frozenset(tags)))
        self.capable(demand)
        backend = PoolJobBackend(scheduler)
        job = Job(
            prompt_id,
            backend=backend,
            tasks=scheduler.tasks,
            limits=self._limits,
            on_settled=scheduler.ended,
            node_count=len(prompt),
            node_weights=step_weights(prompt),
            detach=detach,
            held=True,
        )
        job._rescue = scheduler.rescue
        job._place_in_line = backend.position
        entry = Entry(
            job=job,
            prompt=prompt,
            options=options,
            demand=demand,
            retries=scheduler.settings.retries if retries is None else retries,
            held_since=time.monotonic(),
            tenant=tenant,
            priority=priority,
        )
        backend.entry = entry
        scheduler.hold(entry)
        if timeout is not None:
            job._set_deadline(timeout)
        return job

    def mark_idempotent(self, prompt_id: str) -> None:
        """Resolve duplicates of this job's id once it is POSTed (see ``submit_or_attach``)."""
        entry = self.scheduler.entries.get(prompt_id)
        if entry is not None:
            entry.idempotent = True

    async def known(self, prompt_id: str) -> Member | None:
        """The first healthy server that has ``prompt_id`` (queued, running or done)."""
        for member in self.members:
            if member.health is not Health.UP:
                continue
            try:
                found = await member.backend.lookup(prompt_id)
            except ComfyError:
                continue
            if found is not None:
                return member
        return None

    async def attach(self, prompt_id: str, *, timeout: float | None) -> Job:
        """The job of the server that knows ``prompt_id`` (see ``ComfyPool.attach``)."""
        await self.start()
        member = await self.known(prompt_id)
        if member is None:
            raise JobLost(prompt_id, "no server of the pool knows it")
        return await member.client.attach(prompt_id, timeout=timeout)

    def events(self) -> PoolEventStream:
        """A new listener of the pool's events."""
        return self.announcer.listen()
