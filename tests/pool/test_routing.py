"""Routing and health without an event loop: which group a server takes, when it goes down."""

from __future__ import annotations

from comfy_async._pool.breaker import Breaker, Health
from comfy_async._pool.routing import GroupView, ServerView, pick

A = frozenset({"checkpoints/a.safetensors"})
B = frozenset({"checkpoints/b.safetensors"})


def server(warm: frozenset[str] = frozenset(), load: float = 10.0, mean: float = 2.0):
    return ServerView("s", warm, mean_duration=mean, load_cost=load)


def group(models: frozenset[str], *, backlog: int = 5, waited: float = 0.0, warm: float = 0.0):
    return GroupView(models, backlog, waited, warm_throughput=warm, capable=True)


def test_a_server_takes_the_group_whose_models_it_holds() -> None:
    choice = pick(server(warm=B), [group(A, warm=1.0), group(B)])
    assert choice is not None
    assert choice.index == 1
    assert "warm here" in choice.reason


def test_a_group_no_one_else_holds_goes_first_once_it_waited_a_load_and_a_run() -> None:
    choice = pick(server(warm=B), [group(A, waited=12.5), group(B)])
    assert choice is not None
    assert choice.index == 0
    assert "held 12.5s" in choice.reason
    assert pick(server(warm=B), [group(A, waited=11.5), group(B)]).index == 1


def test_in_a_backlog_a_server_keeps_its_warm_group_whatever_the_other_waited() -> None:
    # both groups held long (a batch): loading A here would only add a load to the work
    choice = pick(server(warm=B), [group(A, backlog=50, waited=60.0, warm=1.0), group(B)])
    assert choice is not None
    assert choice.index == 1
    assert "warm here" in choice.reason


def test_a_warm_server_moves_to_the_group_whose_backlog_drains_slowest() -> None:
    # A: 100 held at 1 job/s elsewhere (~100 s); B: 10 held at 2 jobs/s elsewhere (~5 s)
    busy_a, light_b = group(A, backlog=100, warm=1.0), group(B, backlog=10, warm=2.0)
    choice = pick(server(warm=B, load=10.0), [busy_a, light_b])
    assert choice is not None
    assert choice.index == 0
    assert "more than ~5.0s for this server's own" in choice.reason
    # within a load of each other: it stays
    assert pick(server(warm=B, load=10.0), [group(A, backlog=14, warm=1.0), light_b]).index == 1


def test_a_cold_server_loads_a_group_only_when_the_wait_elsewhere_costs_more() -> None:
    # 5 held at 1 job/s on the warm servers: ~5 s of waiting, less than a 10 s load
    assert pick(server(load=10.0), [group(A, backlog=5, warm=1.0)]) is None
    # 50 held: ~50 s of waiting, more than the load
    choice = pick(server(load=10.0), [group(A, backlog=50, warm=1.0)])
    assert choice is not None
    assert "more than a 10.0s load" in choice.reason


def test_a_group_warm_nowhere_is_loaded_somewhere() -> None:
    choice = pick(server(load=100.0), [group(A)])
    assert choice is not None
    assert "warm nowhere" in choice.reason


def test_a_server_never_takes_what_it_cannot_run() -> None:
    lacking = GroupView(A, 9, 99.0, 0.0, capable=False)
    assert pick(server(), [lacking]) is None
    assert pick(server(), [group(A, backlog=0)]) is None


def test_jobs_without_models_are_warm_everywhere() -> None:
    choice = pick(server(), [group(frozenset())])
    assert choice is not None
    assert choice.reason == "no models"


def test_the_breaker_trips_after_failures_in_a_row_and_readmits_after_recovery() -> None:
    breaker = Breaker(failures_to_trip=2)
    assert not breaker.failed(1.0, "timeout")
    assert breaker.succeeded(1.5) is False  # a success resets the count
    assert not breaker.failed(2.0, "timeout")
    assert breaker.failed(3.0, "refused")
    assert breaker.state is Health.DOWN
    assert breaker.down_since == 3.0
    assert not breaker.failed(4.0, "still refused")  # already down: no second trip
    assert breaker.reason == "refused"  # the reason it went down is kept
    assert breaker.succeeded(5.0)
    assert breaker.state is Health.RECOVERING
    assert breaker.failed(5.5, "purge failed")  # a failure while recovering: down again
    assert breaker.down_since == 3.0  # still the same outage
    assert breaker.succeeded(6.0)
    breaker.readmit(6.5)
    assert breaker.state is Health.UP
    assert breaker.trips == 2
