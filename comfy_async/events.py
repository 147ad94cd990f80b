"""Typed events of a ComfyUI WebSocket, as they reach users (protocol doc §3.2, §3.3).

Every event is a frozen msgspec Struct with:

* ``type``: the server's event name (``"progress"``, ``"execution_error"``…), a class constant
  except on :class:`UnknownEvent`, where it is whatever the server sent;
* ``prompt_id``: the prompt the event belongs to, or ``None`` for session-wide events (status,
  feature flags, logs) and for frames nothing could attribute.

Text events decode from the ``{"type", "data"}`` envelope (``comfy_async.protocol.messages``);
binary events (:class:`PreviewImage`, :class:`ProgressText`, :class:`UnknownBinary`) are built by
``comfy_async.protocol.frames``. Payload bytes of binary events are zero-copy ``memoryview``
slices of the received frame. Events that the session itself adds (:class:`Reconnected`,
:class:`JobReconciled`) tell consumers what the wire alone cannot.

The wire's ``execution_error`` is :class:`ExecutionFailed` here, so that it does not clash with
the :class:`~comfy_async.errors.ExecutionError` exception a failed job raises.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final, TypeAlias

import msgspec

__all__ = [
    "BinaryEvent",
    "Event",
    "ExecInfo",
    "Executed",
    "Executing",
    "ExecutionCached",
    "ExecutionFailed",
    "ExecutionInterrupted",
    "ExecutionStart",
    "ExecutionSuccess",
    "FeatureFlags",
    "JobAdmitted",
    "JobMoved",
    "JobReconciled",
    "LogEntry",
    "LogSize",
    "Logs",
    "MalformedFrame",
    "NodeProgress",
    "Notification",
    "PoolEvent",
    "PreviewImage",
    "Progress",
    "ProgressState",
    "ProgressText",
    "Reconnected",
    "ServerDown",
    "ServerEvent",
    "ServerInstallFailed",
    "ServerInstalled",
    "ServerInstalling",
    "ServerUp",
    "SessionEvent",
    "Status",
    "StatusInfo",
    "TextEvent",
    "UnknownBinary",
    "UnknownEvent",
]

#: ``exception_type`` of the non-terminal error an ``ExecutionBlocker`` produces (§3.2).
EXECUTION_BLOCKED: Final = "ExecutionBlocked"

_MIME_EXTENSIONS: Final = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
}


class _Event(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Base of every event: frozen, keyword-only, not tracked by the cyclic GC."""


# --------------------------------------------------------------------------- session-wide


