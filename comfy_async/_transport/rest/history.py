"""``comfy.history``: finished prompts, listed or one by one, and deleting them.

Routes: ``GET /history`` (``max_items``, ``offset``), ``GET /history/{id}``, ``POST /history``
(``delete``/``clear``) locally (protocol doc §2.1); Comfy Cloud lists through
``GET /api/history_v2`` and ``/api/history_v2/{id}`` (§8). Each shape has its decoder, picked by
the route's template; all of them give :class:`~comfy_async.models.HistoryRecord` values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from comfy_async._transport.rest.namespace import Namespace
from comfy_async.models.history import (
    HistoryRecord,
    decode_cloud_history,
    decode_cloud_history_list,
    decode_history,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = ["History"]


def _local_list(buf: bytes) -> Mapping[str, HistoryRecord]:
    return decode_history(buf)


def _cloud_list(buf: bytes) -> Mapping[str, HistoryRecord]:
    return decode_cloud_history_list(buf).by_id()


def _local_one(buf: bytes) -> Mapping[str, HistoryRecord]:
    return decode_history(buf)


def _cloud_one(buf: bytes) -> Mapping[str, HistoryRecord]:
    return decode_cloud_history(buf)


_LIST: Final[Mapping[str, Callable[[bytes], Mapping[str, HistoryRecord]]]] = {
    "/history": _local_list,
    "/history_v2": _cloud_list,
}
_ONE: Final[Mapping[str, Callable[[bytes], Mapping[str, HistoryRecord]]]] = {
    "/history/{prompt_id}": _local_one,
    "/history_v2/{prompt_id}": _cloud_one,
}


class History(Namespace):
    """Finished prompts: ``comfy.history``."""

    __slots__ = ()

    async def get(self, prompt_id: str) -> HistoryRecord | None:
        """The history entry of one prompt, or ``None`` while it has none.

        ``None`` means pending, running, deleted or unknown (the server answers ``{}``).
        Cancelling abandons the read.
        """
        route = self._route("history.get", prompt_id=prompt_id)
        entries = await self._http.fetch(route, self._decoder("history.get", _ONE))
        if not entries:
            return None
        record = entries.get(prompt_id)
        return record if record is not None else next(iter(entries.values()))

    async def delete(self, prompt_ids: Iterable[str]) -> None:
        """Delete these entries (unknown ids are ignored). Cancelling may leave it sent or not."""
        await self._http.request(self._route("history.update"), json={"delete": list(prompt_ids)})

    async def clear(self) -> None:
        """Delete every history entry. Cancelling may leave the request sent or not."""
        await self._http.request(self._route("history.update"), json={"clear": True})

    async def list(
        self, max_items: int | None = None, offset: int | None = None
    ) -> Mapping[str, HistoryRecord]:
        """History entries by prompt id.

        Locally the mapping is in completion order, oldest first; ``max_items`` alone gives the
        **newest** N (still oldest first) and ``offset`` counts from the oldest (protocol doc
        §7.15). Comfy Cloud lists newest first. Cancelling abandons the read.
        """
        query = {"max_items": max_items, "offset": offset}
        route = self._route("history.list")
        return await self._http.fetch(route, self._decoder("history.list", _LIST), query=query)
