"""The jobs a pool holds client-side, grouped by what they need, oldest first.

Jobs that need the same models and the same server tags form a group: routing decides per
group, so a placement looks at a few groups rather than at every held job. Within a group jobs
keep their order; a job moved off a failed server goes back to the front of its group.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from comfy_async._live.session import SubmitOptions
    from comfy_async._pool.needs import Needs
    from comfy_async.job import Job

__all__ = ["Demand", "Entry", "HeldJobs"]

_order = itertools.count()


@dataclass(frozen=True, slots=True)
class Demand:
    """What a group's jobs need: node classes and models, and tags their server must carry."""

    needs: Needs
    tags: frozenset[str] = frozenset()


@dataclass(slots=True, eq=False)
class Entry:
    """One pool job: its graph and submit options, its retry budget, where it is."""

    job: Job
    prompt: Mapping[str, object]
    options: SubmitOptions
    demand: Demand
    retries: int
    held_since: float
    seq: int = field(default_factory=lambda: next(_order))
    member: str | None = None
    """The server it was placed on (``None`` while held)."""
    cold: bool = False
    """Whether its models were not warm where it was placed (a load was expected)."""
    tenant: str | None = None
    priority: int = 0
    released: bool = False
    """Whether admission let it go to the servers (it is then in the held groups or placed)."""
    removed: bool = False
    """Cancelled while waiting for admission."""
    idempotent: bool = False
    """Submitted by ``submit_or_attach``: after its POST, duplicates of its id are resolved."""
    placed_seq: int = 0
    """Order of placement on its server (its place in that server's queue)."""


class HeldJobs:
    """The held entries by demand; each group keeps its order."""

    def __init__(self) -> None:
        self._groups: dict[Demand, deque[Entry]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def push(self, entry: Entry, *, front: bool = False) -> None:
        """Hold ``entry`` (at the front of its group when it comes back from a server)."""
        group = self._groups.setdefault(entry.demand, deque())
        if front:
            group.appendleft(entry)
        else:
            group.append(entry)
        self._count += 1

    def remove(self, entry: Entry) -> bool:
        """Take a held entry out (a cancel); whether it was held."""
        group = self._groups.get(entry.demand)
        if group is None or entry not in group:
            return False
        group.remove(entry)
        self._count -= 1
        if not group:
            del self._groups[entry.demand]
        return True

    def groups(self) -> list[tuple[Demand, deque[Entry]]]:
        """The non-empty groups, the one holding the oldest job first."""
        return sorted(self._groups.items(), key=lambda item: item[1][0].seq)

    def pop(self, demand: Demand) -> Entry:
        """Take the first entry of a group out, to place it."""
        group = self._groups[demand]
        entry = group.popleft()
        self._count -= 1
        if not group:
            del self._groups[demand]
        return entry

    def __iter__(self) -> Iterator[Entry]:
        for group in self._groups.values():
            yield from group