class ExecInfo(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """``status.exec_info``: ``queue_remaining`` = pending + running, for the whole server."""

    queue_remaining: int = 0


class StatusInfo(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """``data.status`` of a status event."""

    exec_info: ExecInfo = ExecInfo()


class Status(_Event, frozen=True):
    """Queue size changed (broadcast). The first one on a socket carries its ``sid``.

    ``queue_remaining`` is global across all clients: it never means "my prompt finished".
    """

    type: ClassVar[str] = "status"
    prompt_id: ClassVar[None] = None

    status: StatusInfo = StatusInfo()
    sid: str | None = None

    @property
    def queue_remaining(self) -> int:
        """Pending plus running prompts on the server (per user on Comfy Cloud)."""
        return self.status.exec_info.queue_remaining


class FeatureFlags(_Event, frozen=True):
    """The server's reply to the client's feature-flags hello (same dict as ``GET /features``)."""

    type: ClassVar[str] = "feature_flags"
    prompt_id: ClassVar[None] = None

    flags: dict[str, Any] = {}

    @property
    def supports_preview_metadata(self) -> bool:
        """Whether previews will come as type-4 frames carrying their own prompt id."""
        return self.flags.get("supports_preview_metadata") is True


class LogEntry(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One server log line: ``t`` is an ISO time, ``m`` the text."""

    t: str = ""
    m: str = ""


class LogSize(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Terminal size the server reports with its logs."""

    cols: int = 0
    rows: int = 0


class Logs(_Event, frozen=True):
    """Server log lines, sent only to clients subscribed via ``PATCH /internal/logs/subscribe``."""

    type: ClassVar[str] = "logs"
    prompt_id: ClassVar[None] = None

    entries: list[LogEntry] = []
    size: LogSize | None = None


class Notification(_Event, frozen=True):
    """A human-readable notice (Comfy Cloud only)."""

    type: ClassVar[str] = "notification"
    prompt_id: ClassVar[None] = None

    value: str = ""
    id: str | None = None


# --------------------------------------------------------------------------- per prompt


class ExecutionStart(_Event, frozen=True):
    """The worker started the prompt. ``timestamp`` is server epoch milliseconds."""

    type: ClassVar[str] = "execution_start"

    prompt_id: str
    timestamp: int | float | None = None


class ExecutionCached(_Event, frozen=True):
    """The nodes whose outputs come from the cache (all of them on a fully cached run)."""

    type: ClassVar[str] = "execution_cached"

    prompt_id: str
    nodes: list[str] = []
    timestamp: int | float | None = None


class Executing(_Event, frozen=True):
    """A node started; or, with ``node=None``, the prompt finished (the finish marker).

    Right after a reconnect the server replays ``{"node": id}`` with no ``prompt_id`` and no
    ``display_node`` (protocol doc §3.1): see :attr:`is_replay`.
    """

    type: ClassVar[str] = "executing"

    node: str | None
    prompt_id: str | None = None
    display_node: str | None = None

    @property
    def is_finished(self) -> bool:
        """Whether this is the finish marker: history is written and the prompt is done."""
        return self.node is None and self.prompt_id is not None

    @property
    def is_replay(self) -> bool:
        """Whether this is the reconnect replay, which names a node but no prompt."""
        return self.prompt_id is None


class Executed(_Event, frozen=True):
    """A node with UI output finished (also replayed, without ``Executing``, for cached nodes).

    ``output`` is the node's UI dict (``{"images": [{"filename", "subfolder", "type"}]}``…); it
    can be ``None`` in a cache replay of a node without UI.
    """

    type: ClassVar[str] = "executed"

    prompt_id: str
    node: str
    display_node: str | None = None
    output: dict[str, Any] | None = None


class Progress(_Event, frozen=True):
    """A node reported progress: ``value`` of ``max`` steps."""

    type: ClassVar[str] = "progress"

    value: int | float
    max: int | float
    prompt_id: str | None = None
    node: str | None = None

    @property
    def fraction(self) -> float:
        """``value / max``, clamped to ``[0, 1]`` (0 when ``max`` is not positive)."""
        if self.max <= 0:
            return 0.0
        return min(max(self.value / self.max, 0.0), 1.0)


class NodeProgress(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One node's entry in ``progress_state``: ``state`` is running, finished or error."""

    value: float = 0.0
    max: float = 1.0
    state: str = "running"
    node_id: str | None = None
    prompt_id: str | None = None
    display_node_id: str | None = None
    parent_node_id: str | None = None
    real_node_id: str | None = None


class ProgressState(_Event, frozen=True):
    """Every non-pending node of the prompt so far, with its progress and state."""

    type: ClassVar[str] = "progress_state"

    prompt_id: str
    nodes: dict[str, NodeProgress] = {}


class ExecutionSuccess(_Event, frozen=True):
    """Every output of the prompt ran. The finish marker (``Executing(node=None)``) follows."""

    type: ClassVar[str] = "execution_success"

    prompt_id: str
    timestamp: int | float | None = None


class ExecutionFailed(_Event, frozen=True):
    """The wire's ``execution_error``: a node raised, or (not terminal) a blocker fired.

    When :attr:`is_blocked` is true the prompt goes on (an ``ExecutionBlocker``, protocol doc
    §3.2); otherwise execution stopped at this node. ``current_inputs`` is a dict of formatted
    values, but an empty list in the blocked variant.
    """

    type: ClassVar[str] = "execution_error"

    prompt_id: str
    node_id: str | None = None
    node_type: str | None = None
    executed: list[str] = []
    exception_message: str = ""
    exception_type: str = ""
    traceback: list[str] = []
    current_inputs: dict[str, Any] | list[Any] = {}
    current_outputs: list[Any] | dict[str, Any] = []
    timestamp: int | float | None = None

    @property
    def is_blocked(self) -> bool:
        """Whether this is the non-terminal ``ExecutionBlocked`` error."""
        return self.exception_type == EXECUTION_BLOCKED


class ExecutionInterrupted(_Event, frozen=True):
    """The prompt was interrupted at ``node_id``."""

    type: ClassVar[str] = "execution_interrupted"

    prompt_id: str
    node_id: str | None = None
    node_type: str | None = None
    executed: list[str] = []
    timestamp: int | float | None = None


class UnknownEvent(_Event, frozen=True):
    """A text event of a type this library does not know (custom nodes send their own).

    ``data`` is the decoded JSON payload; ``prompt_id`` is taken from it when it has a string
    ``prompt_id`` key, so custom per-prompt events still reach their job.
    """

    type: str
    data: Any = None
    prompt_id: str | None = None


# --------------------------------------------------------------------------- binary


class PreviewImage(_Event, frozen=True):
    """A preview image (binary type 1, or type 4 with metadata).

    ``image`` is a zero-copy view of the received frame; ``bytes(event.image)`` copies it.
    ``mime`` is sniffed from the bytes when the header disagrees with them. Type-1 frames carry
    no prompt id: ``prompt_id`` is then the one the connection attributed it to (the prompt whose
    progress it follows), or ``None``.
    """

    type: ClassVar[str] = "preview_image"

    image: memoryview
    mime: str
    prompt_id: str | None = None
    node_id: str | None = None
    display_node_id: str | None = None
    parent_node_id: str | None = None
    real_node_id: str | None = None
    frame_type: int = 4

    @property
    def extension(self) -> str:
        """A file extension for :attr:`mime` (``.jpg``, ``.png``, ``.webp``, ``.gif``, ``.bin``)."""
        return _MIME_EXTENSIONS.get(self.mime, ".bin")


class ProgressText(_Event, frozen=True):
    """Text a node sent (binary type 3). The server broadcasts it and names only the node.

    ``prompt_id`` is set when the connection could tell which of its prompts is running that node.
    """

    type: ClassVar[str] = "progress_text"

    node_id: str
    text: str
    prompt_id: str | None = None


class UnknownBinary(_Event, frozen=True):
    """A binary frame of a type this library does not decode (including type 2, never sent)."""

    type: ClassVar[str] = "unknown_binary"
    prompt_id: ClassVar[None] = None

    event_type: int
    payload: memoryview


class MalformedFrame(_Event, frozen=True):
    """A frame that could not be decoded; the connection goes on (design §2: never raise).

    ``kind`` is ``"text"`` or ``"binary"``; ``message_type`` names the event type when the
    envelope was readable but its data had the wrong shape.
    """

    type: ClassVar[str] = "malformed_frame"
    prompt_id: ClassVar[None] = None

    kind: str
    reason: str
    size: int
    message_type: str | None = None


# --------------------------------------------------------------------------- session


class Reconnected(_Event, frozen=True):
    """The WebSocket was re-established: events in the gap may be missing (progress, previews).

    Sent to the session stream and to every job in flight; outcomes are reconciled over HTTP.
    """

    type: ClassVar[str] = "reconnected"

    attempt: int
    downtime: float
    prompt_id: str | None = None


class JobReconciled(_Event, frozen=True):
    """The job's outcome was learnt over HTTP because its terminal event was missed.

    ``status`` is ``success``, ``error``, ``interrupted``, ``cancelled``, ``lost`` or ``expired``
    (found nowhere, and the server's history no longer reaches back to it).
    """

    type: ClassVar[str] = "job_reconciled"

    prompt_id: str
    status: str
    source: str = ""


class JobAdmitted(_Event, frozen=True):
    """Its turn came: the job leaves the client-side line for the servers (after ``waited`` s)."""

    type: ClassVar[str] = "job_admitted"

    prompt_id: str
    waited: float
    tenant: str | None = None


class JobMoved(_Event, frozen=True):
    """The job left a server that failed or lost it, to run on another (a pool's failover).

    ``started`` says whether it had begun running there (then this is a retry, counted against
    the job's ``retries``); otherwise it never ran. ``server`` is the one it left. The server is
    told to drop it when it comes back, so it runs to its end at most once.
    """

    type: ClassVar[str] = "job_moved"

    prompt_id: str
    server: str
    reason: str
    started: bool = False


# --------------------------------------------------------------------------- pool


class ServerDown(_Event, frozen=True):
    """A pool's server stopped answering (or failed too often): it gets no new jobs.

    Its jobs that had not started were moved to other servers; running ones were retried
    elsewhere within their ``retries``. ``moved`` counts them.
    """

    type: ClassVar[str] = "server_down"
    prompt_id: ClassVar[None] = None

    server: str
    reason: str
    moved: int = 0


class ServerUp(_Event, frozen=True):
    """A pool's server answers again and gets jobs (re-admitted after ``downtime`` seconds).

    ``purged`` counts the prompts it still held that had been moved elsewhere: they were deleted
    from its queue (or interrupted) before it got any new job, so none runs twice.
    """

    type: ClassVar[str] = "server_up"
    prompt_id: ClassVar[None] = None

    server: str
    downtime: float = 0.0
    purged: int = 0


class ServerInstalling(_Event, frozen=True):
    """A pool told a server to install what held jobs need (``ComfyPool(auto_install=...)``).

    ``items`` are what it installs (``"node AcmeSharpen"``, ``"model checkpoints/x.safetensors"``);
    the jobs that need them stay held meanwhile.
    """

    type: ClassVar[str] = "server_installing"
    prompt_id: ClassVar[None] = None

    server: str
    items: tuple[str, ...]


class ServerInstalled(_Event, frozen=True):
    """A server installed ``items`` and lists them now: the jobs that need them can run there.

    ``rebooted`` says whether it was restarted to load new nodes (a planned outage: it got no
    job from the pool meanwhile); ``duration`` is seconds since :class:`ServerInstalling`.
    """

    type: ClassVar[str] = "server_installed"
    prompt_id: ClassVar[None] = None

    server: str
    items: tuple[str, ...]
    rebooted: bool = False
    duration: float = 0.0


class ServerInstallFailed(_Event, frozen=True):
    """A server could not install ``items``: ``reason`` says what failed.

    The jobs that need them go to another server that can be equipped, or end with
    :class:`~comfy_async.errors.AutoInstallError` when none is left.
    """

    type: ClassVar[str] = "server_install_failed"
    prompt_id: ClassVar[None] = None

    server: str
    items: tuple[str, ...]
    reason: str


PoolEvent: TypeAlias = (
    ServerDown | ServerUp | ServerInstalling | ServerInstalled | ServerInstallFailed
)
"""What ``ComfyPool.events()`` yields: servers going down and coming back, and installs."""


TextEvent: TypeAlias = (
    Status
    | FeatureFlags
    | ExecutionStart
    | ExecutionCached
    | Executing
    | Executed
    | Progress
    | ProgressState
    | ExecutionSuccess
    | ExecutionFailed
    | ExecutionInterrupted
    | Logs
    | Notification
    | UnknownEvent
)
"""Any event a text frame decodes into."""

BinaryEvent: TypeAlias = PreviewImage | ProgressText | UnknownBinary
"""Any event a well-formed binary frame decodes into."""

ServerEvent: TypeAlias = TextEvent | BinaryEvent | MalformedFrame
"""Anything the protocol layer yields for one received frame."""

SessionEvent: TypeAlias = Reconnected | JobReconciled | JobAdmitted | JobMoved
"""Events the session adds to what the server sent."""

Event: TypeAlias = ServerEvent | SessionEvent
"""Any event a consumer can receive."""
