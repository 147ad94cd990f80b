"""Payloads of the Comfy API v2 (``/api/v2/*``): jobs, their outputs and links, SSE events, assets.

The v2 API is Comfy-Org's versioned HTTP API, served by Comfy Cloud, serverless deployments and
self-hosted proxies. Its job object is the truth (polled with ``GET /api/v2/jobs/{id}``); its SSE
stream carries ``status``, ``progress``, ``preview`` and ``output`` events derived from it.
Responses carry their follow-up links (:class:`V2JobUrls`, :attr:`V2Output.url`): clients follow
them rather than build URLs.

Statuses stay plain strings (a later v2 may add some); :class:`V2JobStatus` names the known ones
and :data:`API_V2_TERMINAL` the terminal ones. Every decoder here is synchronous and needs no event
loop.
"""

from __future__ import annotations

import enum
from typing import Any, Final, TypeAlias

import msgspec

from comfy_async.models._base import JsonBuffer, Model

__all__ = [
    "API_V2_TERMINAL",
    "V2Asset",
    "V2ErrorBody",
    "V2ErrorEnvelope",
    "V2Event",
    "V2Job",
    "V2JobError",
    "V2JobStatus",
    "V2JobUrls",
    "V2LogEvent",
    "V2Output",
    "V2PreviewEvent",
    "V2Progress",
    "V2StatusEvent",
    "V2UnknownEvent",
    "decode_v2_asset",
    "decode_v2_error",
    "decode_v2_event",
    "decode_v2_job",
]


