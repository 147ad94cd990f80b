"""Routing of events to jobs: the prompt_id → sink registry, per-job streams, orphans, taps.

The WebSocket reader hands every event to :meth:`Dispatcher.dispatch`, which **never awaits**
(design invariant 3): it puts the event into the registered job's :class:`JobStream` with
``put``-no-wait semantics, into the bounded orphan buffer when no job has that prompt id (yet),
and into the session-wide :class:`EventTap` subscribers. Nothing here does I/O.

Overflow policy of a :class:`JobStream` (a consumer that does not keep up):

* lifecycle and terminal events are never dropped (a job's lifecycle events are bounded by the
  size of its graph);
* ``progress`` and ``progress_state`` are coalesced to the latest value within the trailing run
  of progress-like events, so they never jump over a lifecycle event;
* previews share the one buffer (so events and previews are read in arrival order) but are
  bounded by their own count, which does not count against the events' bound; past it, the
  oldest buffered preview is dropped, from wherever it sits among the events;
* other droppable events (TEXT frames, unknown per-prompt events) are dropped when the events'
  bound is reached.

Every coalesced or dropped event is counted (:class:`StreamStats`), and the first overflow of a
stream is logged once. A stream that overflowed and was never read when it closes (a job nobody
consumes) keeps only what a late reader needs: every lifecycle event, the newest progress of each
kind and the newest preview. Hundreds of such jobs then hold a few events each, not full buffers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from comfy_async.config import StreamLimits
from comfy_async.events import (
    Event,
    MalformedFrame,
    PreviewImage,
    Progress,
    ProgressState,
    ProgressText,
    UnknownEvent,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

__all__ = ["Dispatcher", "EventTap", "JobSink", "JobStream", "PreviewReader", "StreamStats"]

logger = logging.getLogger("comfy_async.dispatch")

_get_running_loop = asyncio.get_running_loop

# How far back from the tail a new progress event looks for an older one to replace.
_COALESCE_WINDOW = 8
_COALESCABLE = (Progress, ProgressState)
_DROPPABLE = (ProgressText, UnknownEvent, MalformedFrame)
_NOT_LIFECYCLE = _COALESCABLE + _DROPPABLE
# Prompt ids of finished jobs remembered so that their late events are not kept as orphans.
_FINISHED_MEMORY = 8192


@dataclass(slots=True)
class StreamStats:
    """What a stream had to coalesce or drop because its consumer fell behind."""

    coalesced: int = 0
    dropped_previews: int = 0
    dropped_events: int = 0

    @property
    def overflowed(self) -> bool:
        """Whether anything was coalesced or dropped."""
        return bool(self.coalesced or self.dropped_previews or self.dropped_events)


class JobStream:
    """A bounded, non-blocking buffer of one job's events, read by its consumer.

    :meth:`put` never blocks and never raises. :meth:`get` waits for the next event and returns
    ``None`` once the stream is closed and drained. Cancelling a waiting :meth:`get` loses
    nothing: the events stay buffered for the next call. A reader whose wait is cancelled calls
    ``on_cancelled`` (the job uses it to cancel itself on the server: its consumer has left).

    Events and previews share one buffer, in arrival order, so reading is a ``popleft``; the
    previews in it are counted, and bounded by that count (see the module docstring).
    """

    __slots__ = (
        "_buffer",
        "_closed",
        "_max_events",
        "_max_previews",
        "_name",
        "_on_cancelled",
        "_previews",
        "_quiet_drops",
        "_read",
        "_waiter",
        "_waiters",
        "stats",
    )

    def __init__(
        self,
        limits: StreamLimits,
        name: str = "",
        on_cancelled: Callable[[], object] | None = None,
    ) -> None:
        self._max_events = limits.job_events
        self._max_previews = limits.job_previews
        self._name = name
        self._on_cancelled = on_cancelled
        self._quiet_drops = False  # a latest-only reader asked for drops: no warning then
        self._read = False  # whether a consumer has taken anything yet
        # The buffer and the waiter list are made on first use: a job waiting in the queue
        # holds neither (P6 keeps 10,000 such jobs in flight).
        self._buffer: deque[Event] | None = None
        self._previews = 0  # how many of the buffered events are previews
        self._closed = False
        # The waiting reader (one is the rule), and any other readers waiting beside it.
        self._waiter: asyncio.Future[None] | None = None
        self._waiters: list[asyncio.Future[None]] | None = None
        self.stats = StreamStats()

    def __len__(self) -> int:
        return len(self._buffer or ())

    @property
    def closed(self) -> bool:
        """Whether no more events will be added."""
        return self._closed

    def put(self, event: Event) -> None:
        """Add an event, applying the overflow policy; never blocks, never raises."""
        if type(event) is PreviewImage:
            self.put_preview(event)
        else:
            self.put_event(event)

    def put_event(self, event: Event) -> None:
        """:meth:`put` for an event the caller knows is not a :class:`PreviewImage`."""
        if self._closed:
            return
        buffer = self._buffer
        if buffer is None:
            buffer = self._buffer = deque()
        # the buffer's length bounds the events in it from above: the exact count only when full
        if len(buffer) < self._max_events or len(buffer) - self._previews < self._max_events:
            buffer.append(event)
        else:
            self._put_when_full(buffer, event)
        waiter = self._waiter
        if waiter is not None:
            # one reader is the rule: wake it in line, the others (if any) with a call
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
            if self._waiters is not None:
                self._wake_others()

    def put_preview(self, event: PreviewImage) -> None:
        """:meth:`put` for a preview: past ``job_previews`` the oldest buffered one is dropped."""
        if self._closed:
            return
        buffer = self._buffer
        if buffer is None:
            buffer = self._buffer = deque()
        if self._previews < self._max_previews:
            buffer.append(event)
            self._previews += 1
        else:
            self._drop_oldest_preview(buffer)
            buffer.append(event)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
            if self._waiters is not None:
                self._wake_others()

    def _drop_oldest_preview(self, buffer: deque[Event]) -> None:
        # The slow consumer's path only: the oldest preview may sit behind other events.
        for index, older in enumerate(buffer):
            if type(older) is PreviewImage:
                del buffer[index]
                break
        self._count("dropped_previews")

    def _put_when_full(self, buffer: deque[Event], event: Event) -> None:
        if isinstance(event, _COALESCABLE):
            self._replace_recent(buffer, event)
        elif isinstance(event, _DROPPABLE):
            self._count("dropped_events")
            return
        buffer.append(event)

    def _replace_recent(self, buffer: deque[Event], event: Progress | ProgressState) -> None:
        kind = type(event)
        node = event.node if isinstance(event, Progress) else None
        looked = 0
        for back in range(1, len(buffer) + 1):
            older = buffer[-back]
            if type(older) is PreviewImage:
                continue  # previews are not lifecycle events, nor in the window
            if not isinstance(older, _NOT_LIFECYCLE):
                return  # never coalesce across a lifecycle event
            if type(older) is kind and (node is None or getattr(older, "node", None) == node):
                del buffer[-back]
                self._count("coalesced")
                return
            looked += 1
            if looked == _COALESCE_WINDOW:
                return

    def _count(self, counter: str) -> None:
        first = not self.stats.overflowed
        setattr(self.stats, counter, getattr(self.stats, counter) + 1)
        if first and self._quiet_drops:
            logger.debug("job %s: dropping what its latest-only reader skips", self._name or "?")
        elif first:
            logger.warning(
                "slow consumer for job %s: its stream is full, so progress is coalesced and "
                "the oldest previews are dropped (lifecycle events are kept)",
                self._name or "?",
            )

    def close(self) -> None:
        """Add no more events; the consumer drains what is buffered, then gets ``None``.

        An overflowed stream nobody has read is compacted first (see the module docstring).
        """
        self._closed = True
        if not self._read and self.stats.overflowed:
            self._compact()
        self._wake()

    def _compact(self) -> None:
        buffer = self._buffer
        if not buffer:
            return
        newest_of: dict[tuple[type, str | None], int] = {}
        newest_preview = -1
        for index, event in enumerate(buffer):
            if type(event) is PreviewImage:
                newest_preview = index
            elif isinstance(event, _COALESCABLE):
                newest_of[type(event), getattr(event, "node", None)] = index
        keep = set(newest_of.values())
        keep.add(newest_preview)
        kept: deque[Event] = deque(
            event
            for index, event in enumerate(buffer)
            if index in keep or not (type(event) is PreviewImage or isinstance(event, _COALESCABLE))
        )
        previews_kept = 1 if newest_preview >= 0 else 0
        self.stats.dropped_previews += self._previews - previews_kept
        self.stats.coalesced += (len(buffer) - self._previews) - (len(kept) - previews_kept)
        self._buffer = kept
        self._previews = previews_kept

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if self._waiters is not None:
            self._wake_others()

    def _wake_others(self) -> None:
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def get_nowait(self) -> Event | None:
        """Return the next buffered event in arrival order, or ``None`` if none is buffered."""
        self._read = True
        buffer = self._buffer
        if not buffer:
            return None
        event = buffer.popleft()
        if type(event) is PreviewImage:
            self._previews -= 1
        return event

    def take_latest_preview(self) -> PreviewImage | None:
        """Return the newest buffered preview and discard the older ones (counted as dropped)."""
        self._read = True
        buffer = self._buffer
        if not self._previews or buffer is None:
            return None
        latest: PreviewImage | None = None
        kept: deque[Event] = deque()
        for event in buffer:
            if type(event) is PreviewImage:
                latest = event
            else:
                kept.append(event)
        self.stats.dropped_previews += self._previews - 1
        self._buffer = kept
        self._previews = 0
        return latest

    def __aiter__(self) -> JobStream:
        return self

    async def __anext__(self) -> Event:
        """The next event; the iteration ends when the stream is closed and drained.

        The hot path of every consumer: ``async for`` reaches it with no generator in between,
        and the wait is inlined (no extra coroutine per event).
        """
        self._read = True
        while True:
            buffer = self._buffer
            if buffer:
                # get_nowait, inlined: this runs once per event of every job
                event = buffer.popleft()
                if type(event) is PreviewImage:
                    self._previews -= 1
                return event
            if self._closed:
                raise StopAsyncIteration
            # one reader is the rule: it waits in the slot that put() wakes in line
            waiter = _get_running_loop().create_future()
            if self._waiter is None:
                self._waiter = waiter
            else:
                self._add_waiter(waiter)
            try:
                await waiter
            except BaseException as exc:
                self._forget(waiter)
                if isinstance(exc, asyncio.CancelledError):
                    self._reader_cancelled()
                raise

    async def get(self) -> Event | None:
        """Wait for the next event; ``None`` when the stream is closed and drained."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            return None

    def next_preview_nowait(self, *, latest_only: bool = False) -> PreviewImage | None:
        """Return the next buffered preview, consuming the other events before it.

        With ``latest_only`` the newest buffered preview is returned, the older ones are counted
        as dropped and the other buffered events are discarded. ``None`` if no preview is buffered.
        """
        if latest_only:
            preview = self.take_latest_preview()
            if self._buffer is not None:
                self._buffer.clear()
            return preview
        self._read = True
        buffer = self._buffer
        while buffer:
            event = buffer.popleft()
            if type(event) is PreviewImage:
                self._previews -= 1
                return event
        return None

    def previews(self, *, latest_only: bool = False) -> PreviewReader:
        """An async iterator over the previews only (see :class:`PreviewReader`)."""
        return PreviewReader(self, latest_only=latest_only)

    async def get_preview(self, *, latest_only: bool = False) -> PreviewImage | None:
        """Wait for the next preview, skipping other events; ``None`` at the end of the stream.

        With ``latest_only`` the newest buffered preview is returned and older ones skipped.
        """
        try:
            return await PreviewReader(self, latest_only=latest_only).__anext__()
        except StopAsyncIteration:
            return None

    def _add_waiter(self, waiter: asyncio.Future[None]) -> None:
        """Another reader waits beside the first (two readers of one job)."""
        if self._waiters is None:
            self._waiters = [waiter]
        else:
            self._waiters.append(waiter)

    def _reader_cancelled(self) -> None:
        """A task waiting for the next event was cancelled: tell the owner, once per wait."""
        if self._on_cancelled is not None and not self._closed:
            self._on_cancelled()

    def _forget(self, waiter: asyncio.Future[None]) -> None:
        """Drop a waiter whose consumer was cancelled (the events stay buffered)."""
        if not waiter.done():
            waiter.cancel()
        waiters = self._waiters
        if self._waiter is waiter:
            # another reader waiting beside it takes its place, so put() still wakes one
            self._waiter = waiters.pop(0) if waiters else None
        elif waiters is not None and waiter in waiters:
            waiters.remove(waiter)
        if not waiters:
            self._waiters = None


