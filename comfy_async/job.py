"""Job handles: one submitted prompt, its stream of events, its progress and exactly one outcome.

A :class:`Job` is fed events synchronously by the dispatcher (:meth:`Job.feed`, never blocking)
and settles exactly once (design invariant 4) on one of:

* **success**: ``execution_success``; outputs are read from the server after the finish marker
  (history is written before it, protocol doc §6) and merged with ``executed`` events, so a fully
  cached run has outputs too → :meth:`Job.result` returns a :class:`JobResult`;
* **execution error** (not ``ExecutionBlocked``, which is not terminal) → raises
  :class:`~comfy_async.errors.ExecutionError`;
* **interrupted** → :class:`~comfy_async.errors.JobInterrupted`, or
  :class:`~comfy_async.errors.JobCancelled` when this client asked for it;
* **lost**: found nowhere on consecutive HTTP checks → :class:`~comfy_async.errors.JobLost`;
* **expired**: found nowhere, but the oldest record the server keeps was queued after it (its
  record was pruned from a bounded history) → :class:`~comfy_async.errors.JobExpired`, with the
  outputs its ``executed`` events showed;
* **timeout**: a deadline passed → :class:`~comfy_async.errors.JobTimeout`.

Events are hints and HTTP is the truth (invariant 5): :meth:`Job.reconcile` takes what the
server says about the job (a :class:`JobSnapshot`) and settles a job whose terminal event was
missed. The job talks to the server only through a :class:`JobBackend`, so it does not depend on
the WebSocket transport (design §6).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from comfy_async._live.dispatch import JobStream, StreamStats
from comfy_async.errors import (
    ClientClosedError,
    ComfyError,
    ExecutionError,
    JobCancelled,
    JobExpired,
    JobInterrupted,
    JobLost,
    JobTimeout,
    TransportError,
)
from comfy_async.events import (
    Event,
    Executed,
    Executing,
    ExecutionCached,
    ExecutionFailed,
    ExecutionInterrupted,
    ExecutionStart,
    ExecutionSuccess,
    JobReconciled,
    PreviewImage,
    Progress,
    ProgressState,
)
from comfy_async.models.files import OutputFile, output_files

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping, Sequence
    from pathlib import Path

    from comfy_async._live.tasks import TaskSet
    from comfy_async.config import StreamLimits
    from comfy_async.events import NodeProgress
    from comfy_async.models.history import ExecutionErrorInfo
    from comfy_async.models.prompts import NodeError

__all__ = ["Job", "JobBackend", "JobProgress", "JobResult", "JobSnapshot", "JobState"]


class JobState(Enum):
    """Where a job is, as far as this client knows.

    ``HELD`` jobs wait client-side for their turn (admission, fair between tenants);
    ``ADMITTED`` ones had it and wait for a server with room (a pool's routing). Both exist only
    with admission (a :class:`~comfy_async.pool.ComfyPool`, or a client with ``admission=``); the
    others are on their way to, or on, a server.
    """

    HELD = "held"
    ADMITTED = "admitted"
    SUBMITTING = "submitting"
    QUEUED = "queued"
    RUNNING = "running"
    FINISHING = "finishing"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class JobSnapshot:
    """What the server says about a job (from ``/api/jobs/{id}``, or history and queue).

    ``status`` is one of ``pending``, ``running``, ``success``, ``error``, ``interrupted``,
    ``cancelled``, ``lost`` (a state Comfy Cloud reports). A job found nowhere is ``None``
    instead of a snapshot.
    """

    status: str
    outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    error: ExecutionErrorInfo | ExecutionFailed | None = None
    cached_nodes: tuple[str, ...] = ()
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def terminal(self) -> bool:
        """Whether the job has ended."""
        return self.status not in ("pending", "running")


class JobBackend(Protocol):
    """The server operations a job needs (HTTP on a ComfyUI server; another backend may differ)."""

    @property
    def finish_marker(self) -> bool:
        """Whether the server sends the finish marker after writing history."""
        ...

    async def lookup(self, prompt_id: str) -> JobSnapshot | None:
        """Return what the server says about the job, or ``None`` if it is found nowhere."""
        ...

    async def cancel(self, prompt_id: str, *, running: bool) -> bool:
        """Cancel the job on the server, never globally; whether anything was cancelled."""
        ...

    async def save(
        self, files: Sequence[OutputFile], folder: str | Path, *, overwrite: bool
    ) -> list[Path]:
        """Download ``files`` into ``folder`` under safe names; return the paths written."""
        ...


@dataclass(frozen=True, slots=True)
class JobProgress:
    """Progress of a whole job: each node to run weighs the same, a running node by its steps."""

    fraction: float
    node: str | None = None
    node_value: float = 0.0
    node_max: float = 0.0
    nodes_done: int = 0
    nodes_total: int | None = None


@dataclass(frozen=True, slots=True)
class JobResult:
    """The outcome of a successful job.

    ``outputs`` maps node id to the node's UI dict (``{"images": [...], "text": [...]}``);
    ``cached_nodes`` lists the nodes served from the server's cache; times are epoch seconds from
    the server's clock (``None`` when the server did not say).
    """

    prompt_id: str
    outputs: Mapping[str, Mapping[str, Any]]
    cached_nodes: tuple[str, ...] = ()
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    node_errors: Mapping[str, NodeError] = field(default_factory=dict)
    reconciled: bool = False
    _backend: JobBackend | None = field(default=None, repr=False, compare=False)

    @property
    def files(self) -> list[OutputFile]:
        """Every file the outputs name (images, audio, video…), in node order."""
        return output_files(self.outputs)

    @property
    def texts(self) -> dict[str, list[str]]:
        """The ``text`` outputs, by node id."""
        return {
            node_id: [item for item in ui["text"] if isinstance(item, str)]
            for node_id, ui in self.outputs.items()
            if isinstance(ui.get("text"), list)
        }

    async def save(
        self,
        folder: str | Path,
        *,
        types: Sequence[str] = ("output",),
        overwrite: bool = False,
    ) -> list[Path]:
        """Download the output files (of the given ``type``s) into ``folder``; return the paths.

        Names come from the server and are sanitised first; each file is streamed to a temporary
        file and renamed into place. Cancelling leaves no partial file under a final name.
        """
        if self._backend is None:
            raise ClientClosedError("this result is not attached to a session")
        wanted = [file for file in self.files if file.type in types]
        return await self._backend.save(wanted, folder, overwrite=overwrite)

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish on the server, if both are known."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _abandon_later(job: Job) -> Callable[[], None]:
    """The stream's ``on_cancelled``: the job's :meth:`Job._abandoned`, through a weak reference.

    A bound method would make the job and its stream a reference cycle, which only the cycle
    collector frees: every finished job, its events and its result would wait for a collection
    instead of going as soon as the program drops them. A job not yet done is always held by
    its session (or its pool) besides its stream, so the reference is alive whenever the
    callback can act.
    """
    reference = weakref.ref(job)

    def abandoned() -> None:
        alive = reference()
        if alive is not None:
            alive._abandoned()

    return abandoned


def _ms(timestamp: float | None) -> float | None:
    return None if timestamp is None else timestamp / 1000.0


class Job:
    """A submitted prompt: iterate it for events, await :meth:`result` for its outcome.

    ``async for event in job`` yields the job's typed events in arrival order and ends once the
    outcome is settled. One consumer at a time: two loops over the same job share its events.

    **The rule: a job nobody waits for any more is cancelled on the server.** Cancelling a task
    that awaits :meth:`result` *or* iterates the job (``async for event in job``, or
    :meth:`previews`) cancels the job on the server, and so does leaving its scope before the
    outcome::

        async with await comfy.submit(workflow) as job:   # the job's scope
            async for event in job:
                await websocket.send(...)                  # raises when the browser leaves

    The block may end by an exception, a cancellation or an early ``break``: if the job has no
    outcome yet, it is cancelled on the server. A web handler that streams a job therefore never
    leaves a GPU working for a browser that has gone. :meth:`detach` (or ``detach=True`` when
    submitting) opts out of all three: the job then runs to its end whatever its consumers do.
    """

    # Slots, and the finish-marker waiter made only when needed: a job in flight costs little
    # memory (thousands can be queued on one session).
    __slots__ = (
        "__weakref__",
        "_backend",
        "_cached",
        "_cancel_requested",
        "_cancel_task",
        "_clock",
        "_deadline",
        "_finish_grace",
        "_finish_marker",
        "_finish_waiter",
        "_fraction_seen",
        "_last_event_at",
        "_missed_checks",
        "_node",
        "_node_count",
        "_node_weights",
        "_on_settled",
        "_outcome",
        "_outputs",
        "_place_in_line",
        "_progress",
        "_progress_state",
        "_rescue",
        "_settling",
        "_started_at",
        "_state",
        "_stream",
        "_tasks",
        "_terminal",
        "detached",
        "node_errors",
        "number",
        "prompt_id",
        "server",
        "servers",
    )

    def __init__(
        self,
        prompt_id: str,
        *,
        backend: JobBackend,
        tasks: TaskSet,
        limits: StreamLimits,
        on_settled: Callable[[Job], None] | None = None,
        node_count: int | None = None,
        node_weights: Mapping[str, float] | None = None,
        detach: bool = False,
        finish_grace: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        held: bool = False,
        server: str | None = None,
    ) -> None:
        self.prompt_id = prompt_id
        self.server: str | None = server
        """The server running the job (its base URL); ``None`` while it is held client-side."""
        self.servers: tuple[str, ...] = () if server is None else (server,)
        """Every server the job was sent to, in order (more than one after a failover)."""
        self.number: int | float | None = None
        """The queue number the server gave the prompt (``None`` until it answered)."""
        self.node_errors: Mapping[str, NodeError] = {}
        """Outputs the server dropped as invalid while queueing the rest (protocol doc §4.2)."""
        self.detached = detach
        self._backend = backend
        self._tasks = tasks
        self._on_settled = on_settled
        self._clock = clock
        self._stream = JobStream(limits, prompt_id, on_cancelled=_abandon_later(self))
        self._outcome: asyncio.Future[JobResult | ComfyError] = (
            asyncio.get_running_loop().create_future()
        )
        self._state = JobState.HELD if held else JobState.SUBMITTING
        self._rescue: Callable[[Job, ComfyError], bool] | None = None
        self._place_in_line: Callable[[], int | None] | None = None
        self._terminal: ExecutionSuccess | ExecutionFailed | ExecutionInterrupted | None = None
        self._finish_marker = False
        self._finish_waiter: asyncio.Future[None] | None = None
        self._finish_grace = finish_grace
        self._outputs: dict[str, dict[str, Any]] = {}
        self._cached: tuple[str, ...] = ()
        self._started_at: float | None = None
        # The latest of each: progress_state holds every node seen so far, so progress is
        # computed from them when asked, not on every event.
        self._progress_state: ProgressState | None = None
        self._progress: Progress | None = None
        self._node: str | None = None
        self._node_count = node_count
        self._node_weights = node_weights
        self._fraction_seen = 0.0
        self._cancel_requested = False
        self._cancel_task: asyncio.Task[bool] | None = None
        self._settling: asyncio.Task[None] | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._last_event_at = clock()
        """Monotonic time of the last event (or of submission): silent-job checks use it."""
        self._missed_checks = 0
        """Consecutive HTTP checks that found the job nowhere."""

    def __repr__(self) -> str:
        return f"<Job {self.prompt_id} {self._state.value}>"

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> JobState:
        """Where the job is, as far as this client knows."""
        return self._state

    @property
    def position(self) -> int | None:
        """Its place in line while it waits (1: next to run), so a bot can say "you are 3rd".

        Counts the jobs that will start before it: held ones ahead in the fair order,
        admitted ones, those queued on the servers (other clients' prompts included). Known
        for jobs submitted with admission (a :class:`~comfy_async.pool.ComfyPool`, or a
        client with ``admission=``); ``None`` otherwise, and once it runs or has ended.
        """
        if self._place_in_line is None or self._outcome.done():
            return None
        return self._place_in_line()

    def done(self) -> bool:
        """Whether the outcome is settled."""
        return self._outcome.done()

    @property
    def stats(self) -> StreamStats:
        """What the job's stream coalesced or dropped because its consumer fell behind."""
        return self._stream.stats

    @property
    def progress(self) -> JobProgress:
        """Progress of the whole job, step-weighted, from the latest progress events.

        Each node to run weighs one unit, and a node with steps weighs its step count (its
        ``steps`` input when the job was submitted, replaced by the step count it reports once it
        runs): step 10 of 20 of the one sampler of a seven-node graph reads ~54 %, not 25 %.
        Cached nodes weigh nothing. The fraction never goes down; it reaches 1.0 on success
        only, and stays where it was when the job fails or is cancelled.
        """
        nodes = self._progress_state.nodes if self._progress_state is not None else {}
        node = self._node
        done = 0
        done_weight = 0.0
        value = maximum = 0.0
        running = False
        for node_id, entry in nodes.items():
            if entry.state == "running":
                node = node_id if node is None else node
            else:
                done += 1
                done_weight += self._weight(node_id, entry.max)
            if node_id == node:
                value, maximum, running = entry.value, entry.max, entry.state == "running"
        latest = self._progress
        if latest is not None and latest.node == node and node is not None:
            # a progress event is newer than the progress_state sent just before it
            value, maximum = float(latest.value), float(latest.max)
            running = running or node not in nodes
        fraction_of_node = min(value / maximum, 1.0) if running and maximum > 0 else 0.0
        total = self._node_count - len(self._cached) if self._node_count is not None else None
        if total is not None:
            total = max(total, len(nodes), 1)
        if self._succeeded():
            fraction = 1.0
        else:
            whole = self._total_weight(nodes, node, maximum if running else 0.0)
            partial = fraction_of_node * self._weight(node, maximum) if node is not None else 0.0
            fraction = min((done_weight + partial) / whole, 1.0) if whole else 0.0
            # Never backwards: a late or coalesced event must not move the bar back.
            fraction = max(fraction, self._fraction_seen)
        self._fraction_seen = fraction
        return JobProgress(fraction, node, value, maximum, done, total)

    def _weight(self, node_id: str | None, steps: float) -> float:
        """A node's weight: the step count it reports, else its ``steps`` input, else 1."""
        if steps > 1:
            return steps
        if node_id is not None and self._node_weights is not None:
            return self._node_weights.get(node_id, 1.0)
        return 1.0

    def _total_weight(
        self, nodes: Mapping[str, NodeProgress], current: str | None, steps: float
    ) -> float:
        """The weight of every node that runs: known from the prompt, else from what was seen."""
        reported = {node_id: entry.max for node_id, entry in nodes.items()}
        if current is not None:
            reported[current] = max(steps, reported.get(current, 0.0))
        if self._node_weights is None:
            if self._node_count is None:
                return 0.0  # attached to a prompt of unknown size
            count = max(self._node_count - len(self._cached), len(reported), 1)
            return count + sum(seen - 1 for seen in reported.values() if seen > 1)
        cached = set(self._cached)
        total = 0.0
        for node_id, weight in self._node_weights.items():
            if node_id not in cached:
                seen = reported.pop(node_id, 0.0)
                total += seen if seen > 1 else weight
        # Nodes the server ran that the prompt did not name (expanded subgraphs, for example).
        total += sum(self._weight(node_id, seen) for node_id, seen in reported.items())
        return total

    def _succeeded(self) -> bool:
        if isinstance(self._terminal, ExecutionSuccess):
            return True
        return self._outcome.done() and isinstance(self._outcome.result(), JobResult)

    # ------------------------------------------------------------------ intake

    def _accepted(self, number: int | float, node_errors: Mapping[str, NodeError]) -> None:
        """Record the server's answer to the submission (called once the POST returned)."""
        self.number = number
        self.node_errors = node_errors
        if self._state is JobState.SUBMITTING:
            self._state = JobState.QUEUED

    def _feed(self, event: Event) -> None:
        """Take one event of this job (from the dispatcher): never blocks, never raises."""
        self._last_event_at = self._clock()
        self._missed_checks = 0
        # Exact types, most frequent first: the dispatcher calls this for every event.
        if type(event) is ProgressState:
            self._progress_state = event
            self._node = None  # the running node is read from it when asked
        elif type(event) is Progress:
            self._progress = event
            if event.node is not None:
                self._node = event.node
        elif type(event) is PreviewImage:
            self._stream.put_preview(event)  # nothing to keep: straight to the stream
            return
        elif type(event) is Executing:
            if event.node is None:
                self._saw_finish_marker()
            else:
                self._running()
                self._node = event.display_node or event.node
        elif type(event) is Executed:
            if event.output is not None:
                self._outputs[event.node] = event.output
        elif type(event) is ExecutionStart:
            self._running()
            self._started_at = _ms(event.timestamp)
        elif type(event) is ExecutionCached:
            self._running()
            self._cached = tuple(event.nodes)
        elif (
            type(event) is ExecutionSuccess
            or type(event) is ExecutionInterrupted
            or (type(event) is ExecutionFailed and not event.is_blocked)
        ):
            self._terminal_event(event)
        stream = self._stream
        buffer = stream._buffer
        if buffer is not None and len(buffer) < stream._max_events and not stream._closed:
            buffer.append(event)  # JobStream.put_event's common case, in line: one call less
            waiter = stream._waiter
            if waiter is not None:
                stream._wake()
        else:
            stream.put_event(event)

    def _saw_finish_marker(self) -> None:
        self._finish_marker = True
        waiter, self._finish_waiter = self._finish_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._terminal is None and not self.done():
            # the terminal event was missed (a gap): ask the server how it ended
            self._settle_later(self._settle_from_server)

    def _running(self) -> None:
        if self._state in (JobState.SUBMITTING, JobState.QUEUED):
            self._state = JobState.RUNNING

    def _terminal_event(
        self, event: ExecutionSuccess | ExecutionFailed | ExecutionInterrupted
    ) -> None:
        if self._terminal is not None or self.done():
            return
        self._terminal = event
        self._state = JobState.FINISHING
        self._settle_later(self._settle_from_terminal)

    # ------------------------------------------------------------------ settling

    def _settle_later(self, settle: Callable[[], Any]) -> None:
        if (self._settling is None or self._settling.done()) and not self.done():
            with contextlib.suppress(ComfyError):  # a closed session settles jobs itself
                self._settling = self._tasks.spawn(settle(), name=f"settle {self.prompt_id}")

    async def _settle_from_terminal(self) -> None:
        terminal = self._terminal
        assert terminal is not None
        grace = self._finish_grace if self._backend.finish_marker else 0.0
        if grace and not self._finish_marker:
            # One future and one timer: the marker or the grace period, whichever comes first.
            loop = asyncio.get_running_loop()
            waiter = self._finish_waiter
            if waiter is None or waiter.done():
                waiter = self._finish_waiter = loop.create_future()
            timer = loop.call_later(grace, _release, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
        if isinstance(terminal, ExecutionFailed):
            self._settle(self._execution_error(terminal))
        elif isinstance(terminal, ExecutionInterrupted):
            self._settle(self._interrupted(terminal.node_id))
        else:
            await self._settle_success()

    async def _settle_success(self) -> None:
        snapshot: JobSnapshot | None = None
        # History may trail execution_success (protocol doc §6.4): retry a few times.
        for delay in (0.0, 0.05, 0.2, 0.5, 1.0, 2.0):
            if delay:
                await asyncio.sleep(delay)
            try:
                snapshot = await self._backend.lookup(self.prompt_id)
            except ComfyError:
                snapshot = None
            if snapshot is not None and snapshot.terminal:
                break
        self._settle(self._success(snapshot if snapshot and snapshot.terminal else None))

    async def _settle_from_server(self) -> None:
        try:
            snapshot = await self._backend.lookup(self.prompt_id)
        except ComfyError:
            return  # the periodic reconciliation will try again
        self._reconcile(snapshot, source="finish marker")

    def _reconcile(
        self,
        snapshot: JobSnapshot | None,
        *,
        source: str = "http",
        lost_after: int = 2,
        expired: bool = False,
    ) -> None:
        """Take what the server says about the job, settling it if its end was missed.

        A job found nowhere ``lost_after`` times in a row is lost (or cancelled, if this client
        asked for it) — never a success (design invariant 5). With ``expired`` (the server's
        history has moved past the job) it ends as expired instead, keeping the outputs seen.
        """
        if self.done():
            return
        if snapshot is None:
            if self._state in (JobState.HELD, JobState.ADMITTED, JobState.SUBMITTING):
                return  # not sent, or the POST has not returned yet: the server may not have it
            self._missed_checks += 1
            if self._missed_checks >= lost_after or self._cancel_requested:
                outcome: ComfyError
                if self._cancel_requested:
                    status, outcome = "cancelled", JobCancelled(self.prompt_id)
                elif expired:
                    status, outcome = "expired", JobExpired(self.prompt_id, self._outputs)
                else:
                    status, outcome = "lost", JobLost(self.prompt_id)
                self._stream.put(
                    JobReconciled(prompt_id=self.prompt_id, status=status, source=source)
                )
                self._settle(outcome)
            return
        self._missed_checks = 0
        if not snapshot.terminal:
            if snapshot.status == "running":
                self._running()
            return
        if self._terminal is not None and self._settling is not None:
            return  # the terminal event is being handled already
        self._stream.put(
            JobReconciled(prompt_id=self.prompt_id, status=snapshot.status, source=source)
        )
        if snapshot.status == "success":
            self._settle(self._success(snapshot, reconciled=True))
        elif snapshot.status == "lost":
            self._settle(JobLost(self.prompt_id, "lost: the server says so"))
        elif snapshot.status == "error" and snapshot.error is not None:
            self._settle(self._execution_error(snapshot.error))
        elif snapshot.status == "error":
            self._settle(
                ExecutionError(
                    self.prompt_id,
                    node_id=None,
                    node_type=None,
                    exception_type="unknown",
                    exception_message="the server reports an error without details",
                )
            )
        else:
            self._settle(self._interrupted(None))

    def _success(self, snapshot: JobSnapshot | None, *, reconciled: bool = False) -> JobResult:
        outputs: dict[str, Mapping[str, Any]] = dict(self._outputs)
        cached = self._cached
        started, finished, queued = self._started_at, None, None
        if self._terminal is not None and isinstance(self._terminal, ExecutionSuccess):
            finished = _ms(self._terminal.timestamp)
        if snapshot is not None:
            outputs.update(snapshot.outputs)
            cached = cached or snapshot.cached_nodes
            started = started or snapshot.started_at
            finished = finished or snapshot.finished_at
            queued = snapshot.queued_at
        return JobResult(
            prompt_id=self.prompt_id,
            outputs=outputs,
            cached_nodes=cached,
            queued_at=queued,
            started_at=started,
            finished_at=finished,
            node_errors=self.node_errors,
            reconciled=reconciled,
            _backend=self._backend,
        )

    def _execution_error(self, event: ExecutionFailed | ExecutionErrorInfo) -> ExecutionError:
        return ExecutionError(
            self.prompt_id,
            node_id=event.node_id,
            node_type=event.node_type,
            exception_type=event.exception_type,
            exception_message=event.exception_message,
            traceback=event.traceback,
            executed=event.executed,
        )

    def _interrupted(self, node_id: str | None) -> JobInterrupted:
        if self._cancel_requested:
            return JobCancelled(self.prompt_id)
        return JobInterrupted(self.prompt_id, node_id=node_id)

    def _settle(self, outcome: JobResult | ComfyError) -> None:
        """Set the one outcome (later calls are ignored) and end the event stream.

        A job whose server lost it (or went away) is first offered to its rescuer (a pool, which
        may run it on another server) unless this client asked to cancel it.
        """
        if self._outcome.done():
            return
        if (
            self._rescue is not None
            and isinstance(outcome, (JobLost, TransportError, ClientClosedError))
            and not self._cancel_requested
            and self._rescue(self, outcome)
        ):
            return
        self._outcome.set_result(outcome)
        self._state = JobState.DONE
        self._stream.close()
        if self._deadline is not None:
            self._deadline.cancel()
        if self._on_settled is not None:
            self._on_settled(self)

    def _moved(self) -> None:
        """It is to run again elsewhere: forget this run (not its progress high-water mark)."""
        self._state = JobState.ADMITTED
        self.number = None
        self._terminal = None
        self._finish_marker = False
        self._outputs = {}
        self._cached = ()
        self._started_at = None
        self._progress_state = None
        self._progress = None
        self._node = None
        self._missed_checks = 0
        self._last_event_at = self._clock()
        self.server = None  # the server it left stays in ``servers``

    def _admitted(self) -> None:
        """Its turn came: it waits for a server now."""
        if self._state is JobState.HELD:
            self._state = JobState.ADMITTED

    def _placed(self, server: str) -> None:
        """It is being sent to ``server``."""
        self.server = server
        self.servers = (*self.servers, server)
        self._state = JobState.SUBMITTING
        self._last_event_at = self._clock()

    def _fail(self, error: ComfyError) -> None:
        """Settle the job with ``error`` (the session uses it when it closes or gives up).

        ``error`` may be a transport error: when the WebSocket is gone for good every waiter is
        told why instead of waiting for ever.
        """
        self._settle(error)

    # ------------------------------------------------------------------ deadlines and cancel

    def _set_deadline(self, seconds: float) -> None:
        """Settle with :class:`~comfy_async.errors.JobTimeout` (and cancel it) after ``seconds``."""
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(seconds, self._deadline_passed, seconds)

    def _deadline_passed(self, seconds: float) -> None:
        if self.done():
            return
        if not self.detached:
            self._cancel_in_background()
        self._settle(JobTimeout(self.prompt_id, seconds))

    def detach(self) -> None:
        """Opt out: the job runs to its end whatever its consumers do.

        Cancelling a task that awaits or iterates the job, leaving its ``async with`` scope early,
        or its deadline passing no longer cancels it on the server.
        """
        self.detached = True

    def _abandoned(self) -> None:
        """Its consumer left before the outcome: cancel on the server, unless detached."""
        if not self.detached and not self.done():
            with contextlib.suppress(ComfyError):
                self._cancel_in_background()

    async def __aenter__(self) -> Job:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Leaving the scope before the outcome cancels the job on the server (unless detached).

        After an early ``break`` the cancellation is awaited, so the job is cancelled when the
        block has ended; after an exception or a cancellation it is sent in the background and
        the exception goes on unchanged.
        """
        if self.detached or self.done():
            return
        task = self._cancel_in_background()
        if exc_info[0] is None:
            with contextlib.suppress(ComfyError):
                await asyncio.shield(task)

    async def cancel(self) -> bool:
        """Cancel the job on the server; idempotent, safe to call from several tasks.

        Uses the jobs cancel endpoint where the server has one, else deletes the prompt from the
        queue if it is pending or interrupts exactly this prompt if it is running — never a global
        interrupt. Returns whether the server cancelled anything. Cancelling the task awaiting this
        method does not stop the cancellation.
        """
        if self.done() and self._cancel_task is None:
            return False
        return await asyncio.shield(self._cancel_in_background())

    def _cancel_in_background(self) -> asyncio.Task[bool]:
        self._cancel_requested = True
        if self._cancel_task is None:
            self._cancel_task = self._tasks.spawn(
                self._cancel(), name=f"cancel {self.prompt_id}", finish_on_close=True
            )
        return self._cancel_task

    async def _cancel(self) -> bool:
        running = self._state in (JobState.RUNNING, JobState.FINISHING)
        cancelled = await self._backend.cancel(self.prompt_id, running=running)
        if not self.done():
            try:
                snapshot = await self._backend.lookup(self.prompt_id)
            except ComfyError:
                return cancelled
            # Gone: a pending prompt is deleted without any event (protocol doc §5).
            self._reconcile(snapshot, source="cancel")
        return cancelled

    # ------------------------------------------------------------------ consuming

    async def result(self, timeout: float | None = None) -> JobResult:
        """Wait for the outcome and return the :class:`JobResult`, or raise why the job failed.

        Raises:
            ExecutionError: a node raised.
            JobInterrupted: the server interrupted the job (:class:`JobCancelled` if this client
                cancelled it).
            JobLost: the job vanished from the server.
            JobExpired: the job left the queue and the server's history no longer holds it.
            ComfyError: the session closed, or its connection gave up, before the job ended.
            JobTimeout: ``timeout`` (or the job's deadline) passed; the job is cancelled on the
                server unless it was detached.

        Cancelling the task that awaits this method cancels the job on the server too, unless
        the job was detached (:meth:`detach`, or ``detach=True`` when submitting).
        """
        if self._outcome.done():  # the common case once the events have been read
            settled = self._outcome.result()
            if isinstance(settled, ComfyError):
                raise settled
            return settled
        try:
            async with asyncio.timeout(timeout):
                outcome = await asyncio.shield(self._outcome)
        except TimeoutError:
            if self._outcome.done():
                outcome = self._outcome.result()
            else:
                if not self.detached:
                    self._cancel_in_background()
                raise JobTimeout(self.prompt_id, timeout or 0.0) from None
        except asyncio.CancelledError:
            if not self.detached and not self.done():
                with contextlib.suppress(ComfyError):
                    self._cancel_in_background()
            raise
        if isinstance(outcome, ComfyError):
            raise outcome
        return outcome

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until the outcome is settled (or ``timeout`` passes); return whether it is.

        Unlike :meth:`result` it never raises the outcome, and cancelling it has no effect on the
        job.
        """
        if not self._outcome.done():
            await asyncio.wait([self._outcome], timeout=timeout)
        return self._outcome.done()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._stream  # the stream is its own async iterator: no generator per event

    def previews(self, *, latest_only: bool = False) -> AsyncIterator[PreviewImage]:
        """Iterate over only the previews of this job, ending with its outcome.

        With ``latest_only`` a slow consumer (a chat bot editing a message) always gets the newest
        preview and skips the ones it had no time for. Shares the job's stream: other events are
        consumed and skipped. Leaving the ``async for`` early needs no clean-up.
        """
        return self._stream.previews(latest_only=latest_only)