class V2JobStatus(enum.StrEnum):
    """The job statuses the contract names.

    ``queued → running → succeeded | failed | expired``; a cancel request moves ``running →
    canceling → canceled``.
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    CANCELING = "canceling"
    CANCELED = "canceled"
    FAILED = "failed"
    EXPIRED = "expired"


API_V2_TERMINAL: Final = frozenset({"succeeded", "canceled", "failed", "expired"})
"""The statuses after which a job never changes again."""


class V2Progress(Model, frozen=True):
    """A complete progress snapshot: one re-syncs a client that missed the others."""

    value: float = 0.0
    nodes_done: int = 0
    nodes_total: int = 0
    current_node: str | None = None
    current_node_class: str | None = None
    step: int | None = None
    steps: int | None = None
    message: str | None = None


class V2Output(Model, frozen=True):
    """A committed output: an asset (``id``) with a short-lived content ``url`` to follow."""

    id: str = ""
    node_id: str = ""
    name: str = ""
    type: str = "file"
    content_type: str = "application/octet-stream"
    size_bytes: int = 0
    hash: str | None = None
    url: str = ""
    url_expires_at: str | None = None
    job_id: str | None = None


class V2JobError(Model, frozen=True):
    """Why a job failed (``job.error``; not an HTTP error)."""

    code: str = "unknown"
    message: str = ""
    node_id: str | None = None
    class_type: str | None = None
    traceback: str | None = None


class V2JobUrls(Model, frozen=True):
    """A job's follow-up links: absolute URLs or host-relative references (leading ``/``).

    A host-relative link is resolved against the origin of the response that carried it, never
    against a configured base URL (which may repeat a mount prefix the link already has).
    """

    self_: str = msgspec.field(default="", name="self")
    events: str = ""
    cancel: str = ""
    logs: str | None = None


class V2Job(Model, frozen=True):
    """One execution of a workflow; ``outputs`` fills in while it runs."""

    id: str
    status: str
    created_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    expires_at: str | None = None
    queue_position: int | None = None
    progress: V2Progress | None = None
    outputs: tuple[V2Output, ...] = ()
    error: V2JobError | None = None
    metrics: dict[str, int | None] = {}
    urls: V2JobUrls = V2JobUrls()

    @property
    def terminal(self) -> bool:
        """Whether the job has ended."""
        return self.status in API_V2_TERMINAL


class V2Asset(Model, frozen=True):
    """A UUID-identified record over a content-addressed blob (``hash`` is ``blake3:<hex>``)."""

    id: str
    hash: str | None = None
    size_bytes: int = 0
    content_type: str = "application/octet-stream"
    file_path: str | None = None
    created_new: bool | None = None
    created_at: str | None = None
    url: str = ""
    url_expires_at: str | None = None
    expires_at: str | None = None
    job_id: str | None = None

    def reference(self) -> dict[str, Any]:
        """The ``core/ASSET`` object to put in a workflow where a file name would go."""
        info: dict[str, Any] = {"id": self.id}
        if self.hash is not None:
            info["hash"] = self.hash
        if self.file_path is not None:
            info["file_path"] = self.file_path
        return {"__type": "core/ASSET", "info": info}


class V2ErrorBody(Model, frozen=True):
    """The machine-readable part of an error answer."""

    code: str = "unknown"
    message: str = ""
    details: dict[str, Any] | None = None


class V2ErrorEnvelope(Model, frozen=True):
    """Every error answer: ``{"error": {"code", "message", "details"}}``."""

    error: V2ErrorBody = V2ErrorBody()


class V2StatusEvent(Model, frozen=True):
    """SSE ``status``: a lifecycle transition (and the initial state on connect).

    The terminal one may carry the job's final ``outputs`` and ``error``.
    """

    status: str
    queue_position: int | None = None
    outputs: tuple[V2Output, ...] | None = None
    error: V2JobError | None = None


class V2PreviewEvent(Model, frozen=True):
    """SSE ``preview``: an in-progress image, base64."""

    node_id: str = ""
    content_type: str = "image/jpeg"
    data_base64: str = ""


class V2LogEvent(Model, frozen=True):
    """SSE ``log``: a best-effort log line."""

    level: str = "info"
    message: str = ""


class V2UnknownEvent(Model, frozen=True):
    """An SSE event of a name this client does not know (kept, never an error)."""

    name: str
    data: Any = None


V2Event: TypeAlias = (
    V2StatusEvent | V2Progress | V2PreviewEvent | V2Output | V2LogEvent | V2UnknownEvent
)
"""One decoded SSE event of a job stream."""

_JOB: Final = msgspec.json.Decoder(V2Job)
_ASSET: Final = msgspec.json.Decoder(V2Asset)
_ERROR: Final = msgspec.json.Decoder(V2ErrorEnvelope)
_ANY: Final = msgspec.json.Decoder()
_EVENTS: Final[dict[str, msgspec.json.Decoder[Any]]] = {
    "status": msgspec.json.Decoder(V2StatusEvent),
    "progress": msgspec.json.Decoder(V2Progress),
    "preview": msgspec.json.Decoder(V2PreviewEvent),
    "output": msgspec.json.Decoder(V2Output),
    "log": msgspec.json.Decoder(V2LogEvent),
}


def decode_v2_job(raw: JsonBuffer) -> V2Job:
    """Decode a job object (``POST /api/v2/jobs``, ``GET …/{id}``, ``POST …/cancel``).

    Raises:
        msgspec.DecodeError: not JSON, or not a job.

    """
    return _JOB.decode(raw)


def decode_v2_asset(raw: JsonBuffer) -> V2Asset:
    """Decode an asset object.

    Raises:
        msgspec.DecodeError: not JSON, or not an asset.

    """
    return _ASSET.decode(raw)


def decode_v2_error(raw: JsonBuffer) -> V2ErrorEnvelope | None:
    """Decode an error answer; ``None`` when the body is not the error envelope."""
    try:
        return _ERROR.decode(raw)
    except msgspec.DecodeError:
        return None


def decode_v2_event(name: str, data: JsonBuffer) -> V2Event:
    """Decode the ``data`` of one SSE event called ``name``.

    Unknown names become :class:`V2UnknownEvent` (the stream may gain events).

    Raises:
        msgspec.DecodeError: the data of a known event is not its shape.

    """
    decoder = _EVENTS.get(name)
    if decoder is None:
        try:
            payload = _ANY.decode(data)
        except msgspec.DecodeError:
            payload = bytes(data).decode("utf-8", "replace") if not isinstance(data, str) else data
        return V2UnknownEvent(name=name, data=payload)
    event: V2Event = decoder.decode(data)
    return event