class PreviewReader:
    """The previews of one :class:`JobStream`, as an async iterator; other events are skipped.

    It ends when the stream is closed and drained. Like the stream it reads, it is its own
    iterator (no generator per preview), so leaving an ``async for`` early needs no clean-up, and
    cancelling a waiting step loses nothing.
    """

    __slots__ = ("_latest_only", "_stream")

    def __init__(self, stream: JobStream, *, latest_only: bool = False) -> None:
        self._stream = stream
        self._latest_only = latest_only
        if latest_only:
            stream._quiet_drops = True

    def __aiter__(self) -> PreviewReader:
        return self

    async def __anext__(self) -> PreviewImage:
        """The next preview (the newest one buffered, with ``latest_only``)."""
        stream = self._stream
        while True:
            buffer = stream._buffer
            if buffer:
                stream._read = True
                if self._latest_only:
                    preview = stream.next_preview_nowait(latest_only=True)
                    if preview is not None:
                        return preview
                else:
                    # the common case, inlined: the oldest preview, skipping the events before it
                    while buffer:
                        event = buffer.popleft()
                        if type(event) is PreviewImage:
                            stream._previews -= 1
                            return event
            if stream._closed:
                raise StopAsyncIteration
            waiter = _get_running_loop().create_future()
            if stream._waiter is None:
                stream._waiter = waiter
            else:
                stream._add_waiter(waiter)
            try:
                await waiter
            except BaseException as exc:
                stream._forget(waiter)
                if isinstance(exc, asyncio.CancelledError):
                    stream._reader_cancelled()
                raise


