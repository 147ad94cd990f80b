"""The live part of a session: jobs, the WebSocket feeding them, and HTTP reconciliation.

:class:`LiveSession` owns the dispatcher, the (lazily opened) :class:`~comfy_async._live.connection.
Connection`, the jobs in flight and the background tasks. It implements

* **register before submit** (design invariant 1): a job is registered with the dispatcher and
  the socket is open before the POST, so events that arrive before the POST returns are kept;
  any POST failure removes the registration;
* **reconciliation** (invariant 5): after every reconnect, and for every job silent longer than
  its check interval, the jobs are looked up over HTTP. One read of the queue covers every job
  still queued or running; only the others are looked up one by one. The interval adapts: it
  doubles while a job stays alive and silent, and resets when the job speaks;
* a job found nowhere on consecutive checks ends lost, or **expired** when the oldest record the
  server keeps was queued after it (its record was pruned: one bounded read, never the whole
  history);
* **self-healing of an orphaned socket** (protocol doc §3.1): when HTTP shows that a job ended
  although the open socket never said so, the socket is replaced;
* clean shutdown: :meth:`aclose` optionally drains, then leaves no task, socket or registration.

It talks to the server only through a :class:`SessionBackend`, so it is independent of the REST
classes and can be driven by fakes in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import logging
import re
import time
import types
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from comfy_async._live.connection import Connection, ConnectionState, ReconnectInfo
from comfy_async._live.dispatch import Dispatcher, EventTap
from comfy_async._live.tasks import TaskSet
from comfy_async._transport.rest.prompts import new_prompt_id
from comfy_async.errors import ClientClosedError, ComfyError, ConfigurationError
from comfy_async.events import Event, Reconnected
from comfy_async.job import Job, JobBackend, JobSnapshot

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping

    from comfy_async.config import ClientOptions, ReconcilePolicy
    from comfy_async.models.prompts import PromptResponse

__all__ = [
    "LiveSession",
    "SessionBackend",
    "SubmitOptions",
    "checked_prompt_id",
    "drain_jobs",
    "fail_jobs",
]

logger = logging.getLogger("comfy_async.session")

# Individual lookups in flight at once during one reconciliation round.
_LOOKUPS_AT_ONCE = 16


def step_weights(prompt: Mapping[str, object]) -> Mapping[str, float]:
    """Each node's weight in a job's progress: its ``steps`` input if it has one, else 1.

    Read-only and shared: jobs of the same shape (a batch of one workflow, new seeds) get the
    same mapping, so a job in flight does not carry its own copy.
    """
    weights: list[tuple[str, float]] = []
    for node_id, node in prompt.items():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        steps = inputs.get("steps") if isinstance(inputs, dict) else None
        if isinstance(steps, int) and not isinstance(steps, bool) and steps > 1:
            weights.append((node_id, float(steps)))
        else:
            weights.append((node_id, 1.0))
    return _shared_weights(tuple(weights))


@functools.lru_cache(maxsize=256)
def _shared_weights(weights: tuple[tuple[str, float], ...]) -> Mapping[str, float]:
    return types.MappingProxyType(dict(weights))


def _follow_pace(policy: ReconcilePolicy) -> tuple[float, float]:
    """The first and the longest interval between checks of a job that gets no events.

    Never slower than a silent job's checks: a followed job has only these to learn its end.
    """
    first = min(policy.follow_every, policy.silent_after)
    return first, max(first, min(policy.max_follow_every, policy.max_silent_after))


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def checked_prompt_id(prompt_id: str | None) -> str:
    """``prompt_id``, or a fresh one; refused unless a canonical lowercase uuid.

    Raises:
        ConfigurationError: not in the form the server requires.

    """
    if prompt_id is None:
        return new_prompt_id()
    if not _CANONICAL_UUID.fullmatch(prompt_id):
        raise ConfigurationError(
            f"prompt_id {prompt_id!r} is not a canonical lowercase uuid (the server refuses it)"
        )
    return prompt_id


@dataclass(frozen=True, slots=True)
class SubmitOptions:
    """The body fields of a submission beyond the graph (protocol doc §4.1)."""

    number: float | None = None
    front: bool = False
    extra_data: Mapping[str, object] | None = None
    partial_execution_targets: tuple[str, ...] | None = None
    preview_method: str | None = None


class SessionBackend(JobBackend, Protocol):
    """What the live session needs from the server besides a WebSocket."""

    async def submit(
        self,
        prompt: Mapping[str, object],
        *,
        prompt_id: str,
        client_id: str,
        options: SubmitOptions,
    ) -> PromptResponse:
        """POST the prompt; an ambiguous failure is reconciled by looking the id up first."""
        ...

    async def in_flight(self) -> dict[str, str] | None:
        """Every queued or running prompt id → ``pending``/``running``; ``None`` if unknowable."""
        ...

    async def oldest_kept(self) -> float | None:
        """The queue number of the oldest finished prompt still on record; ``None`` if unknown."""
        ...


class LiveSession:
    """Jobs in flight, the WebSocket that feeds them, and their reconciliation over HTTP."""

    def __init__(
        self,
        backend: SessionBackend,
        make_connection: Callable[
            [Callable[[Event], None], Callable[[ReconnectInfo], Awaitable[None]]], Connection
        ],
        *,
        client_id: str,
        options: ClientOptions,
        on_reconnect: Callable[[ReconnectInfo], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        events_broadcast: bool = False,
        server: str | None = None,
    ) -> None:
        self.client_id = client_id
        self.server = server
        """The server's name for :attr:`Job.server` (its base URL)."""
        # Comfy Cloud sends every job's events to each socket of the account; a local server
        # only to the submitter, so a job attached from elsewhere is followed over HTTP.
        self._events_broadcast = events_broadcast
        self._backend = backend
        self._options = options
        self._clock = clock
        self._user_on_reconnect = on_reconnect
        self.dispatcher = Dispatcher(options.limits, clock)
        self.tasks = TaskSet("comfy_async")
        self._make_connection = make_connection
        self._connection: Connection | None = None
        self._jobs: dict[str, Job] = {}
        # Attached prompts may belong to other clients, whose events never reach this socket:
        # their silent end says nothing about the socket's health.
        self._attached: set[str] = set()
        # Attached prompts that can receive no event here: checked at a running job's pace.
        self._followed: set[str] = set()
        self._checks: dict[str, tuple[float, float]] = {}  # prompt id → (interval, next check)
        # When each job could next be due for a check (a heap, so a tick looks only at the jobs
        # whose time has come, not at every job in flight); stale entries are skipped.
        self._schedule: list[tuple[float, str]] = []
        self._scheduled: dict[str, float] = {}
        self._reconciler: asyncio.Task[None] | None = None
        self._reconciling: asyncio.Lock | None = None
        self._last_reopen = -float("inf")
        self._closed = False

    @property
    def connection(self) -> Connection:
        """The session's WebSocket (built on first use, inside the event loop; opened lazily)."""
        if self._connection is None:
            self._connection = self._make_connection(self.dispatcher.dispatch, self._reconnected)
        return self._connection

    @property
    def connection_state(self) -> ConnectionState:
        """The state of the WebSocket (``IDLE`` until first needed)."""
        return ConnectionState.IDLE if self._connection is None else self._connection.state

    @property
    def backend(self) -> SessionBackend:
        """The server operations the session's jobs use."""
        return self._backend

    @property
    def jobs(self) -> Mapping[str, Job]:
        """The jobs in flight, by prompt id."""
        return self._jobs

    # ------------------------------------------------------------------ jobs

    def _new_job(
        self,
        prompt_id: str,
        *,
        node_count: int | None,
        detach: bool,
        node_weights: Mapping[str, float] | None = None,
    ) -> Job:
        self._check_free(prompt_id)
        job = Job(
            prompt_id,
            backend=self._backend,
            tasks=self.tasks,
            limits=self._options.limits,
            on_settled=self._settled,
            node_count=node_count,
            node_weights=node_weights,
            detach=detach,
            clock=self._clock,
            server=self.server,
        )
        self._track(job)
        return job

    def _check_free(self, prompt_id: str) -> None:
        if self._closed:
            raise ClientClosedError("the session is closed")
        if prompt_id in self._jobs:
            raise ConfigurationError(f"prompt id {prompt_id} is already in flight in this session")

    def _track(self, job: Job) -> None:
        prompt_id = job.prompt_id
        self._jobs[prompt_id] = job
        self.dispatcher.register(prompt_id, job._feed)
        silent = self._options.reconcile.silent_after
        self._checks[prompt_id] = (silent, self._clock() + silent)
        self._schedule_check(prompt_id, job)

    def _settled(self, job: Job) -> None:
        self._jobs.pop(job.prompt_id, None)
        self._attached.discard(job.prompt_id)
        self._followed.discard(job.prompt_id)
        self._checks.pop(job.prompt_id, None)
        self._scheduled.pop(job.prompt_id, None)
        self.dispatcher.unregister(job.prompt_id)

    def _forget(self, job: Job) -> None:
        self._jobs.pop(job.prompt_id, None)
        self._attached.discard(job.prompt_id)
        self._followed.discard(job.prompt_id)
        self._checks.pop(job.prompt_id, None)
        self._scheduled.pop(job.prompt_id, None)
        self.dispatcher.unregister(job.prompt_id, finished=False)

    async def submit(
        self,
        prompt: Mapping[str, object],
        *,
        prompt_id: str | None = None,
        options: SubmitOptions = SubmitOptions(),
        timeout: float | None = None,
        detach: bool = False,
    ) -> Job:
        """Register a job, make sure the socket is open, then POST the prompt.

        Cancelling the caller while the POST is in flight removes the registration and cancels
        the prompt on the server if it was queued (unless ``detach``), so nothing runs unseen.
        """
        prompt_id = checked_prompt_id(prompt_id)
        job = self._new_job(
            prompt_id, node_count=len(prompt), node_weights=step_weights(prompt), detach=detach
        )
        await self._post(job, prompt, options, abandon=not detach)
        if timeout is not None:
            job._set_deadline(timeout)
        return job

    async def adopt(
        self, job: Job, prompt: Mapping[str, object], options: SubmitOptions = SubmitOptions()
    ) -> None:
        """Run a job made elsewhere (a pool's) on this session's server, under its prompt id.

        As :meth:`submit`, but the job, its backend and its outcome belong to its maker; when
        the POST fails or is cancelled the job is released again (and cancelled on the server if
        the POST may have reached it), so the maker can send it elsewhere.
        """
        self._check_free(job.prompt_id)
        if self.server is not None:
            job._placed(self.server)
        self._track(job)
        await self._post(job, prompt, options, abandon=True)

    def follow(self, job: Job) -> None:
        """Check ``job`` over HTTP at a running job's pace.

        Its events may go to another client (a duplicate submission of its id from elsewhere).
        """
        prompt_id = job.prompt_id
        if self._jobs.get(prompt_id) is not job or prompt_id in self._followed:
            return
        follow = _follow_pace(self._options.reconcile)[0]
        self._followed.add(prompt_id)
        self._checks[prompt_id] = (follow, self._clock() + follow)
        self._schedule_check(prompt_id, job)

    def ended(self, job: Job) -> None:
        """An adopted job ended: stop following it (its late events are dropped)."""
        if self._jobs.get(job.prompt_id) is job:
            self._settled(job)

    def release(self, job: Job) -> None:
        """Stop following ``job`` here without ending it (its maker moves it elsewhere)."""
        if self._jobs.get(job.prompt_id) is job:
            self._forget(job)

    async def _post(
        self, job: Job, prompt: Mapping[str, object], options: SubmitOptions, *, abandon: bool
    ) -> None:
        """Open the socket, POST the prompt; on any failure stop tracking the job."""
        prompt_id = job.prompt_id
        try:
            await self.connection.ensure_open()
            self._ensure_reconciler()
            response = await self._backend.submit(
                prompt, prompt_id=prompt_id, client_id=self.client_id, options=options
            )
        except asyncio.CancelledError:
            self._forget(job)
            if abandon:  # the POST may have reached the server: make sure it does not run
                with contextlib.suppress(ComfyError):
                    self.tasks.spawn(
                        self._backend.cancel(prompt_id, running=False),
                        name="abandon",
                        finish_on_close=True,
                    )
            raise
        except BaseException:
            self._forget(job)
            raise
        job._accepted(response.number, response.node_errors)

    async def attach(self, prompt_id: str, *, timeout: float | None = None) -> Job:
        """Follow a prompt submitted earlier (by this or another process) to its outcome.

        Events already missed are replaced by an immediate HTTP lookup; a prompt found nowhere on
        consecutive checks ends as lost.
        """
        if prompt_id in self._jobs:
            return self._jobs[prompt_id]
        job = self._new_job(prompt_id, node_count=None, detach=True)
        self._attached.add(prompt_id)
        if not self._events_broadcast:
            follow = _follow_pace(self._options.reconcile)[0]
            self._followed.add(prompt_id)
            self._checks[prompt_id] = (follow, self._clock() + follow)
            self._schedule_check(prompt_id, job)
        job._accepted(0, {})
        try:
            await self.connection.ensure_open()
        except BaseException:
            self._forget(job)
            raise
        self._ensure_reconciler()
        if timeout is not None:
            job._set_deadline(timeout)
        self.tasks.spawn(self._reconcile([job], source="attach"), name=f"attach {prompt_id}")
        return job

    def tap(self, *, include_jobs: bool = False) -> EventTap:
        """A session-wide stream of events (see :meth:`Dispatcher.tap`)."""
        return self.dispatcher.tap(include_jobs=include_jobs)

    # ------------------------------------------------------------------ reconciliation

    def _ensure_reconciler(self) -> None:
        if self._reconciler is None and not self._closed:
            self._reconciling = asyncio.Lock()
            self._reconciler = self.tasks.spawn(self._watch_silent_jobs(), name="reconciler")

    async def _watch_silent_jobs(self) -> None:
        policy = self._options.reconcile
        tick = min(policy.silent_after / 4, _follow_pace(policy)[0] / 2, 1.0)
        while True:
            await asyncio.sleep(tick)
            self._fail_jobs_if_connection_gave_up()
            if not policy.enabled or not self._jobs:
                continue
            due = self._due_jobs(self._clock())
            if due:
                await self._reconcile(due, source="silent job")
                for job in due:  # a failed lookup leaves a job due again at the next tick
                    if job.prompt_id in self._jobs and job.prompt_id not in self._scheduled:
                        self._schedule_check(job.prompt_id, job)

    def _schedule_check(self, prompt_id: str, job: Job) -> None:
        """Note the earliest time ``job`` can be due: its next check, and not while it talks."""
        silent = self._options.reconcile.silent_after
        next_check = self._checks.get(prompt_id, (silent, 0.0))[1]
        if prompt_id in self._followed:
            when = next_check  # it gets no events: its silence says nothing
        else:
            when = max(next_check, job._last_event_at + silent)
        self._scheduled[prompt_id] = when
        heapq.heappush(self._schedule, (when, prompt_id))

    def _due_jobs(self, now: float) -> list[Job]:
        """The jobs silent long enough whose check is due, looking only at those whose time came."""
        schedule, due = self._schedule, []
        while schedule and schedule[0][0] <= now:
            when, prompt_id = heapq.heappop(schedule)
            if self._scheduled.get(prompt_id) != when:
                continue  # superseded by a later entry, or the job ended
            del self._scheduled[prompt_id]
            job = self._jobs.get(prompt_id)
            if job is None:
                continue
            if self._due(prompt_id, job, now):
                due.append(job)
            else:
                self._schedule_check(prompt_id, job)
        return due

    def _due(self, prompt_id: str, job: Job, now: float) -> bool:
        next_check = self._checks.get(prompt_id, (0.0, 0.0))[1]
        silent = self._options.reconcile.silent_after
        if prompt_id in self._followed:
            return now >= next_check
        if job._last_event_at + silent > now:
            # it spoke recently: back to the base interval
            self._checks[prompt_id] = (silent, job._last_event_at + silent)
            return False
        return now >= next_check

    async def _reconcile(self, jobs: list[Job], *, source: str) -> None:
        """Look ``jobs`` up over HTTP and let each settle if its end was missed."""
        assert self._reconciling is not None
        policy = self._options.reconcile
        async with self._reconciling:
            try:
                alive = await self._backend.in_flight()
            except ComfyError as error:
                logger.info("reconciliation could not read the queue: %s", error)
                alive = None
            was_open = self.connection_state is ConnectionState.OPEN
            pending = [job for job in jobs if not job.done()]
            # One queue read answers for every job still queued or running.
            known = {
                job.prompt_id: JobSnapshot(status=alive[job.prompt_id])
                for job in pending
                if alive is not None and job.prompt_id in alive
            }
            limit = asyncio.Semaphore(_LOOKUPS_AT_ONCE)

            async def look_up(job: Job) -> JobSnapshot | ComfyError | None:
                async with limit:
                    try:
                        return await self._backend.lookup(job.prompt_id)
                    except ComfyError as error:
                        return error

            others = [job for job in pending if job.prompt_id not in known]
            found = await asyncio.gather(*(look_up(job) for job in others))
            answers: dict[str, JobSnapshot | ComfyError | None] = dict(known)
            answers.update(zip((job.prompt_id for job in others), found, strict=True))
            oldest = await self._oldest_kept_if_needed(pending, answers)
            settled_silently = 0
            for job in pending:
                answer = answers[job.prompt_id]
                if isinstance(answer, ComfyError):
                    logger.info("could not look up %s: %s", job.prompt_id, answer)
                    continue
                attached = job.prompt_id in self._attached
                # Found nowhere, and the server's history has moved past it: its record was
                # pruned (or it expired), which is not the same as a prompt that never ran.
                expired = (
                    oldest is not None
                    and not attached
                    and job.number is not None
                    and oldest > job.number
                )
                job._reconcile(answer, source=source, lost_after=policy.lost_after, expired=expired)
                self._back_off(job)
                if job.done() and answer is not None and answer.terminal and not attached:
                    settled_silently += 1
            if settled_silently and was_open and source == "silent job":
                self._suspect_orphaned_socket(settled_silently)

    async def _oldest_kept_if_needed(
        self, jobs: list[Job], answers: Mapping[str, JobSnapshot | ComfyError | None]
    ) -> float | None:
        """The server's oldest record, read once, only when a job is about to end as lost."""
        lost_after = self._options.reconcile.lost_after
        ending = [
            job
            for job in jobs
            if answers[job.prompt_id] is None
            and job.prompt_id not in self._attached
            and job.number is not None
            and job._missed_checks + 1 >= lost_after
        ]
        if not ending:
            return None
        try:
            return await self._backend.oldest_kept()
        except ComfyError as error:
            logger.info("could not read the oldest history record: %s", error)
            return None

    def _back_off(self, job: Job) -> None:
        policy = self._options.reconcile
        interval, _ = self._checks.get(job.prompt_id, (policy.silent_after, 0.0))
        if job._missed_checks and job.prompt_id not in self._followed:
            # Found nowhere: confirm soon instead of backing off, so it ends within an interval.
            self._checks[job.prompt_id] = (policy.silent_after, self._clock() + policy.silent_after)
            if job.prompt_id in self._jobs:
                self._schedule_check(job.prompt_id, job)
            return
        if job.prompt_id in self._followed:
            first, most = _follow_pace(policy)
            interval = min(max(interval * 1.5, first), most)
        else:
            interval = min(interval * 2, policy.max_silent_after)
        self._checks[job.prompt_id] = (interval, self._clock() + interval)
        if job.prompt_id in self._jobs:
            self._schedule_check(job.prompt_id, job)

    def _suspect_orphaned_socket(self, count: int) -> None:
        # The socket is open but missed the end of jobs: the server may have dropped its sid
        # (protocol doc §3.1). A new socket fixes that; at most once per silent interval. An
        # orphaned socket hears nothing at all: one still delivering frames is only behind the
        # server (a heavy stream), and replacing it would throw away what it is delivering.
        now = self._clock()
        silent_after = self._options.reconcile.silent_after
        if now - self._last_reopen < silent_after:
            return
        if now - self.connection.last_frame_at < silent_after:
            logger.info("%d job(s) ended ahead of their events; the socket is behind", count)
            return
        self._last_reopen = now
        logger.warning("%d job(s) ended without a word on the open socket: replacing it", count)
        self.connection.reopen()

    async def _reconnected(self, info: ReconnectInfo) -> None:
        marker = Reconnected(attempt=info.attempt, downtime=info.downtime)
        self.dispatcher.dispatch(marker)
        self.dispatcher.broadcast(
            lambda prompt_id: Reconnected(
                attempt=info.attempt, downtime=info.downtime, prompt_id=prompt_id
            )
        )
        if self._user_on_reconnect is not None:
            await self._user_on_reconnect(info)
        if self._jobs and self._reconciling is not None:
            jobs = list(self._jobs.values())
            self.tasks.spawn(self._reconcile(jobs, source="reconnect"), name="reconcile")

    def _fail_jobs_if_connection_gave_up(self) -> None:
        connection = self._connection
        if connection is None:
            return
        error = connection.error
        if connection.state is ConnectionState.FAILED and error is not None:
            for job in list(self._jobs.values()):
                job._fail(error)

    # ------------------------------------------------------------------ shutdown

    async def aclose(self, *, drain: bool = False, timeout: float | None = None) -> None:
        """Close the session; with ``drain``, first wait (up to ``timeout``) for jobs to end.

        Jobs still in flight then end with :class:`~comfy_async.errors.ClientClosedError` here
        (they go on running on the server: re-attach them later by prompt id).
        """
        if self._closed:
            return
        if drain:
            await drain_jobs(list(self._jobs.values()), timeout)
        self._closed = True
        fail_jobs(self._jobs.values(), "the session was closed before the job ended")
        if self._connection is not None:
            await self._connection.aclose()
        await self.tasks.aclose(grace=self._options.timeouts.connect or 10.0)
        self.dispatcher.close()
        self._jobs.clear()
        self._checks.clear()
        self._schedule.clear()
        self._scheduled.clear()


async def drain_jobs(jobs: Iterable[Job], timeout: float | None) -> None:
    """Wait (up to ``timeout``) for ``jobs`` to end; a closing session's ``drain``."""
    waiters = [asyncio.ensure_future(job.wait()) for job in jobs]
    if not waiters:
        return
    await asyncio.wait(waiters, timeout=timeout)
    for waiter in waiters:
        waiter.cancel()


def fail_jobs(jobs: Iterable[Job], reason: str) -> None:
    """End ``jobs`` with ``ClientClosedError(reason)``; they go on running on their server."""
    for job in list(jobs):
        job.detach()
        job._fail(ClientClosedError(reason))
