"""Which held job a server with room takes next (pure: tested without an event loop).

A pool keeps the servers' own queues short and places jobs late, when a server has room, so the
choice is made with what is known then. For a server ``S`` with room, over the groups of held
jobs (jobs needing the same models) it can run, oldest group first:

1. a group no other server holds warm whose oldest job has waited longer than loading its models
   on ``S`` and running it would take (``load_cost + mean_duration``): nobody else will take it;
2. a group whose models are warm on ``S`` (loaded there by earlier jobs): no load at all —
   unless another group's backlog would take longer to drain on the servers that hold its
   models than ``S``'s own group takes on the others, by more than a load: then ``S`` moves to
   where it is needed (a batch spreads over the fleet in proportion to its groups);
3. the group whose expected wait on the servers where it is warm (its backlog over their
   throughput) is longest, if it exceeds the cost of loading it on ``S``: spreading pays;
4. a group warm nowhere: someone has to load it.

Otherwise ``S`` stays idle for now: its work is better done by servers that hold the models.
A held job's own wait is no reason to load its models while others hold them: in a backlog
every job waits, and a load only adds to the work.
Every choice carries a one-line reason (logged at debug level, shown by ``job.server``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["GroupView", "Pick", "ServerView", "pick"]


@dataclass(frozen=True, slots=True)
class ServerView:
    """What routing knows of a server with room."""

    name: str
    warm: frozenset[str]
    mean_duration: float
    load_cost: float


@dataclass(frozen=True, slots=True)
class GroupView:
    """What routing knows of one group of held jobs (same models, same constraints)."""

    models: frozenset[str]
    backlog: int
    waited: float
    """How long the group's oldest job has been held, in seconds."""
    warm_throughput: float
    """Jobs per second the *other* healthy servers where the models are warm can run."""
    capable: bool
    """Whether the server can run these jobs at all."""


@dataclass(frozen=True, slots=True)
class Pick:
    """The group a server takes its next job from, and why."""

    index: int
    reason: str


def pick(server: ServerView, groups: Sequence[GroupView]) -> Pick | None:
    """Choose the group ``server`` takes a job from (``groups`` oldest first), or ``None``."""
    patience = server.load_cost + server.mean_duration
    warm: tuple[int, GroupView] | None = None
    neediest: tuple[int, float] | None = None
    cold: Pick | None = None
    for index, group in enumerate(groups):
        if not group.capable or group.backlog <= 0:
            continue
        if group.models <= server.warm:
            if warm is None:
                warm = (index, group)
            continue
        if group.warm_throughput <= 0:
            if group.waited > patience:
                return Pick(index, f"held {group.waited:.1f}s, longer than a load and a run here")
            if cold is None:
                cold = Pick(index, "its models are warm nowhere: loading them here")
            continue
        expected = group.backlog / group.warm_throughput
        if neediest is None or expected > neediest[1]:
            neediest = (index, expected)
    if warm is not None:
        index, group = warm
        if neediest is not None and not math.isinf(server.load_cost):
            other, expected = neediest
            stay = _drain(group)
            if expected > stay + server.load_cost:
                return Pick(
                    other,
                    f"{groups[other].backlog} held would wait ~{expected:.1f}s on the warm "
                    f"servers, more than ~{stay:.1f}s for this server's own and a "
                    f"{server.load_cost:.1f}s load here",
                )
        return Pick(index, "its models are warm here" if group.models else "no models")
    if neediest is not None:
        index, expected = neediest
        if expected > server.load_cost and not math.isinf(server.load_cost):
            return Pick(
                index,
                f"{groups[index].backlog} held would wait ~{expected:.1f}s on the warm servers,"
                f" more than a {server.load_cost:.1f}s load here",
            )
    return cold


def _drain(group: GroupView) -> float:
    """Seconds the other servers holding ``group``'s models need for its backlog."""
    if group.warm_throughput <= 0:
        return math.inf
    return group.backlog / group.warm_throughput