#: What the dispatcher feeds: a job's synchronous intake of one event (must not block or raise).
JobSink: TypeAlias = "Callable[[Event], None]"


class EventTap:
    """A session-wide subscription: a bounded stream of events, oldest dropped when full.

    ``include_jobs`` taps receive every event; the others receive only events that belong to no
    registered job (status, feature flags, logs, unknown types, unattributed frames, and events of
    prompts this session did not submit).
    """

    def __init__(self, dispatcher: Dispatcher, limit: int, *, include_jobs: bool) -> None:
        self._dispatcher = dispatcher
        self._stream = JobStream(StreamLimits(job_events=limit, job_previews=limit), "session")
        self.include_jobs = include_jobs

    @property
    def stats(self) -> StreamStats:
        """Coalesced and dropped counts of this subscription."""
        return self._stream.stats

    def put(self, event: Event) -> None:
        """Add one event (drops the oldest when full); never blocks."""
        stream = self._stream
        if len(stream) >= stream._max_events and type(event) is not PreviewImage:
            stream.get_nowait()
            stream.stats.dropped_events += 1
        stream.put(event)

    def close(self) -> None:
        """End the subscription: the consumer drains what is buffered, then stops."""
        self._dispatcher._taps.discard(self)
        self._stream.close()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._stream

    async def __aenter__(self) -> EventTap:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


