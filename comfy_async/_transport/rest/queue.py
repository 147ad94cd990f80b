"""``comfy.queue``: the server's queue: read it, delete or clear pending prompts, interrupt.

Routes: ``GET /queue``, ``POST /queue`` (``delete``/``clear``), ``POST /interrupt`` (protocol
doc §2.1). Queue items decode in both layouts (local and Comfy Cloud, §8) through
:class:`~comfy_async.models.Queue`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from comfy_async._transport.rest.namespace import Namespace
from comfy_async.models.queue import Queue as QueueModel
from comfy_async.models.queue import decode_queue

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Queue"]


class Queue(Namespace):
    """The server's queue: ``comfy.queue``."""

    __slots__ = ()

    async def get(self) -> QueueModel:
        """The running and pending prompts (pending in heap order; see ``pending_in_run_order``).

        Cancelling abandons the read; nothing changes on the server.
        """
        return await self._http.fetch(self._route("queue.get"), decode_queue)

    async def delete(self, prompt_ids: Iterable[str]) -> None:
        """Remove these prompts from the **pending** queue (unknown and running ids are ignored).

        To stop a running prompt, use ``comfy.jobs.cancel`` or :meth:`interrupt`. Cancelling the
        call may leave the request sent or not.
        """
        await self._http.request(self._route("queue.update"), json={"delete": list(prompt_ids)})

    async def clear(self) -> None:
        """Drop every **pending** prompt (of every client; per user on Comfy Cloud).

        The running prompt is not touched. Cancelling the call may leave the request sent or not.
        """
        await self._http.request(self._route("queue.update"), json={"clear": True})

    async def interrupt(self, prompt_id: str | None = None) -> None:
        """Interrupt a running prompt.

        With ``prompt_id``, the server interrupts only if that prompt is the one running, and
        does nothing otherwise. With ``None`` it is a **global** interrupt: whatever runs now
        stops, whoever submitted it. Comfy Cloud ignores the body and interrupts the user's first
        active job: prefer ``comfy.jobs.cancel(prompt_id)`` there (protocol doc §8). Never
        retried automatically (a late repeat could stop the next prompt). Cancelling the call may
        leave the request sent or not.
        """
        route = self._route("interrupt")
        if prompt_id is None:
            await self._http.request(route)
        else:
            await self._http.request(route, json={"prompt_id": prompt_id})
