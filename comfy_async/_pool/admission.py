"""Admission: which held job goes to the servers next, fairly between tenants (no I/O).

Jobs wait here until the servers have room. The next one released is chosen by

1. **priority** — the highest priority among every tenant's next job goes first;
2. **fair share** — among tenants whose next job has that priority, the one with the least
   service so far, measured in virtual time: each release advances its tenant's clock by
   ``1 / weight``; a tenant that had nothing waiting joins at the current virtual time, so idle
   time is not saved up as credit;
3. **order** — ties go to the tenant served least recently, then to the earlier submission.

The consequence, which the tests check: with ``n`` tenants of equal weight and priority, while a
tenant has jobs waiting, at most ``n - 1`` jobs of others are released between two of its own.
A heavy tenant's backlog therefore delays a light tenant's job by at most one heavy job per
round, plus what the servers already held when the light tenant arrived.

Holding and releasing are O(log n): one heap per tenant (its jobs by priority, then order) and
one heap of tenants by (priority of their next job, virtual time, last service), with stale
entries skipped lazily. A job's place in line is exact: the order is replayed on copies until it
comes up (O(n + k log n) for k jobs ahead), which a bot asks once per reply. Limits (in flight,
held, per minute) are checked at submission and refuse at once with
:class:`~comfy_async.errors.AdmissionRefused`.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from comfy_async.errors import AdmissionRefused

if TYPE_CHECKING:
    from comfy_async._pool.held import Entry
    from comfy_async.config import AdmissionPolicy

__all__ = ["FairQueue"]

_RATE_WINDOW = 60.0


@dataclass(slots=True, eq=False)
class _Tenant:
    key: str | None
    weight: float
    arrival: int
    jobs: list[tuple[int, int, Entry]] = field(default_factory=list)  # (-priority, seq, entry)
    vtime: float = 0.0
    served_at: int = -1
    version: int = 0
    held: int = 0
    in_flight: int = 0  # held or on a server, not ended
    submitted: deque[float] = field(default_factory=deque)


class FairQueue:
    """The held jobs of every tenant, released in the fair order (see the module docstring)."""

    def __init__(self, policy: AdmissionPolicy) -> None:
        self.policy = policy
        self._tenants: dict[str | None, _Tenant] = {}
        self._ready: list[tuple[int, float, int, int, int, str | None]] = []
        self._arrivals = itertools.count()
        self._services = itertools.count()
        self._vclock = 0.0
        self._held = 0

    def __len__(self) -> int:
        return self._held

    # ------------------------------------------------------------------ limits

    def check(self, tenant: str | None, now: float) -> None:
        """Refuse a submission of ``tenant`` that would go over a limit.

        Raises:
            AdmissionRefused: which limit, its value, and for a rate when to retry.

        """
        policy = self.policy
        if policy.max_held is not None and self._held >= policy.max_held:
            raise AdmissionRefused(None, "max_held", policy.max_held)
        limits = policy.limits_of(tenant)
        state = self._tenants.get(tenant)
        if state is None:
            return
        if limits.max_in_flight is not None and state.in_flight >= limits.max_in_flight:
            raise AdmissionRefused(tenant, "max_in_flight", limits.max_in_flight)
        if limits.max_held is not None and state.held >= limits.max_held:
            raise AdmissionRefused(tenant, "max_held", limits.max_held)
        if limits.per_minute is not None:
            window = state.submitted
            while window and now - window[0] >= _RATE_WINDOW:
                window.popleft()
            if len(window) >= limits.per_minute:
                retry_after = _RATE_WINDOW - (now - window[0])
                raise AdmissionRefused(tenant, "per_minute", limits.per_minute, retry_after)

    # ------------------------------------------------------------------ holding

    def push(self, entry: Entry, now: float) -> None:
        """Hold ``entry`` (call :meth:`check` first): it counts against its tenant's limits."""
        state = self._tenants.get(entry.tenant)
        if state is None:
            state = _Tenant(entry.tenant, self.policy.weight_of(entry.tenant), next(self._arrivals))
            self._tenants[entry.tenant] = state
        if state.held == 0:
            state.vtime = max(state.vtime, self._vclock)  # no credit for idle time
        if self.policy.limits_of(entry.tenant).per_minute is not None:
            state.submitted.append(now)
        head = self._next_of(state)
        heapq.heappush(state.jobs, (-entry.priority, entry.seq, entry))
        state.held += 1
        state.in_flight += 1
        self._held += 1
        if head is None or state.jobs[0][2] is entry:
            self._enlist(state)  # its next job changed (else its record in line still holds)

    def pop(self) -> Entry | None:
        """Release the next job in the fair order (``None`` when nothing is held)."""
        while self._ready:
            _, vtime, _, _, version, key = heapq.heappop(self._ready)
            state = self._tenants.get(key)
            if state is None or state.version != version:
                continue  # stale: the tenant's next job changed since
            entry = self._next_of(state)
            if entry is None:
                continue
            heapq.heappop(state.jobs)
            state.held -= 1
            self._held -= 1
            self._vclock = max(self._vclock, vtime)
            state.vtime = vtime + 1.0 / state.weight
            state.served_at = next(self._services)
            self._enlist(state)
            return entry
        return None

    def remove(self, entry: Entry) -> bool:
        """Take a held job out (cancelled): whether it was held here."""
        state = self._tenants.get(entry.tenant)
        if state is None or entry.released or entry.removed:
            return False
        entry.removed = True
        state.held -= 1
        state.in_flight -= 1
        self._held -= 1
        self._enlist(state)  # its next job may have changed
        self._forget_if_idle(state)
        return True

    def ended(self, entry: Entry) -> None:
        """A released job of the tenant ended: it no longer counts as in flight."""
        state = self._tenants.get(entry.tenant)
        if state is not None and entry.released:
            state.in_flight -= 1
            self._forget_if_idle(state)

    def position(self, entry: Entry) -> int | None:
        """How many held jobs are released before ``entry`` (``None`` once released or removed).

        Exact: the release order is replayed on copies of the tenants' heaps until ``entry``
        comes up, O(n + k log n) for ``k`` jobs ahead.
        """
        state = self._tenants.get(entry.tenant)
        if state is None or entry.released or entry.removed:
            return None
        heaps = {key: list(tenant.jobs) for key, tenant in self._tenants.items() if tenant.held}
        clocks = {key: tenant.vtime for key, tenant in self._tenants.items()}
        services = itertools.count(max((t.served_at for t in self._tenants.values()), default=0))
        ready: list[tuple[int, float, int, int, str | None]] = []

        def enlist(key: str | None, served_at: int) -> None:
            jobs = heaps[key]
            while jobs and jobs[0][2].removed:
                heapq.heappop(jobs)
            if jobs:
                tenant = self._tenants[key]
                record = (jobs[0][0], clocks[key], served_at, tenant.arrival, key)
                heapq.heappush(ready, record)

        for key, tenant in self._tenants.items():
            if key in heaps:
                enlist(key, tenant.served_at)
        ahead = 0
        while ready:
            _, vtime, _, _, key = heapq.heappop(ready)
            _, _, head = heapq.heappop(heaps[key])
            if head is entry:
                return ahead
            ahead += 1
            clocks[key] = vtime + 1.0 / self._tenants[key].weight
            enlist(key, next(services) + 1)
        return None  # not reached: the entry is held

    # ------------------------------------------------------------------ internals

    def _next_of(self, state: _Tenant) -> Entry | None:
        jobs = state.jobs
        while jobs and jobs[0][2].removed:
            heapq.heappop(jobs)
        return jobs[0][2] if jobs else None

    def _enlist(self, state: _Tenant) -> None:
        state.version += 1
        entry = self._next_of(state)
        if entry is not None:
            record = (
                -entry.priority,
                state.vtime,
                state.served_at,
                state.arrival,
                state.version,
                state.key,
            )
            heapq.heappush(self._ready, record)

    def _forget_if_idle(self, state: _Tenant) -> None:
        if state.in_flight == 0 and state.held == 0 and not state.submitted:
            # keep its virtual time: a tenant coming back joins at the clock anyway
            del self._tenants[state.key]