class Dispatcher:
    """Routes events by ``prompt_id`` to registered jobs; never awaits (design invariant 3)."""

    def __init__(self, limits: StreamLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._jobs: dict[str, JobSink] = {}
        self._orphans: dict[str, deque[Event]] = {}
        self._orphan_order: deque[tuple[float, str]] = deque()
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._taps: set[EventTap] = set()
        self.orphaned = 0
        """Events kept for prompt ids that no job had registered (yet)."""
        self.expired_orphans = 0
        """Orphan events dropped by age or by the orphan buffer's bound."""
        self.late = 0
        """Events that arrived for jobs already finished (dropped)."""

    @property
    def registered(self) -> int:
        """How many jobs are registered."""
        return len(self._jobs)

    def register(self, prompt_id: str, sink: JobSink) -> None:
        """Route ``prompt_id`` to ``sink``, first replaying any events kept as orphans for it."""
        self._jobs[prompt_id] = sink
        self._finished.pop(prompt_id, None)
        for event in self._orphans.pop(prompt_id, ()):
            sink(event)

    def unregister(self, prompt_id: str, *, finished: bool = True) -> None:
        """Stop routing ``prompt_id``; with ``finished``, its late events are dropped, not kept."""
        self._jobs.pop(prompt_id, None)
        if finished:
            self._finished[prompt_id] = None
            if len(self._finished) > _FINISHED_MEMORY:
                self._finished.popitem(last=False)

    def tap(self, *, include_jobs: bool = False, limit: int | None = None) -> EventTap:
        """Subscribe to the session-wide stream (see :class:`EventTap`)."""
        tap = EventTap(self, limit or self._limits.session_events, include_jobs=include_jobs)
        self._taps.add(tap)
        return tap

    def dispatch(self, event: Event) -> None:
        """Route one event; never blocks, never raises for any event."""
        prompt_id = event.prompt_id
        sink = self._jobs.get(prompt_id)  # type: ignore[arg-type]  # None is never a key
        if sink is not None:
            sink(event)
            if self._taps:
                for tap in self._taps:
                    if tap.include_jobs:
                        tap.put(event)
            return
        for tap in self._taps:
            tap.put(event)
        if prompt_id is not None:
            if prompt_id in self._finished:
                self.late += 1
            else:
                self._keep_orphan(prompt_id, event)

    def broadcast(self, make: Callable[[str], Event]) -> None:
        """Feed every registered job an event built for it (e.g. a reconnect marker)."""
        for prompt_id, sink in list(self._jobs.items()):
            sink(make(prompt_id))

    def _keep_orphan(self, prompt_id: str, event: Event) -> None:
        now = self._clock()
        self.expire_orphans(now)
        if len(self._orphan_order) >= self._limits.orphan_events:
            self._drop_oldest_orphan()
        self._orphans.setdefault(prompt_id, deque()).append(event)
        self._orphan_order.append((now, prompt_id))
        self.orphaned += 1

    def expire_orphans(self, now: float | None = None) -> None:
        """Drop orphans older than the configured time to live."""
        deadline = (self._clock() if now is None else now) - self._limits.orphan_ttl
        order = self._orphan_order
        while order and order[0][0] < deadline:
            self._drop_oldest_orphan()

    def _drop_oldest_orphan(self) -> None:
        _, prompt_id = self._orphan_order.popleft()
        kept = self._orphans.get(prompt_id)
        if kept:  # it may already have been claimed by register()
            kept.popleft()
            self.expired_orphans += 1
            if not kept:
                del self._orphans[prompt_id]

    def close(self) -> None:
        """Close every tap and forget every registration and orphan."""
        for tap in list(self._taps):
            tap.close()
        self._jobs.clear()
        self._orphans.clear()
        self._orphan_order.clear()
