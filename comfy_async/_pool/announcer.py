"""The pool-level event stream: servers going down and coming back, to every listener.

Each listener gets its own bounded buffer; a listener that falls behind loses its oldest events
(counted in ``dropped``), never slows the pool.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from types import TracebackType

    from comfy_async.events import PoolEvent

__all__ = ["Announcer", "PoolEventStream"]


class PoolEventStream:
    """An async iterator of pool events (and an async context manager that closes it)."""

    def __init__(self, announcer: Announcer, limit: int) -> None:
        self._announcer = announcer
        self._buffer: deque[PoolEvent] = deque(maxlen=limit)
        self._ready = asyncio.Event()
        self._closed = False
        self.dropped = 0
        """Events lost because this listener fell behind."""

    def _put(self, event: PoolEvent) -> None:
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
        self._buffer.append(event)
        self._ready.set()

    def close(self) -> None:
        """Stop listening; iteration ends once the buffer is read."""
        self._closed = True
        self._announcer.listeners.discard(self)
        self._ready.set()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> PoolEvent:
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._buffer.popleft()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class Announcer:
    """Sends each pool event to every listener."""

    def __init__(self, limit: int = 256) -> None:
        self.listeners: set[PoolEventStream] = set()
        self._limit = limit

    def listen(self) -> PoolEventStream:
        """A new listener."""
        stream = PoolEventStream(self, self._limit)
        self.listeners.add(stream)
        return stream

    def announce(self, event: PoolEvent) -> None:
        """Give ``event`` to every listener (never blocks)."""
        for listener in list(self.listeners):
            listener._put(event)

    def close(self) -> None:
        """End every listener's stream."""
        for listener in list(self.listeners):
            listener.close()
