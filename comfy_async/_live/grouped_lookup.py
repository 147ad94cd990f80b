"""Lookups made at about the same time, answered together: one history read for many prompts.

When many jobs end close together (a batch), each asks the server how it ended (design
invariant 4: the success is confirmed over HTTP and the outputs come from the server's record).
:class:`GroupedLookup` lets one lookup at a time go to the server; the lookups that arrive while
it is under way wait and then go together, as one read of the newest history records (protocol
doc §7.15: ``GET /history?max_items=N``). A prompt the window does not hold (still running,
pruned, pushed out by other clients' prompts) and every prompt of a window read that failed is
looked up on its own, as before. A lone lookup is always the per-prompt one: the window only
replaces requests, never adds one.

Nothing here decides an outcome: a record in the window is the same record the per-prompt read
returns, and a prompt found nowhere is still answered by the per-prompt read alone.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from comfy_async.errors import ComfyError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from comfy_async.job import JobSnapshot

__all__ = ["GroupedLookup", "window_size"]

# Most prompts answered by one window read; those beyond wait for the next read.
_MOST_AT_ONCE: Final = 200
# Reads follow each other at most this often (seconds) while other jobs are in flight: the
# lookups made meanwhile wait for the next one. A lookup after a quiet spell, or with no other
# job in flight, goes at once.
TICK: Final = 0.05


class _Lead:
    """Given to a waiting lookup: the read before it is done and it is to make the next one."""


class _Missing:
    """The window did not hold the prompt (or its read failed): look it up on its own."""


_LEAD: Final = _Lead()
_MISSING: Final = _Missing()


def window_size(prompts: int) -> int:
    """How many of the newest records to read for ``prompts`` that have just ended.

    A little more than the prompts themselves: other clients' prompts may have ended among them.
    """
    return prompts + 4 + prompts // 8


class GroupedLookup:
    """One lookup at a time, and all those waiting meanwhile in one read after it.

    ``one`` looks a prompt up on its own (``None``: found nowhere); ``many`` reads the window of
    the newest records for these prompts and returns the ones it holds (it may raise
    :class:`~comfy_async.errors.ComfyError`, and the prompts are then looked up one by one).
    ``crowded`` says whether other jobs are in flight (more lookups may come soon): only then
    does a lookup wait for the next tick.
    """

    __slots__ = ("_busy", "_crowded", "_last_read", "_many", "_one", "_tick", "_waiting")

    def __init__(
        self,
        one: Callable[[str], Awaitable[JobSnapshot | None]],
        many: Callable[[Sequence[str]], Awaitable[Mapping[str, JobSnapshot]]],
        *,
        tick: float = TICK,
        crowded: Callable[[], bool] = lambda: True,
    ) -> None:
        self._one = one
        self._many = many
        self._tick = tick
        self._crowded = crowded
        self._last_read = float("-inf")
        self._waiting: list[tuple[str, asyncio.Future[object]]] = []
        self._busy = False

    async def lookup(self, prompt_id: str) -> JobSnapshot | None:
        """What the server says about ``prompt_id`` (``None``: in neither queue nor history)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        self._waiting.append((prompt_id, future))
        if self._busy:
            try:
                answer = await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled() and future.result() is _LEAD:
                    self._pass_lead()  # handed the lead as it was cancelled: hand it on
                raise
            if answer is not _LEAD:
                return await self._finish(prompt_id, answer)
            future = loop.create_future()  # it makes the next read, and waits in it first
            self._waiting.insert(0, (prompt_id, future))
        else:
            self._busy = True
        try:
            await self._read_for_waiting()
        finally:
            if not future.done():
                future.cancel()  # cancelled before its read: no lead for it
            self._pass_lead()
        return await self._finish(prompt_id, future.result())

    async def _finish(self, prompt_id: str, answer: object) -> JobSnapshot | None:
        if answer is _MISSING:
            return await self._one(prompt_id)
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[return-value]

    async def _read_for_waiting(self) -> None:
        """Answer every lookup waiting now (the leader's among them), by one request."""
        loop = asyncio.get_running_loop()
        # the lookups made until the next tick (at least those of this same turn) join the read
        wait = self._last_read + self._tick - loop.time()
        alone = len(self._waiting) == 1 and not self._crowded()
        await asyncio.sleep(0.0 if alone or wait <= 0 else wait)
        self._last_read = loop.time()
        batch = [item for item in self._waiting[:_MOST_AT_ONCE] if not item[1].done()]
        del self._waiting[:_MOST_AT_ONCE]
        if not batch:
            return
        try:
            if len({key for key, _ in batch}) == 1:
                try:
                    answer: object = await self._one(batch[0][0])
                except ComfyError as error:
                    answer = error
                for _, future in batch:
                    _resolve(future, answer)
                return
            try:
                found = await self._many(list(dict.fromkeys(key for key, _ in batch)))
            except ComfyError:
                found = {}
            for key, future in batch:
                _resolve(future, found.get(key, _MISSING))
        finally:
            for _, future in batch:  # cancelled or failed: each looks itself up
                _resolve(future, _MISSING)

    def _pass_lead(self) -> None:
        """Hand the next read to a waiting lookup, or stand idle."""
        while self._waiting:
            _, future = self._waiting.pop(0)
            if not future.done():
                future.set_result(_LEAD)
                return
        self._busy = False


def _resolve(future: asyncio.Future[object], answer: object) -> None:
    if not future.done():
        future.set_result(answer)
