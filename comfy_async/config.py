"""Options of a session as small frozen value objects, validated when built, with named defaults.

Each object covers one concern (timeouts, HTTP retries, WebSocket reconnects, heartbeat, stream
buffers, reconciliation); :class:`ClientOptions` bundles them. Every default is a module constant
(``DEFAULT_*``) so it can be read and quoted. :data:`USE_CLIENT_DEFAULT` is the sentinel for
"use the session's setting" where ``None`` already means "no limit".

This module does no I/O; invalid values raise :class:`~comfy_async.errors.ConfigurationError`.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final, Self

from comfy_async.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_HEARTBEAT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_SILENT_JOB_CHECK",
    "USE_CLIENT_DEFAULT",
    "AdmissionPolicy",
    "AutoInstall",
    "Backoff",
    "ClientOptions",
    "HeartbeatPolicy",
    "ReconcilePolicy",
    "ReconnectPolicy",
    "RetryPolicy",
    "StreamLimits",
    "TenantLimits",
    "Timeouts",
    "UseClientDefault",
]

DEFAULT_CONNECT_TIMEOUT: Final = 10.0
DEFAULT_READ_TIMEOUT: Final = 60.0
DEFAULT_HEARTBEAT: Final = 20.0
# Full-size images from SaveImageWebsocket have no server-side cap (protocol doc §3.1); aiohttp's
# own 4 MiB client default would cut the socket on the first large preview.
DEFAULT_MAX_MESSAGE_SIZE: Final = 256 * 1024 * 1024
DEFAULT_SILENT_JOB_CHECK: Final = 30.0


class UseClientDefault(enum.Enum):
    """Type of :data:`USE_CLIENT_DEFAULT`."""

    USE_CLIENT_DEFAULT = enum.auto()

    def __repr__(self) -> str:
        return "USE_CLIENT_DEFAULT"


#: "Use the session's setting", distinct from ``None`` (which means "no limit").
USE_CLIENT_DEFAULT: Final = UseClientDefault.USE_CLIENT_DEFAULT


def _check_positive(name: str, value: float | None, *, allow_none: bool = True) -> None:
    if value is None:
        if not allow_none:
            raise ConfigurationError(f"{name} must be set")
        return
    if value <= 0:
        raise ConfigurationError(f"{name} must be positive, got {value!r}")


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigurationError(f"{name} must be between 0 and 1, got {value!r}")


@dataclass(frozen=True, slots=True)
class Timeouts:
    """HTTP timeouts in seconds; ``None`` means no limit.

    ``read`` bounds the wait for each chunk of a response. ``total`` bounds a whole ordinary
    request; downloads ignore ``total`` on purpose (a large file on a slow link is not an error as
    long as bytes keep arriving) and use ``read`` alone.
    """

    connect: float | None = DEFAULT_CONNECT_TIMEOUT
    read: float | None = DEFAULT_READ_TIMEOUT
    total: float | None = None

    def __post_init__(self) -> None:
        _check_positive("connect", self.connect)
        _check_positive("read", self.read)
        _check_positive("total", self.total)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: ``initial × multiplier**n``, capped at ``maximum``.

    ``jitter`` is the fraction of each delay that is randomised ("equal jitter": a delay ``d``
    becomes uniform in ``[d × (1 - jitter), d]``). Pass ``rng`` for reproducible sequences.
    """

    initial: float = 0.5
    maximum: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5
    rng: random.Random | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_positive("initial", self.initial, allow_none=False)
        _check_positive("maximum", self.maximum, allow_none=False)
        if self.multiplier < 1.0:
            raise ConfigurationError(f"multiplier must be at least 1, got {self.multiplier!r}")
        _check_fraction("jitter", self.jitter)

    def delays(self) -> Iterator[float]:
        """Yield the successive delays, for ever; start a new iterator to reset."""
        uniform = (self.rng or random).uniform
        delay = self.initial
        while True:
            capped = min(delay, self.maximum)
            yield capped - uniform(0.0, capped * self.jitter) if self.jitter else capped
            delay = capped * self.multiplier


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how HTTP requests are retried.

    Only idempotent requests are retried by default; ``POST /prompt`` never is (a failed submit is
    reconciled by looking its client-minted id up instead, design invariant 8). A ``Retry-After``
    header is honoured up to ``max_retry_after`` seconds.
    """

    max_retries: int = 3
    backoff: Backoff = Backoff(initial=0.5, maximum=8.0)
    retry_statuses: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
    retry_transport_errors: bool = True
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigurationError(f"max_retries must not be negative, got {self.max_retries!r}")
        _check_positive("max_retry_after", self.max_retry_after, allow_none=False)

    @classmethod
    def never(cls) -> Self:
        """A policy that never retries."""
        return cls(max_retries=0)


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How the WebSocket supervisor reconnects after the socket drops.

    The backoff restarts from ``backoff.initial`` once a connection has stayed up for
    ``healthy_after`` seconds. ``max_attempts`` (``None``: no limit) bounds consecutive failed
    attempts; fatal errors (401/403, a bad URL) are never retried whatever it says.
    """

    backoff: Backoff = Backoff(initial=0.25, maximum=15.0)
    healthy_after: float = 10.0
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        _check_positive("healthy_after", self.healthy_after, allow_none=False)
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be at least 1, got {self.max_attempts!r}")


