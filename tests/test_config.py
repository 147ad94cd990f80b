"""Option objects: frozen, validated when built, with named defaults."""

from __future__ import annotations

import dataclasses
import random

import pytest

from comfy_async.config import (
    DEFAULT_MAX_MESSAGE_SIZE,
    USE_CLIENT_DEFAULT,
    Backoff,
    ClientOptions,
    HeartbeatPolicy,
    ReconcilePolicy,
    ReconnectPolicy,
    RetryPolicy,
    StreamLimits,
    Timeouts,
)
from comfy_async.errors import ConfigurationError


def test_defaults_are_named_and_sane() -> None:
    options = ClientOptions()
    assert options.max_message_size == DEFAULT_MAX_MESSAGE_SIZE > 4 * 1024 * 1024
    assert options.timeouts.total is None  # downloads must not have a total timeout
    assert 429 in options.retry.retry_statuses
    assert 400 not in options.retry.retry_statuses
    assert options.heartbeat.interval is not None
    assert repr(USE_CLIENT_DEFAULT) == "USE_CLIENT_DEFAULT"


def test_options_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ClientOptions().max_message_size = 1  # type: ignore[misc]


def test_replace_returns_a_changed_copy() -> None:
    base = ClientOptions()
    changed = base.replace(max_message_size=0, heartbeat=HeartbeatPolicy(interval=None))
    assert changed.max_message_size == 0
    assert changed.heartbeat.interval is None
    assert base.max_message_size == DEFAULT_MAX_MESSAGE_SIZE


@pytest.mark.parametrize(
    "build",
    [
        lambda: Timeouts(connect=0),
        lambda: Timeouts(read=-1),
        lambda: Backoff(initial=0),
        lambda: Backoff(multiplier=0.5),
        lambda: Backoff(jitter=1.5),
        lambda: RetryPolicy(max_retries=-1),
        lambda: ReconnectPolicy(max_attempts=0),
        lambda: ReconnectPolicy(healthy_after=0),
        lambda: HeartbeatPolicy(interval=0),
        lambda: StreamLimits(job_events=0),
        lambda: StreamLimits(orphan_ttl=0),
        lambda: ReconcilePolicy(silent_after=10, max_silent_after=5),
        lambda: ReconcilePolicy(lost_after=0),
        lambda: ClientOptions(max_message_size=-1),
    ],
)
def test_invalid_values_raise_configuration_error(build) -> None:
    with pytest.raises(ConfigurationError):
        build()


def test_backoff_without_jitter_is_exponential_and_capped() -> None:
    delays = Backoff(initial=1, maximum=5, multiplier=2, jitter=0).delays()
    assert [next(delays) for _ in range(6)] == [1, 2, 4, 5, 5, 5]


def test_backoff_jitter_stays_within_bounds_and_is_reproducible() -> None:
    def take(seed: int) -> list[float]:
        delays = Backoff(initial=1, maximum=8, jitter=0.5, rng=random.Random(seed)).delays()
        return [next(delays) for _ in range(8)]

    first = take(7)
    assert first == take(7)
    for delay, nominal in zip(first, [1, 2, 4, 8, 8, 8, 8, 8], strict=True):
        assert nominal * 0.5 <= delay <= nominal


def test_a_new_iterator_resets_the_backoff() -> None:
    backoff = Backoff(initial=1, jitter=0)
    first = backoff.delays()
    next(first), next(first), next(first)
    assert next(backoff.delays()) == 1


def test_retry_never() -> None:
    assert RetryPolicy.never().max_retries == 0
