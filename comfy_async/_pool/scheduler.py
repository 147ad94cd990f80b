"""Placing a pool's jobs on its servers, and failover with exactly one outcome per job.

The scheduler holds every job client-side until a healthy server has room (its queue is kept
``max_queue`` deep, counting other clients' prompts), then lets :mod:`~comfy_async._pool.routing`
choose which job that server takes. The job is POSTed there under its client-minted prompt id
and that server's session feeds it (:meth:`LiveSession.adopt`).

Failover keeps three promises:

* **one outcome** — a job is one :class:`~comfy_async.job.Job` whatever happens; a server that
  loses it (gone from its queue and history, its socket given up, the server down) offers it
  back to the pool (the job's rescuer) instead of ending it;
* **nothing left to run twice** — a job moved off a server is remembered there; when the server
  answers again, those prompts are deleted from its queue (or interrupted, if running) *before*
  the server is re-admitted and gets any new job;
* **retries by policy** — a job that had not started moves freely (it never ran); one that was
  running is run again elsewhere only within its ``retries``, else it ends with
  :class:`~comfy_async.errors.JobLost`.

Health comes from a probe per server (``GET /prompt``, which also gives the server's queue
length) and from its WebSocket: a socket that cannot reconnect for ``down_after`` seconds, or
``failures_to_trip`` failed probes or POSTs in a row, take the server down
(:mod:`~comfy_async._pool.breaker`).

A Comfy API v2 server is placed, probed and purged in the contract's terms
(:mod:`~comfy_async._pool.v2_server`); a submission to it whose answer was lost is never sent
elsewhere while that server may still answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from comfy_async._live.connection import ConnectionState
from comfy_async._live.duplicates import keep_one_entry
from comfy_async._live.tasks import TaskSet
from comfy_async._pool.admission import FairQueue
from comfy_async._pool.breaker import Health
from comfy_async._pool.held import HeldJobs
from comfy_async._pool.routing import GroupView, ServerView, pick
from comfy_async._pool.v2_server import Attempt, attempt_outcome, learns_from
from comfy_async.errors import (
    BadRequestError,
    ClientClosedError,
    ComfyError,
    ConfigurationError,
    JobCancelled,
    JobLost,
)
from comfy_async.events import JobAdmitted, JobMoved, ServerDown, ServerUp
from comfy_async.job import JobResult, JobState

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from comfy_async._pool.announcer import Announcer
    from comfy_async._pool.held import Demand, Entry
    from comfy_async._pool.member import Member
    from comfy_async._pool.v2_server import V2Server
    from comfy_async.config import AdmissionPolicy
    from comfy_async.job import Job

__all__ = ["Scheduler", "SchedulerSettings"]

logger = logging.getLogger("comfy_async.pool")

# How often placement looks again while jobs are held and a server has room (a held group
# may become urgent with time alone).
_MAX_TICK = 0.5
_MIN_TICK = 0.02


@dataclass(frozen=True, slots=True)
class SchedulerSettings:
    """The pool's health and failover options (see :class:`~comfy_async.pool.ComfyPool`)."""

    probe_every: float = 1.0
    probe_timeout: float = 5.0
    down_after: float = 10.0
    retries: int = 1
    failures_to_trip: int = 2

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ConfigurationError(f"retries must not be negative, got {self.retries!r}")
        if min(self.probe_every, self.probe_timeout, self.down_after) <= 0:
            raise ConfigurationError("probe_every, probe_timeout and down_after must be positive")
        if self.failures_to_trip < 1:
            raise ConfigurationError(
                f"failures_to_trip must be at least 1, not {self.failures_to_trip}"
            )