@dataclass(frozen=True, slots=True)
class HeartbeatPolicy:
    """Client-side WebSocket pings (the server sends none, protocol doc §3.1).

    A ping goes out after ``interval`` seconds without traffic; a link whose pong does not come
    back within ``interval / 2`` is closed and reconnected, so a silent dead link is noticed within
    about ``1.5 × interval``. ``None`` turns heartbeats off (not recommended behind proxies).
    """

    interval: float | None = DEFAULT_HEARTBEAT

    def __post_init__(self) -> None:
        _check_positive("interval", self.interval)


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Bounds of the buffers between the WebSocket reader and the consumers.

    ``job_events`` bounds the lifecycle events buffered per job; past it, progress updates are
    coalesced to the latest value (lifecycle and terminal events are never dropped, design
    invariant 3). ``job_previews`` bounds buffered previews per job (the oldest are dropped and
    counted). ``orphan_events`` and ``orphan_ttl`` bound events for prompt ids that are not (yet)
    registered. ``session_events`` bounds the session-wide stream (status, unknown types).
    """

    job_events: int = 1024
    job_previews: int = 16
    orphan_events: int = 4096
    orphan_ttl: float = 60.0
    session_events: int = 1024

    def __post_init__(self) -> None:
        for name in ("job_events", "job_previews", "orphan_events", "session_events"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name} must be at least 1")
        _check_positive("orphan_ttl", self.orphan_ttl, allow_none=False)


@dataclass(frozen=True, slots=True)
class ReconcilePolicy:
    """When in-flight jobs are checked over HTTP ("events are hints, HTTP is the truth").

    After every reconnect, and for any job silent longer than ``silent_after`` seconds, the
    session looks the job up (``/api/jobs/{id}``, else ``/history/{id}`` + ``/queue``). The silent
    interval adapts: it doubles (up to ``max_silent_after``) each time a check finds the job still
    running, and resets when the job emits an event. A job found nowhere on ``lost_after``
    consecutive checks is lost. ``enabled=False`` turns silent-job checks off (reconnect checks
    stay on).

    A job attached from another client on a local server receives no events at all (ComfyUI
    sends a prompt's events to its submitter only), so it is followed over HTTP instead: every
    ``follow_every`` seconds at first, the interval growing by half each time the job is found
    still queued or running, up to ``max_follow_every``. One queue read per check answers for
    every followed job still queued or running; only a job that left the queue costs a lookup.
    """

    silent_after: float = DEFAULT_SILENT_JOB_CHECK
    max_silent_after: float = 300.0
    lost_after: int = 2
    enabled: bool = True
    follow_every: float = 1.0
    max_follow_every: float = 5.0

    def __post_init__(self) -> None:
        _check_positive("silent_after", self.silent_after, allow_none=False)
        if self.max_silent_after < self.silent_after:
            raise ConfigurationError("max_silent_after must not be below silent_after")
        _check_positive("follow_every", self.follow_every, allow_none=False)
        if self.max_follow_every < self.follow_every:
            raise ConfigurationError("max_follow_every must not be below follow_every")
        if self.lost_after < 1:
            raise ConfigurationError(f"lost_after must be at least 1, got {self.lost_after!r}")


@dataclass(frozen=True, slots=True)
class TenantLimits:
    """What one tenant (a bot's user, an API key) may have at once; ``None``: no limit.

    ``max_in_flight`` counts the tenant's jobs that have not ended (held or on a server),
    ``max_held`` those still waiting client-side, ``per_minute`` the submissions in the last 60
    seconds. A submission beyond one is refused at once with
    :class:`~comfy_async.errors.AdmissionRefused` (saying which limit, and when to retry a rate).
    """

    max_in_flight: int | None = None
    max_held: int | None = None
    per_minute: int | None = None

    def __post_init__(self) -> None:
        _check_positive("max_in_flight", self.max_in_flight)
        _check_positive("max_held", self.max_held)
        _check_positive("per_minute", self.per_minute)


@dataclass(frozen=True, slots=True)
class AdmissionPolicy:
    """Fairness between tenants, for a client or a pool that holds jobs client-side.

    Jobs wait client-side and are released to the servers in a fair order, so no tenant's burst
    fills a server's queue ahead of the others: a higher ``priority`` first (within and across
    tenants), then round-robin across tenants weighted by ``weights`` (a tenant of weight 2 gets
    two releases for one), then submission order. ``limits`` apply to every tenant, ``tenants``
    override them for some; ``max_held`` bounds the jobs held in all. A job submitted without a
    tenant belongs to the tenant ``None``. The server's own queue is kept ``max_queue`` deep, so
    the order is decided here, not by the server's first-come queue.
    """

    limits: TenantLimits = TenantLimits()
    tenants: Mapping[str, TenantLimits] = field(default_factory=dict)
    weights: Mapping[str, float] = field(default_factory=dict)
    max_held: int | None = None
    max_queue: int = 2
    """Jobs a client's server is sent at once; the rest wait, in the fair order, client-side
    (a pool uses each server's own ``max_queue``)."""

    def __post_init__(self) -> None:
        _check_positive("max_held", self.max_held)
        _check_positive("max_queue", self.max_queue, allow_none=False)
        for tenant, weight in self.weights.items():
            if weight <= 0:
                raise ConfigurationError(f"the weight of {tenant!r} must be positive, not {weight}")

    def limits_of(self, tenant: str | None) -> TenantLimits:
        """The limits that apply to ``tenant``."""
        if tenant is not None and tenant in self.tenants:
            return self.tenants[tenant]
        return self.limits

    def weight_of(self, tenant: str | None) -> float:
        """``tenant``'s share of the releases (1 unless set)."""
        return self.weights.get(tenant, 1.0) if tenant is not None else 1.0


@dataclass(frozen=True, slots=True)
class AutoInstall:
    """What a pool may install on a server that lacks it, and from where (off unless given).

    A workflow names node *classes* and model *file names*; where they come from is the
    user's to say. A job that no server can run, but that one server with ComfyUI-Manager
    could once it installs what it lacks, is held while that server (the least loaded one)
    installs it; anything not listed here keeps the pool's plain refusal
    (:class:`~comfy_async.errors.NoCapableServerError`).

    ::

        AutoInstall(
            nodes={"AcmeSharpen": "https://github.com/acme/comfyui-sharpen"},
            models={"checkpoints/sdxl.safetensors": "https://models.example/sdxl.safetensors"},
        )

    Attributes:
        nodes: node class → its pack: an ``http(s)`` git URL, or a registry pack id (``id`` or
            ``id@version``). Classes of one pack may share a source (it is installed once).
        models: ``"folder/file name"`` (or ``(folder, file name)``) → the ``http(s)`` URL to
            download it from into that models folder.
        reboot: whether the pool may restart a server whose new nodes load only at its next
            start. The pool first stops sending it jobs and waits until its queue is empty
            (other clients' prompts included), so nothing is lost or run twice. Without it, such
            an install fails (its jobs get the error, or another server).
        timeout: seconds one install may take on a server, its restart included.

    """

    nodes: Mapping[str, str] = field(default_factory=dict)
    models: Mapping[str | tuple[str, str], str] = field(default_factory=dict)
    reboot: bool = False
    timeout: float = 900.0

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ConfigurationError(f"timeout must be positive, got {self.timeout!r}")
        nodes: Iterable[tuple[object, object]] = self.nodes.items()
        for name, source in nodes:
            if not isinstance(name, str) or not name or not isinstance(source, str) or not source:
                raise ConfigurationError(
                    f"auto_install nodes map class names to sources, got {name!r}: {source!r}"
                )
        given: Iterable[tuple[object, object]] = self.models.items()
        models: dict[tuple[str, str], str] = {}
        for key, url in given:
            folder: object = ""
            file_name: object = ""
            if isinstance(key, str):
                folder, _, file_name = key.rpartition("/")
            elif isinstance(key, tuple) and len(key) == 2:
                folder, file_name = key
            if not (
                isinstance(folder, str)
                and folder
                and isinstance(file_name, str)
                and file_name
                and isinstance(url, str)
                and url
            ):
                raise ConfigurationError(
                    "auto_install models map 'folder/file name' (or (folder, file name)) to a "
                    f"URL, got {key!r}: {url!r}"
                )
            models[folder, file_name] = url
        object.__setattr__(self, "models", models)

    def model_source(self, folder: str, name: str) -> str | None:
        """The URL of model ``folder/name``, if the pool may install it."""
        return self.models.get((folder, name))


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """Every option of a session, bundled; build one with keywords or derive with :meth:`replace`.

    ``max_message_size`` bounds one WebSocket message in bytes (0: no limit).
    ``preview_metadata`` asks the server for type-4 previews that name their prompt (protocol doc
    §3.3); turn it off only to talk to a server that mishandles the feature-flags hello.
    """

    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy = RetryPolicy()
    reconnect: ReconnectPolicy = ReconnectPolicy()
    heartbeat: HeartbeatPolicy = HeartbeatPolicy()
    limits: StreamLimits = StreamLimits()
    reconcile: ReconcilePolicy = ReconcilePolicy()
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    preview_metadata: bool = True
    user_agent: str = "comfy-async"

    def __post_init__(self) -> None:
        if self.max_message_size < 0:
            raise ConfigurationError("max_message_size must not be negative (0 means no limit)")

    def replace(self, **changes: object) -> ClientOptions:
        """Return a copy with some options changed."""
        return replace(self, **changes)  # type: ignore[arg-type]
