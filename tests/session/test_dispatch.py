"""The dispatcher and per-job streams, fed events directly (no server, no socket)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from comfy_async._live.dispatch import Dispatcher, JobStream
from comfy_async.config import StreamLimits
from comfy_async.events import (
    Event,
    Executed,
    Executing,
    ExecutionStart,
    ExecutionSuccess,
    PreviewImage,
    Progress,
    ProgressState,
    ProgressText,
    Status,
    UnknownEvent,
)

P = "11111111-1111-4111-8111-111111111111"
Q = "22222222-2222-4222-8222-222222222222"


def preview(n: int, prompt_id: str = P) -> PreviewImage:
    return PreviewImage(image=memoryview(bytes([n])), mime="image/png", prompt_id=prompt_id)


def progress(value: int, node: str = "5", prompt_id: str = P) -> Progress:
    return Progress(value=value, max=100, node=node, prompt_id=prompt_id)


def drain(stream: JobStream) -> list[Event]:
    out = []
    while (event := stream.get_nowait()) is not None:
        out.append(event)
    return out


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def feed(self, event: Event) -> None:
        self.events.append(event)


# --------------------------------------------------------------------------- JobStream


def test_stream_keeps_arrival_order_across_previews_and_events() -> None:
    stream = JobStream(StreamLimits())
    sequence: list[Event] = [
        ExecutionStart(prompt_id=P),
        progress(1),
        preview(1),
        progress(2),
        preview(2),
        ExecutionSuccess(prompt_id=P),
    ]
    for event in sequence:
        stream.put(event)
    assert drain(stream) == sequence
    assert not stream.stats.overflowed


def test_full_stream_coalesces_progress_and_keeps_lifecycle() -> None:
    stream = JobStream(StreamLimits(job_events=4, job_previews=2), "slow")
    stream.put(ExecutionStart(prompt_id=P))
    stream.put(Executing(node="5", prompt_id=P))
    for value in range(1, 101):
        stream.put(progress(value))
        stream.put(ProgressState(prompt_id=P))
    stream.put(Executed(node="5", prompt_id=P, output={"images": []}))
    for value in range(1, 51):
        stream.put(progress(value, node="6"))
    stream.put(ExecutionSuccess(prompt_id=P))
    events = drain(stream)
    kinds = [type(e).__name__ for e in events]
    # lifecycle kept in order; at most one progress + one state between two lifecycle events
    assert kinds[:2] == ["ExecutionStart", "Executing"]
    assert kinds[-1] == "ExecutionSuccess"
    assert "Executed" in kinds
    between = kinds[2 : kinds.index("Executed")]
    assert sorted(between) == ["Progress", "ProgressState"]
    last_progress = [e for e in events if isinstance(e, Progress)]
    assert [p.value for p in last_progress] == [100, 50]  # the latest values survive
    # every replaced one is counted: values 2..100 of progress and state, then 2..50 of node 6
    assert stream.stats.coalesced == 99 + 99 + 49


def test_an_overflowed_stream_nobody_read_keeps_what_a_late_reader_needs() -> None:
    stream = JobStream(StreamLimits(job_events=8, job_previews=4))
    stream.put(ExecutionStart(prompt_id=P))
    stream.put(Executing(node="5", prompt_id=P))
    for value in range(1, 51):
        stream.put(progress(value))
        stream.put(ProgressState(prompt_id=P))
        stream.put(preview(value))
    stream.put(Executed(node="5", prompt_id=P, output={"images": []}))
    stream.put(ExecutionSuccess(prompt_id=P))
    coalesced, dropped = stream.stats.coalesced, stream.stats.dropped_previews
    stream.close()  # its job ended: nobody ever read it
    events = drain(stream)
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "ExecutionStart",
        "Executing",
        "Progress",
        "ProgressState",
        "PreviewImage",
        "Executed",
        "ExecutionSuccess",
    ]
    assert [e.value for e in events if isinstance(e, Progress)] == [50]
    assert [bytes(e.image)[0] for e in events if isinstance(e, PreviewImage)] == [50]
    assert stream.stats.dropped_previews == dropped + 3
    assert stream.stats.coalesced > coalesced


def test_a_stream_that_was_read_or_never_overflowed_keeps_everything_when_closed() -> None:
    read = JobStream(StreamLimits(job_events=2, job_previews=1))
    read.put(ExecutionStart(prompt_id=P))
    assert read.get_nowait() is not None  # a consumer is there
    quiet = JobStream(StreamLimits())
    for stream in (read, quiet):
        for value in range(1, 4):
            stream.put(progress(value))
            stream.put(preview(value))
        stream.close()
    assert len([e for e in drain(quiet) if isinstance(e, PreviewImage)]) == 3
    assert len([e for e in drain(read) if isinstance(e, Progress)]) >= 2


def test_coalescing_never_crosses_a_lifecycle_event() -> None:
    stream = JobStream(StreamLimits(job_events=2))
    stream.put(progress(1))
    stream.put(Executing(node="6", prompt_id=P))
    stream.put(progress(2))  # full: may not replace progress(1), which is before Executing
    events = drain(stream)
    assert [type(e).__name__ for e in events] == ["Progress", "Executing", "Progress"]


def test_progress_of_another_node_is_not_coalesced_into_this_one() -> None:
    stream = JobStream(StreamLimits(job_events=1))
    stream.put(Executing(node="5", prompt_id=P))
    stream.put(progress(1, node="5"))
    stream.put(progress(1, node="6"))
    stream.put(progress(2, node="6"))
    assert [(e.node, e.value) for e in drain(stream) if isinstance(e, Progress)] == [
        ("5", 1),
        ("6", 2),
    ]


def test_previews_drop_oldest_with_a_counter() -> None:
    stream = JobStream(StreamLimits(job_previews=3))
    for n in range(10):
        stream.put(preview(n))
    kept = [bytes(e.image)[0] for e in drain(stream) if isinstance(e, PreviewImage)]
    assert kept == [7, 8, 9]
    assert stream.stats.dropped_previews == 7


def test_droppable_events_are_dropped_when_full() -> None:
    stream = JobStream(StreamLimits(job_events=1))
    stream.put(ExecutionStart(prompt_id=P))
    stream.put(ProgressText(node_id="5", text="x", prompt_id=P))
    stream.put(UnknownEvent(type="custom", prompt_id=P))
    stream.put(ExecutionSuccess(prompt_id=P))
    assert [type(e).__name__ for e in drain(stream)] == ["ExecutionStart", "ExecutionSuccess"]
    assert stream.stats.dropped_events == 2


def test_slow_consumer_is_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    stream = JobStream(StreamLimits(job_previews=1), "job-x")
    with caplog.at_level(logging.WARNING, logger="comfy_async.dispatch"):
        for n in range(5):
            stream.put(preview(n))
    assert [r.getMessage() for r in caplog.records if "job-x" in r.getMessage()] != []
    assert len(caplog.records) == 1


def test_drops_a_latest_only_reader_asked_for_are_not_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = JobStream(StreamLimits(job_previews=1, job_events=2), "job-y")
    stream.previews(latest_only=True)  # the reader says: skip what I have no time for
    with caplog.at_level(logging.DEBUG, logger="comfy_async.dispatch"):
        for n in range(5):
            stream.put(preview(n))
            stream.put(progress(n))
    assert stream.stats.dropped_previews == 4  # still counted
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]


def test_the_package_logger_has_a_null_handler() -> None:
    import comfy_async

    handlers = logging.getLogger("comfy_async").handlers
    assert comfy_async.__name__ == "comfy_async"
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_latest_preview_only() -> None:
    stream = JobStream(StreamLimits(job_previews=8))
    for n in range(5):
        stream.put(preview(n))
    latest = stream.take_latest_preview()
    assert latest is not None
    assert bytes(latest.image) == b"\x04"
    assert stream.take_latest_preview() is None
    assert stream.stats.dropped_previews == 4


def test_a_full_preview_bound_drops_the_oldest_preview_from_between_events() -> None:
    stream = JobStream(StreamLimits(job_previews=2))
    sequence: list[Event] = [
        ExecutionStart(prompt_id=P),
        preview(1),
        progress(1),
        preview(2),
        progress(2),
    ]
    for event in sequence:
        stream.put(event)
    stream.put(preview(3))  # the third: preview 1 goes, the events around it stay
    assert drain(stream) == [
        ExecutionStart(prompt_id=P),
        progress(1),
        preview(2),
        progress(2),
        preview(3),
    ]
    assert stream.stats.dropped_previews == 1
    assert stream.stats.coalesced == stream.stats.dropped_events == 0


def test_buffered_previews_do_not_count_against_the_event_bound() -> None:
    stream = JobStream(StreamLimits(job_events=3, job_previews=4))
    for n in range(4):
        stream.put(preview(n))
    for n in range(3):
        stream.put(ProgressText(node_id="5", text=str(n), prompt_id=P))  # within their bound
    assert not stream.stats.overflowed
    stream.put(ExecutionStart(prompt_id=P))  # lifecycle: kept past the bound
    stream.put(ProgressText(node_id="5", text="hi", prompt_id=P))  # droppable: dropped
    assert stream.stats.dropped_events == 1
    assert len(drain(stream)) == 4 + 3 + 1


def test_reading_gives_back_room_for_previews_whichever_way_they_are_read() -> None:
    stream = JobStream(StreamLimits(job_previews=2))
    stream.put(preview(1))
    stream.put(progress(1))
    stream.put(preview(2))
    assert stream.get_nowait() == preview(1)  # one preview read by get_nowait
    assert stream.next_preview_nowait() == preview(2)  # one skipping the progress before it
    stream.put(preview(3))
    stream.put(preview(4))  # two buffered again: within the bound
    assert not stream.stats.overflowed
    assert drain(stream) == [preview(3), preview(4)]


def test_coalescing_looks_past_previews_but_never_past_a_lifecycle_event() -> None:
    stream = JobStream(StreamLimits(job_events=2, job_previews=8))
    stream.put(Executing(node="5", prompt_id=P))
    stream.put(progress(1))
    stream.put(preview(1))
    stream.put(preview(2))
    stream.put(progress(2))  # full: replaces progress 1 behind the two previews
    assert stream.stats.coalesced == 1
    stream.put(Executed(node="5", prompt_id=P, output={}))
    stream.put(preview(3))
    stream.put(progress(3))  # the newest progress before it is behind a lifecycle event
    assert stream.stats.coalesced == 1
    assert drain(stream) == [
        Executing(node="5", prompt_id=P),
        preview(1),
        preview(2),
        progress(2),
        Executed(node="5", prompt_id=P, output={}),
        preview(3),
        progress(3),
    ]


def test_the_latest_preview_leaves_the_other_events_in_order() -> None:
    stream = JobStream(StreamLimits(job_previews=8))
    stream.put(preview(1))
    stream.put(ExecutionStart(prompt_id=P))
    stream.put(preview(2))
    stream.put(progress(1))
    assert stream.take_latest_preview() == preview(2)
    assert stream.stats.dropped_previews == 1
    assert drain(stream) == [ExecutionStart(prompt_id=P), progress(1)]
    stream.put(preview(3))
    assert drain(stream) == [preview(3)]


async def test_two_readers_share_a_stream_and_a_cancelled_one_leaves_the_other_waiting() -> None:
    stream = JobStream(StreamLimits())
    first = asyncio.create_task(stream.get())
    second = asyncio.create_task(stream.get())
    third = asyncio.create_task(stream.get())
    await asyncio.sleep(0)
    first.cancel()  # the reader put() wakes first leaves: the next put must still wake one
    with pytest.raises(asyncio.CancelledError):
        await first
    stream.put(ExecutionStart(prompt_id=P))
    stream.put(ExecutionSuccess(prompt_id=P))
    got = await asyncio.wait_for(asyncio.gather(second, third), 1)
    assert sorted(type(e).__name__ for e in got if e is not None) == [
        "ExecutionStart",
        "ExecutionSuccess",
    ]


async def test_a_reader_waiting_beside_another_is_woken_by_the_next_event() -> None:
    stream = JobStream(StreamLimits())
    first = asyncio.create_task(stream.get())
    await asyncio.sleep(0)
    second = asyncio.create_task(stream.get())
    await asyncio.sleep(0)
    stream.put(ExecutionStart(prompt_id=P))
    assert await asyncio.wait_for(first, 1) == ExecutionStart(prompt_id=P)
    stream.put(ExecutionSuccess(prompt_id=P))  # the second reader waits again, now alone
    assert await asyncio.wait_for(second, 1) == ExecutionSuccess(prompt_id=P)


async def test_get_waits_and_close_ends_after_draining() -> None:
    stream = JobStream(StreamLimits())
    got: list[Event | None] = []

    async def consume() -> None:
        while (event := await stream.get()) is not None:
            got.append(event)
        got.append(None)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    stream.put(ExecutionStart(prompt_id=P))
    stream.put(ExecutionSuccess(prompt_id=P))
    stream.close()
    stream.put(ExecutionStart(prompt_id=P))  # after close: ignored
    await asyncio.wait_for(task, 1)
    assert [type(e).__name__ if e else None for e in got] == [
        "ExecutionStart",
        "ExecutionSuccess",
        None,
    ]


async def test_cancelling_a_waiting_get_loses_nothing() -> None:
    stream = JobStream(StreamLimits())
    waiter = asyncio.create_task(stream.get())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    stream.put(ExecutionStart(prompt_id=P))
    assert await asyncio.wait_for(stream.get(), 1) == ExecutionStart(prompt_id=P)


async def test_get_preview_skips_other_events() -> None:
    stream = JobStream(StreamLimits())
    stream.put(progress(1))
    stream.put(preview(1))
    stream.put(progress(2))
    stream.close()
    first = await stream.get_preview()
    assert first is not None
    assert bytes(first.image) == b"\x01"
    assert await stream.get_preview() is None


async def test_preview_reader_waits_for_previews_and_ends_with_the_stream() -> None:
    stream = JobStream(StreamLimits())
    seen: list[bytes] = []

    async def read() -> None:
        async for image in stream.previews():
            seen.append(bytes(image.image))  # noqa: PERF401  # observed while it runs

    reader = asyncio.create_task(read())
    await asyncio.sleep(0)
    stream.put(progress(1))
    stream.put(preview(1))
    await asyncio.sleep(0)
    assert seen == [b"\x01"]
    stream.put(preview(2))
    stream.put(ExecutionSuccess(prompt_id=P))
    stream.close()
    await asyncio.wait_for(reader, 1)
    assert seen == [b"\x01", b"\x02"]


async def test_leaving_a_preview_reader_early_leaves_the_rest_buffered() -> None:
    stream = JobStream(StreamLimits())
    for n in range(3):
        stream.put(preview(n))
    async for image in stream.previews():
        assert bytes(image.image) == b"\x00"
        break
    # a class iterator, not a generator: nothing to finalise, the stream keeps the rest
    rest = drain(stream)
    assert [bytes(p.image) for p in rest if isinstance(p, PreviewImage)] == [b"\x01", b"\x02"]


async def test_cancelling_a_waiting_preview_reader_loses_nothing() -> None:
    stream = JobStream(StreamLimits())
    reader = stream.previews()
    waiting = asyncio.create_task(reader.__anext__())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert stream._waiter is None  # the cancelled waiter is forgotten
    assert not stream._waiters
    stream.put(preview(7))
    assert bytes((await asyncio.wait_for(reader.__anext__(), 1)).image) == b"\x07"


async def test_latest_only_reader_skips_to_the_newest_preview() -> None:
    stream = JobStream(StreamLimits())
    for n in range(4):
        stream.put(preview(n))
    stream.put(progress(3))
    stream.close()
    latest = [bytes(p.image) async for p in stream.previews(latest_only=True)]
    assert latest == [b"\x03"]
    assert stream.stats.dropped_previews == 3


# --------------------------------------------------------------------------- Dispatcher


def test_events_route_by_prompt_id() -> None:
    dispatcher = Dispatcher(StreamLimits())
    a, b = Sink(), Sink()
    dispatcher.register(P, a.feed)
    dispatcher.register(Q, b.feed)
    dispatcher.dispatch(progress(1, prompt_id=P))
    dispatcher.dispatch(progress(2, prompt_id=Q))
    dispatcher.dispatch(Status())
    assert [e.value for e in a.events] == [1]  # type: ignore[attr-defined]
    assert [e.value for e in b.events] == [2]  # type: ignore[attr-defined]


def test_orphans_are_replayed_on_register() -> None:
    dispatcher = Dispatcher(StreamLimits())
    dispatcher.dispatch(ExecutionStart(prompt_id=P))
    dispatcher.dispatch(ExecutionSuccess(prompt_id=P))
    assert dispatcher.orphaned == 2
    sink = Sink()
    dispatcher.register(P, sink.feed)
    assert [type(e).__name__ for e in sink.events] == ["ExecutionStart", "ExecutionSuccess"]
    dispatcher.register(Q, Sink().feed)
    assert dispatcher.registered == 2


def test_orphans_expire_by_age_and_by_bound() -> None:
    now = [0.0]
    dispatcher = Dispatcher(StreamLimits(orphan_events=3, orphan_ttl=10), clock=lambda: now[0])
    for value in range(5):
        dispatcher.dispatch(progress(value, prompt_id=P))
    assert dispatcher.expired_orphans == 2  # bounded at 3
    now[0] = 11.0
    dispatcher.dispatch(progress(9, prompt_id=Q))  # expires everything older than 10 s
    sink = Sink()
    dispatcher.register(P, sink.feed)
    assert sink.events == []
    assert dispatcher.expired_orphans == 5


def test_late_events_of_finished_jobs_are_dropped() -> None:
    dispatcher = Dispatcher(StreamLimits())
    dispatcher.register(P, Sink().feed)
    dispatcher.unregister(P)
    dispatcher.dispatch(Executing(node=None, prompt_id=P))
    assert dispatcher.late == 1
    assert dispatcher.orphaned == 0


async def test_taps_see_global_events_and_optionally_job_events() -> None:
    dispatcher = Dispatcher(StreamLimits())
    dispatcher.register(P, Sink().feed)
    quiet = dispatcher.tap()
    everything = dispatcher.tap(include_jobs=True)
    dispatcher.dispatch(Status())
    dispatcher.dispatch(progress(1))
    dispatcher.dispatch(progress(2, prompt_id=Q))  # another client's prompt: not ours
    quiet.close()
    everything.close()
    assert [type(e).__name__ for e in [e async for e in quiet]] == ["Status", "Progress"]
    assert len([e async for e in everything]) == 3


async def test_tap_drops_oldest_when_full() -> None:
    dispatcher = Dispatcher(StreamLimits())
    tap = dispatcher.tap(limit=2)
    for n in range(5):
        dispatcher.dispatch(UnknownEvent(type=f"t{n}"))
    tap.close()
    assert [e.type async for e in tap] == ["t3", "t4"]
    assert tap.stats.dropped_events == 3


def test_broadcast_reaches_every_registered_job() -> None:
    dispatcher = Dispatcher(StreamLimits())
    sinks = {P: Sink(), Q: Sink()}
    for prompt_id, sink in sinks.items():
        dispatcher.register(prompt_id, sink.feed)
    dispatcher.broadcast(lambda pid: ExecutionSuccess(prompt_id=pid))
    assert all(sink.events[0].prompt_id == pid for pid, sink in sinks.items())


def test_close_forgets_everything() -> None:
    dispatcher = Dispatcher(StreamLimits())
    dispatcher.register(P, Sink().feed)
    dispatcher.dispatch(progress(1, prompt_id=Q))
    tap = dispatcher.tap()
    dispatcher.close()
    assert dispatcher.registered == 0
    assert tap._stream.closed