class Scheduler:
    """Held jobs, their placement, the health probes and failover."""

    def __init__(
        self,
        members: Sequence[Member],
        *,
        settings: SchedulerSettings,
        announcer: Announcer,
        admission: AdmissionPolicy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.members = list(members)
        self.by_name = {member.name: member for member in self.members}
        self.settings = settings
        self.fair = FairQueue(admission)
        """Jobs waiting for their turn (admission, fair between tenants)."""
        self.held = HeldJobs()
        """Jobs that had their turn, waiting for a server with room (routing)."""
        self._placements = 0
        self.entries: dict[str, Entry] = {}
        self.tasks = TaskSet("comfy_async.pool")
        self._announcer = announcer
        self._clock = clock
        self._wake = asyncio.Event()
        self._closing = False
        self.moves = 0
        self.retried = 0
        self.equip: Callable[[], None] | None = None
        """Called after each placement round: starts the installs held jobs wait for
        (``auto_install``; ``None``: off)."""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Read every server's catalogue (those that do not answer start down), then run."""
        await asyncio.gather(*(self._learn(member) for member in self.members))
        self.tasks.spawn(self._place_forever(), name="placement")
        for member in self.members:
            self.tasks.spawn(self._watch(member), name=f"watch {member.name}")

    async def _learn(self, member: Member) -> None:
        try:
            async with asyncio.timeout(self.settings.probe_timeout):
                if member.v2 is not None:  # no catalogue to read: whether it answers
                    await member.v2.probe()
                    return
                member.catalogue = await member.client.nodes(refresh=member.catalogue is not None)
        except (ComfyError, TimeoutError) as error:
            reason = f"its catalogue could not be read: {_describe(error)}"
            member.breaker.failures = member.breaker.failures_to_trip - 1
            if member.breaker.failed(self._clock(), reason):
                self._went_down(member)

    async def aclose(self) -> None:
        """Stop placing and probing; jobs still held end with ``ClientClosedError``."""
        self._closing = True
        waiting = [entry for entry in self.entries.values() if entry.member is None]
        for entry in waiting:
            if not self.fair.remove(entry):
                self.held.remove(entry)
            entry.job._fail(ClientClosedError("closed before the job was sent to a server"))
        await self.tasks.aclose(grace=1.0)

    def wake(self) -> None:
        """Something changed (a job held or ended, a server's health): place again."""
        self._wake.set()

    # ------------------------------------------------------------------ holding

    def hold(self, entry: Entry) -> None:
        """Hold a new job (its tenant's limits checked) until its turn and a server come."""
        self.fair.check(entry.tenant, self._clock())
        self.entries[entry.job.prompt_id] = entry
        self.fair.push(entry, self._clock())
        self.wake()

    def cancel_held(self, entry: Entry) -> bool:
        """Cancel a job still waiting client-side: no server ever hears of it."""
        if not self.fair.remove(entry) and not self.held.remove(entry):
            return False
        entry.job._settle(JobCancelled(entry.job.prompt_id))
        return True

    def position(self, entry: Entry) -> int | None:
        """Its place in line (1: next to run), counting what waits before it; see Job.position.

        Other clients' prompts on the servers count as ahead (the server's queue length is all
        that is known of them).
        """
        job = entry.job
        if job.done() or job.state in (JobState.RUNNING, JobState.FINISHING):
            return None
        waiting = (JobState.SUBMITTING, JobState.QUEUED)
        member = self.by_name.get(entry.member) if entry.member is not None else None
        if member is not None:  # queued on a server: what that server runs first
            ahead = member.external + sum(
                1
                for other in member.entries.values()
                if other.placed_seq < entry.placed_seq and other.job.state in waiting
            )
            return ahead + 1
        queued = sum(
            1
            for member in self.members
            for other in member.entries.values()
            if other.job.state in waiting
        )
        others = sum(member.external for member in self.members)
        if entry.released:
            admitted = sum(1 for other in self.held if other.seq < entry.seq)
            return queued + others + admitted + 1
        in_line = self.fair.position(entry)
        if in_line is None:
            return None
        return queued + others + len(self.held) + in_line + 1

    # ------------------------------------------------------------------ placement

    async def _place_forever(self) -> None:
        while True:
            tick = self._tick()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(tick):
                    await self._wake.wait()
            self._wake.clear()
            self._release()
            self._place()
            if self.equip is not None:
                self.equip()

    def _release(self) -> None:
        """Let waiting jobs have their turn, in the fair order.

        As many as the servers have room for, and one more per server so routing has a choice.
        """
        up = [member for member in self.members if member.health is Health.UP]
        window = sum(member.room for member in up) + max(1, len(up))
        now = self._clock()
        while self.fair and len(self.held) < window:
            entry = self.fair.pop()
            if entry is None:
                break
            entry.released = True
            job = entry.job
            job._admitted()
            job._feed(
                JobAdmitted(
                    prompt_id=job.prompt_id, waited=now - entry.held_since, tenant=entry.tenant
                )
            )
            self.held.push(entry)

    def _tick(self) -> float | None:
        if not self.held or not any(member.room for member in self.members):
            return None
        fastest = min(member.mean_duration for member in self.members)
        return min(_MAX_TICK, max(_MIN_TICK, fastest / 4))

    def _place(self) -> None:
        """Give each server with room the job routing picks for it, until none can take one."""
        while self.held:
            ready = sorted(
                (member for member in self.members if member.room > 0),
                key=lambda member: member.mean_duration,
            )
            if not ready:
                return
            groups = self.held.groups()
            now = self._clock()
            for member in ready:
                views = [self._view(member, demand, held, now) for demand, held in groups]
                server = ServerView(
                    member.name, member.warm_models, member.mean_duration, member.load_cost
                )
                choice = pick(server, views)
                if choice is not None:
                    entry = self.held.pop(groups[choice.index][0])
                    self._send(entry, member, choice.reason)
                    break
            else:
                return

    def _view(self, member: Member, demand: Demand, held: Sequence[Entry], now: float) -> GroupView:
        models = demand.needs.model_names
        throughput = 0.0
        for other in self.members:
            if (
                other is not member
                and other.health is Health.UP
                and models <= other.warm_models
                and self._can_run(other, demand)
            ):
                throughput += 1.0 / max(other.mean_duration, 1e-6)
        return GroupView(
            models=models,
            backlog=len(held),
            waited=now - held[0].held_since,
            warm_throughput=throughput,
            capable=self._can_run(member, demand),
        )

    @staticmethod
    def _can_run(member: Member, demand: Demand) -> bool:
        return demand.tags <= member.settings.tags and member.lacks(demand.needs) == []

    def _send(self, entry: Entry, member: Member, reason: str) -> None:
        job = entry.job
        entry.member = member.name
        self._placements += 1
        entry.placed_seq = self._placements
        member.entries[job.prompt_id] = entry
        member.placed(entry)
        logger.debug("job %s to %s: %s", job.prompt_id, member.name, reason)
        self.tasks.spawn(self._post(entry, member), name=f"place {job.prompt_id}")

    async def _post(self, entry: Entry, member: Member) -> None:
        if member.v2 is not None:
            await self._post_v2(entry, member, member.v2)
            return
        job = entry.job
        try:
            await member.client._live.adopt(job, entry.prompt, entry.options)
        except BadRequestError as error:  # the server refused the graph: that is its outcome
            member.entries.pop(job.prompt_id, None)
            job._settle(error)
            return
        except ComfyError as error:  # unreachable, 5xx, closed: the POST may or may not be there
            member.purge[job.prompt_id] = False
            self._take_back(entry, member, f"submitting failed: {_describe(error)}", started=False)
            self._failed(member, f"a submission failed: {_describe(error)}")
            return
        if entry.idempotent:
            await keep_one_entry(member.client.queue, member.client._live, job)
        if job._cancel_requested:
            # cancelled (or timed out) while the POST was in flight: make sure it does not run
            with contextlib.suppress(ComfyError):
                await member.client._live.backend.cancel(job.prompt_id, running=False)
            job._settle(JobCancelled(job.prompt_id))  # no-op if it has its outcome already

    # ------------------------------------------------------------------ endings

    def ended(self, job: Job) -> None:
        """A pool job settled: free its server's slot and learn from how it went."""
        entry = self.entries.pop(job.prompt_id, None)
        if entry is None:
            return
        self.fair.ended(entry)
        member = self.by_name.get(entry.member) if entry.member is not None else None
        if member is not None:
            member.entries.pop(job.prompt_id, None)
            live = member.client._live_session
            if live is not None:
                live.ended(job)
            if member.v2 is not None:
                member.v2.ended(job)
            outcome = job._outcome.result()
            if isinstance(outcome, JobResult):
                duration = outcome.duration
                load = member.finished(entry, duration)
                if load is not None:
                    for other in self.members:
                        other.learn_load(load)
            elif not isinstance(outcome, JobCancelled):
                member.failed += 1
        self.wake()

    def rescue(self, job: Job, error: ComfyError) -> bool:
        """A server lost ``job`` (or went away): run it elsewhere if the policy allows."""
        entry = self.entries.get(job.prompt_id)
        if self._closing or entry is None or entry.member is None:
            return False
        member = self.by_name[entry.member]
        started = job.state in (JobState.RUNNING, JobState.FINISHING)
        if started and entry.retries <= 0:
            return False
        self._take_back(entry, member, _describe(error), started=started)
        self._failed(member, f"it lost a job: {_describe(error)}")
        return True

    def _take_back(self, entry: Entry, member: Member, reason: str, *, started: bool) -> None:
        """Move ``entry`` off ``member`` and hold it again, first in its group."""
        job = entry.job
        member.entries.pop(job.prompt_id, None)
        live = member.client._live_session
        if live is not None:
            live.release(job)
        if member.v2 is not None:
            member.v2.release(job)  # its server job is cancelled there once it answers
        member.purge[job.prompt_id] = started or member.purge.get(job.prompt_id, False)
        member.moved_away += 1
        if started:
            entry.retries -= 1
            self.retried += 1
        self.moves += 1
        entry.member = None
        job._moved()
        job._feed(
            JobMoved(prompt_id=job.prompt_id, server=member.name, reason=reason, started=started)
        )
        logger.info("job %s moved off %s (%s)", job.prompt_id, member.name, reason)
        self.held.push(entry, front=True)
        self.wake()

    # ------------------------------------------------------------------ health

    def _failed(self, member: Member, reason: str) -> None:
        if member.breaker.failed(self._clock(), reason):
            self._went_down(member)

    def _went_down(self, member: Member) -> None:
        """``member`` is down: move its jobs (those not being submitted or finishing)."""
        reason = member.breaker.reason
        moved = 0
        for entry in list(member.entries.values()):
            job = entry.job
            if job.state in (JobState.SUBMITTING, JobState.FINISHING) or job.done():
                continue  # a POST in flight settles itself; a finishing job is reading its result
            moved += 1
            job._fail(JobLost(job.prompt_id, f"its server {member.name} went down"))
        logger.warning("server %s is down (%s); %d job(s) moved", member.name, reason, moved)
        self._announcer.announce(ServerDown(server=member.name, reason=reason, moved=moved))
        self.wake()

    async def _watch(self, member: Member) -> None:
        """Probe ``member`` forever; bring it down, or back once its queue is clean."""
        while True:
            await self._probe(member)
            self._check_socket(member)
            await asyncio.sleep(self.settings.probe_every)

    async def _probe(self, member: Member) -> None:
        if member.rebooting:
            return  # a planned restart: its installer waits for it to come back
        now = self._clock()
        queued = 0  # a v2 server shows no queue: only the pool's jobs there are known
        try:
            async with asyncio.timeout(self.settings.probe_timeout):
                if member.v2 is not None:
                    await member.v2.probe()
                else:
                    info = await member.client.prompts.info()
                    queued = info.exec_info.queue_remaining
        except (ComfyError, TimeoutError) as error:
            self._failed(member, f"it does not answer: {_describe(error)}")
            return
        ours = sum(
            1
            for entry in member.entries.values()
            if entry.job.state not in (JobState.SUBMITTING, JobState.HELD)
        )
        member.external = max(0, queued - ours)
        if member.v2 is not None and member.v2.moved and member.health is Health.UP:
            self.tasks.spawn(self._purge_v2(member, member.v2), name=f"purge {member.name}")
        if member.breaker.succeeded(now):
            await self._recover(member)
        elif member.health is Health.UP and member.room:
            self.wake()

    def _check_socket(self, member: Member) -> None:
        live = member.client._live_session
        connects = 0 if live is None or live._connection is None else live._connection.connects
        if connects > member.connects_seen:
            if connects > 1 and member.entries:  # it reconnected since the last look
                self.tasks.spawn(self._recheck(member), name=f"recheck {member.name}")
            member.connects_seen = connects
        if live is None or not member.entries:
            member.socket_down_since = None
            return
        if live.connection_state in (ConnectionState.RECONNECTING, ConnectionState.FAILED):
            now = self._clock()
            since = member.socket_down_since
            if since is None:
                member.socket_down_since = now
            elif now - since >= self.settings.down_after:
                member.socket_down_since = now
                self._failed(member, f"its WebSocket has been down for {now - since:.1f}s")
        else:
            member.socket_down_since = None

    async def _recheck(self, member: Member) -> None:
        """Its socket is back: a job of ours it no longer knows of is lost there, and moves.

        A server that restarted before the breaker tripped has lost its queue; without this
        look its jobs would wait for the slow silent-job checks to find them missing.
        """
        live = member.client._live_session
        jobs = [
            entry.job
            for entry in member.entries.values()
            if not entry.job.done() and entry.job.state not in _NOT_THERE_YET
        ]
        if live is None or not jobs:
            return
        try:
            queue = await member.client.queue.get()
            present = {item.prompt_id for item in queue.queue_running}
            present |= {item.prompt_id for item in queue.queue_pending}
            for job in jobs:
                if job.prompt_id in present or job.done():
                    continue
                if await live.backend.lookup(job.prompt_id) is None and not job.done():
                    job._fail(JobLost(job.prompt_id, f"its server {member.name} forgot it"))
        except ComfyError as error:
            logger.info("could not look up the jobs on %s again: %s", member.name, error)

    async def _recover(self, member: Member) -> None:
        """It answers again: clear what was moved off it, then re-admit it."""
        downtime = self._clock() - member.breaker.down_since
        purged = 0
        try:
            if member.v2 is not None:
                purged = await member.v2.purge()
                member.purge.clear()
            elif member.purge:
                queue = await member.client.queue.get()
                running = {item.prompt_id for item in queue.queue_running}
                pending = {item.prompt_id for item in queue.queue_pending}
                stale = [pid for pid in member.purge if pid in pending]
                if stale:
                    await member.client.queue.delete(stale)
                for prompt_id in member.purge:
                    if prompt_id in running:
                        await member.client.queue.interrupt(prompt_id)
                purged = len(stale) + sum(1 for pid in member.purge if pid in running)
                member.purge.clear()
            if member.catalogue is None and member.v2 is None:
                member.catalogue = await member.client.nodes()
        except ComfyError as error:
            self._failed(member, f"clearing its queue failed: {_describe(error)}")
            return
        member.forget_warm()  # a server that came back may have restarted: nothing is warm
        member.breaker.readmit(self._clock())
        logger.warning("server %s is back after %.1fs (%d purged)", member.name, downtime, purged)
        self._announcer.announce(ServerUp(server=member.name, downtime=downtime, purged=purged))
        self.wake()

    # ------------------------------------------------------------------ Comfy API v2 servers

    async def _post_v2(self, entry: Entry, member: Member, v2: V2Server) -> None:
        """Submit to a v2 server, each attempt's outcome deciding (see ``v2_server``).

        Refused: the job's outcome, unless the server cannot run the workflow and another can
        (the refusal is remembered, the job moves). Never created: the job moves. Answer lost:
        its key is presented here again every ``probe_every`` seconds; a claimed key means
        the job exists there, out of reach (it ends with ``JobLost`` and runs nowhere else).
        Still unknown after ``down_after``: it moves only within its retries (it may run
        there), else it ends with ``JobLost``.
        """
        job = entry.job
        job._placed(v2.session.server)
        unknown_since: float | None = None
        while True:
            if job.done():
                return
            if job._cancel_requested and unknown_since is not None:
                job._settle(JobCancelled(job.prompt_id))  # presenting the key could only run it
                return
            try:
                created = await v2.submit(job, entry.prompt, entry.options.extra_data)
                break
            except ComfyError as error:
                failure = error
                outcome = attempt_outcome(error)
                reason = _describe(error)
                if outcome is Attempt.NOT_SENT and unknown_since is not None:
                    outcome = Attempt.UNKNOWN  # an earlier attempt may have created it
            if outcome is Attempt.REFUSED:
                self._refused_v2(entry, member, v2, failure)
                return
            if outcome is Attempt.CLAIMED:
                member.entries.pop(job.prompt_id, None)
                job._rescue = None  # it exists there: running it elsewhere would run it twice
                job._settle(
                    JobLost(
                        job.prompt_id,
                        f"{member.name} holds its Idempotency-Key: an earlier submission created "
                        "the job there, and the Comfy API v2 has no way to find a job by its key; "
                        "it was not run anywhere else",
                    )
                )
                return
            if outcome is not Attempt.UNKNOWN:
                if outcome is Attempt.BUSY:
                    await asyncio.sleep(self.settings.probe_every)  # come back later
                else:
                    self._failed(member, f"a submission failed: {reason}")
                if job._cancel_requested:
                    job._settle(JobCancelled(job.prompt_id))  # nothing was created: done
                elif not job.done():
                    self._take_back(entry, member, f"not submitted: {reason}", started=False)
                return
            now = self._clock()
            if unknown_since is None:
                unknown_since = now
                self._failed(member, f"a submission's answer was lost: {reason}")
            if now - unknown_since >= self.settings.down_after:
                self._unknown_v2(entry, member, reason)
                return
            await asyncio.sleep(self.settings.probe_every)
        if job._cancel_requested or job.done():
            # cancelled (or timed out) while the POST was in flight: make sure it does not run
            with contextlib.suppress(ComfyError):
                await v2.session.cancel_job(created)
            job._settle(JobCancelled(job.prompt_id))

    def _refused_v2(self, entry: Entry, member: Member, v2: V2Server, error: ComfyError) -> None:
        job = entry.job
        if learns_from(error):
            v2.refuse(entry.demand.needs, error)
            others = [m for m in self.members if m is not member and self._can_run(m, entry.demand)]
            if others:
                self._take_back(entry, member, f"refused: {_describe(error)}", started=False)
                return
        member.entries.pop(job.prompt_id, None)
        job._settle(error)

    def _unknown_v2(self, entry: Entry, member: Member, reason: str) -> None:
        """A submission's outcome stayed unknown: move it within its retries, else end it."""
        job = entry.job
        if entry.retries > 0:
            self._take_back(entry, member, f"its submission had no answer: {reason}", started=True)
            return
        member.entries.pop(job.prompt_id, None)
        job._rescue = None
        job._settle(
            JobLost(
                job.prompt_id,
                f"its submission to {member.name} had no answer for "
                f"{self.settings.down_after:g}s: it may run there, and with no retries left it "
                "is not run anywhere else",
            )
        )

    async def _purge_v2(self, member: Member, v2: V2Server) -> None:
        """Cancel on a v2 server what was moved off it (it answers again)."""
        try:
            purged = await v2.purge()
        except ComfyError as error:
            logger.info("could not cancel the moved jobs on %s yet: %s", member.name, error)
            return
        if purged:
            logger.info("cancelled %d job(s) on %s that had moved elsewhere", purged, member.name)


_NOT_THERE_YET = (JobState.HELD, JobState.SUBMITTING, JobState.FINISHING)


def _describe(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
