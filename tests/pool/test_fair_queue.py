"""The admission line without an event loop: fair order, priority, weights, limits, position."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from comfy_async._live.session import SubmitOptions
from comfy_async._pool.admission import FairQueue
from comfy_async._pool.held import Demand, Entry
from comfy_async._pool.needs import Needs
from comfy_async.config import AdmissionPolicy, TenantLimits
from comfy_async.errors import AdmissionRefused

NOTHING = Demand(Needs(frozenset(), frozenset()))
_names = itertools.count()


def entry(tenant: str | None, priority: int = 0) -> Entry:
    return Entry(
        job=f"job-{next(_names)}",  # type: ignore[arg-type]
        prompt={},
        options=SubmitOptions(),
        demand=NOTHING,
        retries=0,
        held_since=0.0,
        tenant=tenant,
        priority=priority,
    )


def drain(queue: FairQueue) -> list[Entry]:
    out = []
    while (item := queue.pop()) is not None:
        item.released = True
        out.append(item)
    return out


def test_tenants_take_turns_and_a_newcomer_gets_no_credit_for_idle_time() -> None:
    queue = FairQueue(AdmissionPolicy())
    heavy = [entry("heavy") for _ in range(6)]
    for item in heavy:
        queue.push(item, 0.0)
    first = [queue.pop(), queue.pop()]
    assert first == heavy[:2]
    light = [entry(f"light{i}") for i in range(3) for _ in range(2)]
    for item in light:
        queue.push(item, 0.0)
    order = [item.tenant for item in drain(queue)]
    # the light tenants join at the current virtual time: one heavy job per round at most
    assert order == [
        "light0", "light1", "light2", "heavy",
        "light0", "light1", "light2", "heavy",
        "heavy", "heavy",
    ]  # fmt: skip


def test_priority_goes_first_within_and_across_tenants() -> None:
    queue = FairQueue(AdmissionPolicy())
    low = [entry("a") for _ in range(3)]
    for item in low:
        queue.push(item, 0.0)
    urgent = entry("b", priority=5)
    mine = entry("a", priority=1)
    queue.push(urgent, 0.0)
    queue.push(mine, 0.0)
    assert drain(queue)[:2] == [urgent, mine]


def test_weights_share_the_releases() -> None:
    queue = FairQueue(AdmissionPolicy(weights={"paid": 3.0}))
    for _ in range(8):
        queue.push(entry("paid"), 0.0)
        queue.push(entry("free"), 0.0)
    first_eight = [item.tenant for item in drain(queue)[:8]]
    assert first_eight.count("paid") == 6


def test_limits_refuse_at_once_saying_which() -> None:
    policy = AdmissionPolicy(
        limits=TenantLimits(max_in_flight=3, max_held=2, per_minute=4),
        tenants={"vip": TenantLimits()},
        max_held=6,
    )
    queue = FairQueue(policy)
    for _ in range(2):
        queue.check("u", 0.0)
        queue.push(entry("u"), 0.0)
    with pytest.raises(AdmissionRefused) as held:
        queue.check("u", 1.0)
    assert (held.value.tenant, held.value.limit, held.value.value) == ("u", "max_held", 2)
    released = drain(queue)  # no longer held, still in flight
    queue.check("u", 2.0)
    queue.push(entry("u"), 2.0)
    with pytest.raises(AdmissionRefused, match="max_in_flight"):
        queue.check("u", 3.0)
    for item in released + drain(queue):
        queue.ended(item)
    queue.check("u", 4.0)  # nothing in flight: the 4th of the minute is accepted
    queue.push(entry("u"), 4.0)
    with pytest.raises(AdmissionRefused) as rate:
        queue.check("u", 5.0)  # the 5th is not
    assert rate.value.limit == "per_minute"
    for _ in range(5):  # one of u's is held: 6 in all
        queue.check("vip", 20.0)  # its own limits: none
        queue.push(entry("vip"), 20.0)
    with pytest.raises(AdmissionRefused) as full:
        queue.check("vip", 20.0)
    assert (full.value.tenant, full.value.limit) == (None, "max_held")
    assert "the client is at its max_held limit (6)" in str(full.value)


def test_a_rate_limit_says_when_to_retry() -> None:
    queue = FairQueue(AdmissionPolicy(limits=TenantLimits(per_minute=2)))
    for now in (0.0, 10.0):
        queue.check("u", now)
        queue.push(entry("u"), now)
    with pytest.raises(AdmissionRefused) as refused:
        queue.check("u", 15.0)
    assert refused.value.limit == "per_minute"
    assert refused.value.retry_after == pytest.approx(45.0)
    queue.check("u", 60.5)  # the first one left the window


def test_a_removed_job_leaves_the_line_and_its_tenant_is_served_on() -> None:
    queue = FairQueue(AdmissionPolicy())
    a1, a2, b1 = entry("a"), entry("a"), entry("b")
    for item in (a1, a2, b1):
        queue.push(item, 0.0)
    assert queue.remove(a1)
    assert not queue.remove(a1)
    assert len(queue) == 2
    assert drain(queue) == [a2, b1]


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from([0, 0, 0, 1])),
        min_size=1,
        max_size=40,
    ),
    st.integers(min_value=0, max_value=5),
)
def test_position_is_the_place_in_the_release_order(jobs, served_first) -> None:
    queue = FairQueue(AdmissionPolicy())
    items = [entry(tenant, priority) for tenant, priority in jobs]
    for item in items[: len(items) // 2]:
        queue.push(item, 0.0)
    for _ in range(min(served_first, len(queue))):
        released = queue.pop()
        assert released is not None
        released.released = True
    for item in items[len(items) // 2 :]:
        queue.push(item, 0.0)
    waiting = [item for item in items if not item.released]
    positions = {id(item): queue.position(item) for item in waiting}
    order = drain(queue)
    for index, item in enumerate(order):
        assert positions[id(item)] == index, (index, item.tenant, item.priority)
