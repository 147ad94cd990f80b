r"""Server-Sent Events: split a ``text/event-stream`` body into ``(event name, data)`` pairs.

Follows the WHATWG rules the Comfy API v2 stream needs: ``event:`` names the event (``message``
when absent), ``data:`` lines are joined with newlines, a blank line dispatches, comments
(``:``) and ``id:``/``retry:`` fields are ignored (the v2 stream has no ids and no replay), and
``\r\n``, ``\r`` or ``\n`` end lines. An event without data is not dispatched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator

__all__ = ["SseParser", "sse_events"]


class SseParser:
    """Incremental parser: :meth:`feed` bytes in any chunking, get the complete events back."""

    __slots__ = ("_buffer", "_data", "_name")

    def __init__(self) -> None:
        self._buffer = b""
        self._name = ""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        """Take the next bytes of the stream; return the events they complete, in order."""
        self._buffer += chunk
        events: list[tuple[str, bytes]] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                return events
            end, skip = cut
            line, self._buffer = self._buffer[:end], self._buffer[end + skip :]
            self._line(line, events)

    def _line(self, line: bytes, events: list[tuple[str, bytes]]) -> None:
        if not line:
            if self._data:
                events.append((self._name or "message", b"\n".join(self._data)))
            self._name, self._data = "", []
            return
        if line.startswith(b":"):
            return
        field, _, value = line.partition(b":")
        value = value.removeprefix(b" ")
        if field == b"event":
            self._name = value.decode("utf-8", "replace")
        elif field == b"data":
            self._data.append(value)


def _line_end(buffer: bytes) -> tuple[int, int] | None:
    """Where the first line ends and how long its terminator is (``None``: no full line yet)."""
    newline = buffer.find(b"\n")
    carriage = buffer.find(b"\r")
    if carriage == -1 or (newline != -1 and newline < carriage):
        return None if newline == -1 else (newline, 1)
    if carriage + 1 == len(buffer):
        return None  # a lone CR at the end may be the start of CRLF
    return carriage, 2 if buffer[carriage + 1] == 0x0A else 1


async def sse_events(chunks: AsyncIterable[bytes]) -> AsyncIterator[tuple[str, bytes]]:
    """The events of a stream of body chunks; an unfinished last event is dropped."""
    parser = SseParser()
    async for chunk in chunks:
        for event in parser.feed(chunk):
            yield event
