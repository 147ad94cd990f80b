"""Payloads of ``GET /history``, ``GET /history/{id}`` and Cloud's ``history_v2`` (§4.4, §8).

A local history body is a dict ``{prompt_id: HistoryEntry}`` in completion order, oldest first;
``/history/{id}`` gives a one-entry dict, or ``{}`` while the prompt is not done. The entry's
``prompt`` is the queue-item array (:class:`~comfy_async.models.queue.QueueItem`, graph kept raw).

Comfy Cloud lists history through ``GET /api/history_v2`` (``{"history": [...]}``, newest first,
no graph) and ``GET /api/history_v2/{id}`` (a dict keyed by id whose ``prompt`` is an object):
:class:`CloudHistoryList` and :class:`CloudHistoryEntry`. All three share :class:`HistoryRecord`:
outputs, status, node meta, the output file listing and the terminal-message helpers.
"""

from __future__ import annotations

from typing import Any, Final, TypeAlias

import msgspec

from comfy_async.models._base import JsonBuffer, Model
from comfy_async.models.files import OutputFile, output_files
from comfy_async.models.queue import QueueItem, decode_extra_data

__all__ = [
    "CloudHistory",
    "CloudHistoryEntry",
    "CloudHistoryList",
    "CloudHistoryListItem",
    "CloudHistoryPrompt",
    "ExecutionErrorInfo",
    "History",
    "HistoryEntry",
    "HistoryRecord",
    "HistoryStatus",
    "NodeMeta",
    "decode_cloud_history",
    "decode_cloud_history_list",
    "decode_history",
]

#: ``exception_type`` of the non-terminal error an ``ExecutionBlocker`` produces (§3.2).
_EXECUTION_BLOCKED: Final = "ExecutionBlocked"


class ExecutionErrorInfo(Model, frozen=True):
    """The data of an ``execution_error``, as history messages and the jobs API carry it.

    The same fields as the WebSocket event (:class:`comfy_async.events.ExecutionFailed`), but
    ``prompt_id`` is optional: Comfy Cloud's jobs API documents the object without it, and with
    ``current_outputs`` as an object rather than a list.
    """

    prompt_id: str | None = None
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
        """Whether this is the non-terminal ``ExecutionBlocked`` error (§3.2)."""
        return self.exception_type == _EXECUTION_BLOCKED


class HistoryStatus(Model, frozen=True):
    """How a prompt ended, and its lifecycle messages.

    ``status_str`` is ``"success"`` or ``"error"``; an interrupted prompt is ``"error"`` with a
    final ``execution_interrupted`` message (§4.4). ``messages`` holds ``(event_name, data)``
    pairs: ``execution_start``, ``execution_cached`` and the terminal one, each with its
    ``timestamp``; never the non-terminal ExecutionBlocked error.
    """

    status_str: str = ""
    completed: bool = False
    messages: list[tuple[str, dict[str, Any]]] = []

    @property
    def succeeded(self) -> bool:
        """Whether every output ran (``status_str == "success"``)."""
        return self.status_str == "success"

    @property
    def interrupted(self) -> bool:
        """Whether the prompt was interrupted or cancelled while it ran."""
        return any(name == "execution_interrupted" for name, _ in self.messages)

    def last_message(self, event: str) -> dict[str, Any] | None:
        """The data of the last message named ``event``, or ``None``."""
        for name, data in self.messages[::-1]:
            if name == event:
                return data
        return None

    @property
    def execution_error(self) -> ExecutionErrorInfo | None:
        """The terminal ``execution_error``, typed; ``None`` if there is none.

        ``None`` also when its data does not have the documented shape: the prompt still failed
        (see :attr:`status_str`), the details are just unreadable.
        """
        for name, data in self.messages[::-1]:
            if name != "execution_error":
                continue
            try:
                info = msgspec.convert(data, ExecutionErrorInfo)
            except msgspec.ValidationError:
                return None
            if not info.is_blocked:
                return info
        return None


class NodeMeta(Model, frozen=True):
    """Which node an output belongs to (``display_node`` differs for expanded nodes, §3.2)."""

    node_id: str | None = None
    display_node: str | None = None
    parent_node: str | None = None
    real_node_id: str | None = None


