"""The SSE parser: the same events whatever the chunking, every line ending, comments skipped."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

from hypothesis import given
from hypothesis import strategies as st

from comfy_async._live.sse import SseParser, sse_events

STREAM = (
    b": a comment\n"
    b'event: status\ndata: {"status": "running"}\n\n'
    b'id: 7\nretry: 10\nevent: progress\r\ndata: {"value":\r\ndata:  0.5}\r\n\r\n'
    b"data: plain\r\rdata:no-space\n\n"
    b"event: nothing\n\n"
    b"event: unfinished\ndata: x"
)
EXPECTED = [
    ("status", b'{"status": "running"}'),
    ("progress", b'{"value":\n 0.5}'),
    ("message", b"plain"),
    ("message", b"no-space"),
]


def test_a_stream_in_one_chunk() -> None:
    assert SseParser().feed(STREAM) == EXPECTED


@given(cuts=st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    parser = SseParser()
    bounds = [0, *sorted(cuts), len(STREAM)]
    events: list[tuple[str, bytes]] = []
    for start, end in itertools.pairwise(bounds):
        events += parser.feed(STREAM[start:end])
    assert events == EXPECTED


async def test_the_async_reader_drops_an_unfinished_last_event() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for index in range(0, len(STREAM), 5):
            yield STREAM[index : index + 5]

    assert [event async for event in sse_events(chunks())] == EXPECTED
