"""A server's health as a circuit breaker: up, down after failures, back after a good probe.

Pure state (the clock is passed in), so every transition is tested without an event loop:

* ``UP`` — gets jobs; ``failures_to_trip`` failures in a row (a probe, a POST, a socket that
  stayed down too long) open the breaker;
* ``DOWN`` — gets no jobs; probes go on (half-open) and the first that succeeds moves it to
* ``RECOVERING`` — the pool clears from the server's queue what it moved elsewhere, then
  re-admits it (``UP``). A failure meanwhile sends it back ``DOWN``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

__all__ = ["Breaker", "Health"]


class Health(Enum):
    """Whether a pool's server gets jobs."""

    UP = "up"
    DOWN = "down"
    RECOVERING = "recovering"


@dataclass(slots=True)
class Breaker:
    """Counts failures in a row and says when the state changes."""

    failures_to_trip: int = 2
    state: Health = Health.UP
    failures: int = 0
    changed_at: float = 0.0
    reason: str = ""
    trips: int = field(default=0)
    down_since: float = 0.0

    def failed(self, now: float, reason: str) -> bool:
        """Note a failure; return whether the server just went ``DOWN``."""
        self.failures += 1
        if self.state is Health.DOWN:
            return False
        self.reason = reason
        if self.state is Health.RECOVERING or self.failures >= self.failures_to_trip:
            if self.state is Health.UP:
                self.down_since = now
            self.state, self.changed_at = Health.DOWN, now
            self.trips += 1
            return True
        return False

    def succeeded(self, now: float) -> bool:
        """Note a success; return whether a ``DOWN`` server just started ``RECOVERING``."""
        self.failures = 0
        if self.state is Health.DOWN:
            self.state, self.changed_at = Health.RECOVERING, now
            return True
        return False

    def readmit(self, now: float) -> None:
        """The server's queue is clean again: it gets jobs."""
        if self.state is Health.RECOVERING:
            self.state, self.changed_at, self.reason = Health.UP, now, ""