class HistoryRecord(Model, frozen=True):
    """What every history shape shares: outputs, status and node meta.

    ``outputs`` maps a node id to that node's UI dict (only nodes that returned UI output,
    including cached replays); outputs of nodes that finished before an error are kept (§4.4).
    """

    outputs: dict[str, dict[str, Any]] = {}
    status: HistoryStatus | None = None
    meta: dict[str, NodeMeta] = {}

    @property
    def status_str(self) -> str | None:
        """``"success"`` or ``"error"``; ``None`` when the entry carries no status."""
        return None if self.status is None else self.status.status_str

    @property
    def interrupted(self) -> bool:
        """Whether the prompt was interrupted or cancelled while it ran."""
        return self.status is not None and self.status.interrupted

    @property
    def execution_error(self) -> ExecutionErrorInfo | None:
        """The terminal ``execution_error``, typed, or ``None``."""
        return None if self.status is None else self.status.execution_error

    def files(self) -> list[OutputFile]:
        """Every output file (images, audio, video, gifs…), node by node."""
        return output_files(self.outputs)


class HistoryEntry(HistoryRecord, frozen=True, kw_only=True):
    """One prompt of local ``/history``; ``prompt`` is the queue item it ran as."""

    prompt: QueueItem


class CloudHistoryPrompt(Model, frozen=True):
    """The ``prompt`` object of a Comfy Cloud history entry.

    ``number`` is the wire's ``priority``. The graph (``prompt``) and ``outputs_to_execute`` are
    only in ``/api/history_v2/{id}``; the list leaves them out, and the graph is then an empty
    :class:`msgspec.Raw`.
    """

    number: int | float | None = msgspec.field(default=None, name="priority")
    prompt_id: str | None = None
    prompt: msgspec.Raw = msgspec.Raw()
    raw_extra_data: dict[str, msgspec.Raw] = msgspec.field(default={}, name="extra_data")
    outputs_to_execute: list[str] = []

    @property
    def extra_data(self) -> dict[str, Any]:
        """``extra_data``, with its ``extra_pnginfo`` (if any) left as :class:`msgspec.Raw`."""
        return decode_extra_data(self.raw_extra_data)


class CloudHistoryEntry(HistoryRecord, frozen=True):
    """One value of Comfy Cloud's ``GET /api/history_v2/{id}`` dict."""

    prompt: CloudHistoryPrompt = CloudHistoryPrompt()


class CloudHistoryListItem(CloudHistoryEntry, frozen=True, kw_only=True):
    """One entry of Comfy Cloud's ``GET /api/history_v2`` list (no graph in its prompt)."""

    prompt_id: str
    create_time: int | float | None = None
    workflow_id: str | None = None


class CloudHistoryList(Model, frozen=True):
    """``GET /api/history_v2``: Comfy Cloud's history, newest first."""

    history: list[CloudHistoryListItem] = []

    def by_id(self) -> dict[str, CloudHistoryListItem]:
        """The entries keyed by prompt id, newest first."""
        return {item.prompt_id: item for item in self.history}


History: TypeAlias = dict[str, HistoryEntry]
"""A local history body: ``{prompt_id: entry}``, oldest first."""

CloudHistory: TypeAlias = dict[str, CloudHistoryEntry]
"""A Comfy Cloud ``/api/history_v2/{id}`` body: ``{prompt_id: entry}``."""

_HISTORY = msgspec.json.Decoder(History)
_CLOUD_HISTORY = msgspec.json.Decoder(CloudHistory)
_CLOUD_HISTORY_LIST = msgspec.json.Decoder(CloudHistoryList)


def decode_history(buf: JsonBuffer) -> History:
    """Decode the body of ``GET /history`` or ``GET /history/{id}`` (``{}`` decodes to ``{}``)."""
    return _HISTORY.decode(buf)


def decode_cloud_history(buf: JsonBuffer) -> CloudHistory:
    """Decode the body of Comfy Cloud's ``GET /api/history_v2/{id}``."""
    return _CLOUD_HISTORY.decode(buf)


def decode_cloud_history_list(buf: JsonBuffer) -> CloudHistoryList:
    """Decode the body of Comfy Cloud's ``GET /api/history_v2``."""
    return _CLOUD_HISTORY_LIST.decode(buf)
