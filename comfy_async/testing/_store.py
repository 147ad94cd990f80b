"""The fake server's in-memory state: the prompt queue and the history (protocol doc §2.1, §4).

:class:`PromptQueue` is a min-heap on ``(number, prompt_id)`` like the real one (so
``queue_pending`` comes out in heap order, not sorted), with the server's counter for minted
numbers (``front`` → ``-counter``; an explicit ``number`` does not advance it). Taking an item
moves it to "running"; finishing it writes the history entry *before* anything is announced.
:class:`History` keeps entries in completion order (a re-run of a duplicate id keeps the first
position, as a dict does), capped with the oldest evicted, and answers ``max_items``/``offset``.

Every change calls the ``on_change`` callback so the server can broadcast ``status``. This module
owns no sockets and no tasks; everything here is synchronous and loop-bound by its callers.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

__all__ = ["History", "PromptQueue", "QueueItem"]


@dataclass(slots=True)
class QueueItem:
    """One accepted prompt."""

    number: float
    prompt_id: str
    prompt: dict[str, object]
    extra_data: dict[str, object]
    outputs: list[str]
    task_id: int = 0
    interrupted: bool = False
    user: str = "default"

    @property
    def client_id(self) -> str | None:
        """The submitter's socket id, if the prompt named one."""
        value = self.extra_data.get("client_id")
        return value if isinstance(value, str) else None

    @property
    def create_time(self) -> int:
        """Epoch milliseconds the server stamped on arrival."""
        value = self.extra_data.get("create_time", 0)
        return value if isinstance(value, int) else 0

    def as_list(self) -> list[object]:
        """The 5-element wire form ``[number, prompt_id, prompt, extra_data, outputs]``."""
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs]


@dataclass(slots=True)
class PromptQueue:
    """Pending heap plus running items."""

    on_change: Callable[[], None]
    counter: int = 0
    _heap: list[tuple[float, str, int, QueueItem]] = field(default_factory=list)
    running: dict[int, QueueItem] = field(default_factory=dict)
    _tasks: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def next_number(self, *, front: bool) -> int:
        """Mint the number of a prompt without an explicit one (advances the counter)."""
        number = -self.counter if front else self.counter
        self.counter += 1
        return number

    def put(self, item: QueueItem) -> None:
        """Queue ``item`` and announce it."""
        item.task_id = next(self._tasks)
        heapq.heappush(self._heap, (item.number, item.prompt_id, item.task_id, item))
        self.on_change()
        self._notify()

    def _notify(self) -> None:
        self._wake.set()

    async def take(self, *, may_run: Callable[[], bool] | None = None) -> QueueItem:
        """Wait for a pending item (and, if given, for ``may_run()``), and mark it running."""
        while not (self._heap and (may_run is None or may_run())):
            self._wake.clear()
            await self._wake.wait()
        item = heapq.heappop(self._heap)[3]
        self.running[item.task_id] = item
        self.on_change()
        return item

    def poke(self) -> None:
        """Re-check waiting workers (after a running item finished)."""
        self._notify()

    def finish(self, item: QueueItem) -> None:
        """Drop ``item`` from running (the history entry must already be written) and announce."""
        self.running.pop(item.task_id, None)
        self.on_change()
        self._notify()

    @property
    def pending(self) -> list[QueueItem]:
        """Pending items in heap order (what ``GET /queue`` shows)."""
        return [entry[3] for entry in self._heap]

    @property
    def remaining(self) -> int:
        """Pending plus running: ``exec_info.queue_remaining``."""
        return len(self._heap) + len(self.running)

    def delete(self, prompt_ids: Iterable[str]) -> list[QueueItem]:
        """Remove, for each id, the first pending item with it; announce each.

        As ComfyUI does: one item per id per request, in the order of its heap list; running
        ones are untouched.
        """
        removed = []
        for prompt_id in prompt_ids:
            for entry in self._heap:
                if entry[1] == prompt_id:
                    self._heap.remove(entry)
                    heapq.heapify(self._heap)
                    removed.append(entry[3])
                    self.on_change()
                    break
        return removed

    def clear(self) -> list[QueueItem]:
        """Remove every pending item and announce once."""
        removed = [entry[3] for entry in self._heap]
        self._heap.clear()
        self.on_change()
        return removed

    def find_running(self, prompt_id: str) -> QueueItem | None:
        """The running item with this id, if any."""
        return next((i for i in self.running.values() if i.prompt_id == prompt_id), None)

    def find_pending(self, prompt_id: str) -> QueueItem | None:
        """The pending item with this id, if any."""
        return next((e[3] for e in self._heap if e[1] == prompt_id), None)


@dataclass(slots=True)
class HistoryEntry:
    """One finished prompt, with what the jobs API derives from it."""

    item: QueueItem
    outputs: dict[str, object]
    status: dict[str, object]
    meta: dict[str, object]
    start_time: int | None
    end_time: int | None

    def as_dict(self) -> dict[str, object]:
        """The ``/history`` wire form."""
        return {
            "prompt": self.item.as_list(),
            "outputs": self.outputs,
            "status": self.status,
            "meta": self.meta,
        }


class History:
    """Finished prompts in completion order, capped (oldest evicted)."""

    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self._entries: dict[str, HistoryEntry] = {}

    def put(self, entry: HistoryEntry) -> None:
        """Store ``entry``; a duplicate id keeps its first position, as on a real server."""
        self._entries[entry.item.prompt_id] = entry
        while len(self._entries) > self.max_items:
            del self._entries[next(iter(self._entries))]

    def get(self, prompt_id: str) -> HistoryEntry | None:
        """The entry of ``prompt_id``, if any."""
        return self._entries.get(prompt_id)

    def __iter__(self) -> Iterator[HistoryEntry]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    def window(self, max_items: int | None, offset: int | None) -> list[HistoryEntry]:
        """``max_items`` alone → the newest N; ``offset`` counts from the oldest (§7.15)."""
        entries = list(self._entries.values())
        start = offset if offset is not None and offset >= 0 else -1
        if start < 0:
            start = max(0, len(entries) - max_items) if max_items is not None else 0
        end = start + max_items if max_items is not None else len(entries)
        return entries[start:end]

    def delete(self, prompt_ids: set[str]) -> None:
        """Forget these ids."""
        for prompt_id in prompt_ids:
            self._entries.pop(prompt_id, None)

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()
