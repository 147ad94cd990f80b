"""Payloads of ComfyUI-Manager 4 (``/v2/manager/*``, ``/v2/customnode/*``) and records on them.

Queue counts, a finished task, an installed node pack, a queued task and its progress.

The Manager is a separate package a ComfyUI server loads with ``--enable-manager``; its install
queue runs one task at a time in a worker the client starts. Facts: its server routes
(``queue/task``, ``queue/install_model``, ``queue/start``, ``queue/status``, ``queue/history``,
``customnode/installed``, ``reboot``, ``version``) and its task models (``QueueTaskItem``,
``TaskHistoryItem``, ``TaskExecutionStatus``, ``QueueStatus``, ``ManagerPackInstalled``).
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from comfy_async.models._base import JsonBuffer, Model

__all__ = [
    "InstalledNodePack",
    "ManagerInfo",
    "ManagerProgress",
    "ManagerQueueStatus",
    "ManagerTaskRecord",
    "ManagerTaskStatus",
    "ManagerTicket",
    "decode_installed_packs",
    "decode_manager_queue_status",
    "decode_manager_task",
]

# Task outcomes that mean the work is done (``skip``: it was there already).
_SUCCESS: Final = frozenset({"success", "skip", "skipped"})


class ManagerInfo(Model, frozen=True):
    """What ``comfy.manager.info()`` found: the Manager's version and its feature flags.

    ``flags`` is ``extension.manager`` of ``/features``. ComfyUI itself always advertises
    ``supports_v4`` there, so the flags alone never prove that the Manager is loaded.
    """

    version: str
    flags: dict[str, Any] = {}


class ManagerQueueStatus(Model, frozen=True):
    """``GET /v2/manager/queue/status``: the install queue's counts (for one client if asked).

    ``total_count`` is the tasks not finished yet (pending plus running); ``done_count`` the
    finished ones the Manager still lists in its history.
    """

    total_count: int = 0
    done_count: int = 0
    in_progress_count: int = 0
    pending_count: int | None = None
    is_processing: bool = False
    client_id: str | None = None

    @property
    def pending(self) -> int:
        """Tasks waiting (derived from the other counts when the Manager omits it)."""
        if self.pending_count is not None:
            return self.pending_count
        return max(self.total_count - self.in_progress_count, 0)


class ManagerTaskStatus(Model, frozen=True):
    """A finished task's outcome: ``success``, ``skip``, ``error``, ``failed``… and messages."""

    status_str: str = ""
    completed: bool = False
    messages: list[str] = []


class ManagerTaskRecord(Model, frozen=True):
    """A finished task as ``GET /v2/manager/queue/history?ui_id=…`` reports it.

    ``result`` is the Manager's result text (``"success"``, or what went wrong).
    """

    ui_id: str
    client_id: str = ""
    kind: str = ""
    result: str = ""
    status: ManagerTaskStatus | None = None
    timestamp: str | None = None
    end_time: str | None = None
    batch_id: str | None = None

    @property
    def outcome(self) -> str:
        """The status text, or the result text when the Manager gave no status."""
        return self.status.status_str if self.status is not None else self.result

    @property
    def succeeded(self) -> bool:
        """Whether the task did its work (or found it done already)."""
        return self.outcome in _SUCCESS

    @property
    def messages(self) -> tuple[str, ...]:
        """What the Manager said about a failure (its messages, else its result text)."""
        if self.status is not None and self.status.messages:
            return tuple(self.status.messages)
        return () if self.succeeded or not self.result else (self.result,)


class InstalledNodePack(Model, frozen=True):
    """One node pack of ``GET /v2/customnode/installed``.

    ``name`` is the pack's folder-derived key; ``cnr_id`` is set for registry packs, ``aux_id``
    (``owner/repo``) for packs installed from a git URL; ``version`` is a version, ``nightly``
    or a commit hash.
    """

    name: str
    version: str = ""
    cnr_id: str | None = None
    aux_id: str | None = None
    enabled: bool = True


class ManagerTicket(Model, frozen=True):
    """A task this client queued: its id, what it does and to what (a URL or a registry id)."""

    task_id: str
    kind: str
    target: str
    client_id: str


class ManagerProgress(Model, frozen=True):
    """One step of following a queued task: its state, the client's queue counts, the end.

    ``done``/``total`` count this client's tasks in the Manager (finished / known); ``record``
    is set once ``state`` is ``"done"``.
    """

    ticket: ManagerTicket
    state: Literal["queued", "running", "done"]
    done: int = 0
    total: int = 0
    record: ManagerTaskRecord | None = None

    @property
    def succeeded(self) -> bool:
        """Whether the task finished and did its work."""
        return self.record is not None and self.record.succeeded


class _PackEntry(Model, frozen=True):
    ver: str = ""
    cnr_id: str | None = None
    aux_id: str | None = None
    enabled: bool = True


class _HistoryReply(Model, frozen=True):
    history: dict[str, Any] = {}


_STATUS = msgspec.json.Decoder(ManagerQueueStatus)
_INSTALLED = msgspec.json.Decoder(dict[str, _PackEntry] | None)
_HISTORY = msgspec.json.Decoder(_HistoryReply)


def decode_manager_queue_status(buf: JsonBuffer) -> ManagerQueueStatus:
    """Decode ``GET /v2/manager/queue/status``."""
    return _STATUS.decode(buf)


def decode_manager_task(buf: JsonBuffer) -> ManagerTaskRecord | None:
    """Decode ``GET /v2/manager/queue/history?ui_id=…``: the task, or ``None`` if not finished.

    The Manager answers ``{"history": {}}`` for a task it has not finished (or never had) and
    ``{"history": {<the task>}}`` for a finished one.
    """
    history = _HISTORY.decode(buf).history
    if not history:
        return None
    return msgspec.convert(history, ManagerTaskRecord)  # ValidationError if not a task


def decode_installed_packs(buf: JsonBuffer) -> list[InstalledNodePack]:
    """Decode ``GET /v2/customnode/installed`` into packs sorted by name."""
    entries = _INSTALLED.decode(buf) or {}
    return [
        InstalledNodePack(
            name=name,
            version=entry.ver,
            cnr_id=entry.cnr_id,
            aux_id=entry.aux_id,
            enabled=entry.enabled,
        )
        for name, entry in sorted(entries.items())
    ]
