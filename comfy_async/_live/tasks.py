"""Background tasks owned by a session: strong references, logged failures, clean shutdown.

asyncio keeps only weak references to tasks, so a fire-and-forget task can vanish mid-flight.
A :class:`TaskSet` holds every task a session spawns (finalising a job, cancelling one on the
server, reconciling after a reconnect), logs the failure of any task nobody awaits, and cancels
and awaits them all on :meth:`aclose`, so a closed session leaves no task behind. Tasks spawned
with ``finish_on_close`` (a cancel on its way to the server) get a bounded grace to finish first:
closing a session right after cancelling a job must not drop the cancellation.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, TypeVar

from comfy_async.errors import ClientClosedError

if TYPE_CHECKING:
    from collections.abc import Coroutine


__all__ = ["TaskSet"]

logger = logging.getLogger("comfy_async.tasks")
T = TypeVar("T")


class TaskSet:
    """The background tasks of one session."""

    def __init__(self, name: str = "comfy_async") -> None:
        self._name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._must_finish: set[asyncio.Task[Any]] = set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(
        self,
        coro: Coroutine[Any, Any, T],
        *,
        name: str | None = None,
        finish_on_close: bool = False,
    ) -> asyncio.Task[T]:
        """Start ``coro`` as a task kept alive until it ends.

        With ``finish_on_close``, :meth:`aclose` lets the task finish (within its grace) instead
        of cancelling it at once.

        Raises:
            ClientClosedError: the set is closed (the coroutine is closed, not run).

        """
        if self._closed:
            coro.close()
            raise ClientClosedError("the session is closed")
        task = asyncio.get_running_loop().create_task(coro, name=f"{self._name}:{name or '?'}")
        self._tasks.add(task)
        if finish_on_close:
            self._must_finish.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._must_finish.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            logger.error("background task %s failed", task.get_name(), exc_info=error)

    async def aclose(self, *, grace: float = 5.0) -> None:
        """Cancel every task and wait for all of them to end.

        Tasks spawned with ``finish_on_close`` are first given up to ``grace`` seconds to end by
        themselves. Cancelling the caller cancels the wait, not the closing.
        """
        self._closed = True
        if self._must_finish:
            await asyncio.wait(list(self._must_finish), timeout=grace)
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
