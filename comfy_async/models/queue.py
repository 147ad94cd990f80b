"""Payloads of ``GET /queue`` and ``GET /prompt``: the queue items and the queue size (§2.1, §4.3).

A queue item is a positional array. Local ComfyUI sends
``[number, prompt_id, prompt, extra_data, outputs_to_execute]`` (a sixth, sensitive element may
exist on some servers and is ignored); Comfy Cloud documents
``[job_number, prompt_id, workflow, output_node_ids, metadata]``, with the last two swapped
(§8). :class:`QueueItem` decodes both and tells the two slots apart by their JSON type, so both
give the same attributes. The graph stays :class:`msgspec.Raw`, and so does ``extra_pnginfo``
(the UI workflow) inside ``extra_data``: they are large and rarely read (design §7).

``queue_pending`` comes in heap order, not run order (§7.8): use
:attr:`Queue.pending_in_run_order`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from comfy_async.events import ExecInfo
from comfy_async.models._base import JsonBuffer, Model

__all__ = [
    "PromptInfo",
    "Queue",
    "QueueItem",
    "decode_extra_data",
    "decode_prompt_info",
    "decode_queue",
]

#: ``extra_data`` key whose value stays raw: the UI workflow embedded into saved PNGs.
_RAW_EXTRA_KEYS = frozenset({"extra_pnginfo"})


def decode_extra_data(extra_data: dict[str, msgspec.Raw]) -> dict[str, Any]:
    """Decode the values of a raw ``extra_data`` dict, leaving ``extra_pnginfo`` as Raw."""
    return {
        key: value if key in _RAW_EXTRA_KEYS else msgspec.json.decode(value)
        for key, value in extra_data.items()
    }


class QueueItem(Model, frozen=True, array_like=True):
    """One prompt in the queue, or the ``prompt`` of a history entry.

    Attributes:
        number: the priority; lower runs first. Negative with ``front``, fractional when the
            client chose it (§4.1). On Comfy Cloud, the 1-based position.
        prompt_id: the prompt's id.
        prompt: the API-format graph, undecoded (``msgspec.json.decode(item.prompt)``).
        extra_data: see :attr:`extra_data`.
        outputs_to_execute: see :attr:`outputs_to_execute`.

    The two trailing slots are kept as sent; build items from JSON, not by hand.
    """

    number: int | float
    prompt_id: str
    prompt: msgspec.Raw
    _slot3: dict[str, msgspec.Raw] | list[str] = {}
    _slot4: list[str] | dict[str, msgspec.Raw] = []

    @property
    def raw_extra_data(self) -> dict[str, msgspec.Raw]:
        """``extra_data`` with every value undecoded (Cloud: the ``metadata`` object)."""
        if isinstance(self._slot3, dict):
            return self._slot3
        if isinstance(self._slot4, dict):
            return self._slot4
        return {}

    @property
    def extra_data(self) -> dict[str, Any]:
        """``extra_data`` as stored by the server (``client_id``, ``create_time``…).

        Its ``extra_pnginfo`` value, when present, is left as :class:`msgspec.Raw`. On Comfy
        Cloud this is the item's ``metadata`` (``{create_time}``).
        """
        return decode_extra_data(self.raw_extra_data)

    @property
    def outputs_to_execute(self) -> list[str]:
        """Ids of the output nodes that passed validation and will run."""
        if isinstance(self._slot4, list):
            return self._slot4
        if isinstance(self._slot3, list):
            return self._slot3
        return []

    @property
    def client_id(self) -> str | None:
        """The ``client_id`` the prompt was submitted with, if any."""
        value = self._extra_value("client_id")
        return value if isinstance(value, str) else None

    @property
    def create_time(self) -> int | float | None:
        """When the server queued the prompt, in epoch milliseconds, if it says."""
        value = self._extra_value("create_time")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return value

    def _extra_value(self, key: str) -> Any:
        raw = self.raw_extra_data.get(key)
        return None if raw is None else msgspec.json.decode(raw)


class Queue(Model, frozen=True):
    """``GET /queue``: the running prompt(s) and the pending ones (in heap order)."""

    queue_running: list[QueueItem] = []
    queue_pending: list[QueueItem] = []

    @property
    def pending_in_run_order(self) -> list[QueueItem]:
        """Pending items in the order the server will run them: by ``(number, prompt_id)``.

        The server keeps a min-heap on that pair and sends the heap as is (§4.1, §7.8).
        """
        return sorted(self.queue_pending, key=lambda item: (item.number, item.prompt_id))

    def find(self, prompt_id: str) -> QueueItem | None:
        """The running or pending item with this prompt id, or ``None``."""
        for item in (*self.queue_running, *self.queue_pending):
            if item.prompt_id == prompt_id:
                return item
        return None

    def is_running(self, prompt_id: str) -> bool:
        """Whether this prompt is running now."""
        return any(item.prompt_id == prompt_id for item in self.queue_running)

    def is_pending(self, prompt_id: str) -> bool:
        """Whether this prompt waits in the queue."""
        return any(item.prompt_id == prompt_id for item in self.queue_pending)


class PromptInfo(Model, frozen=True):
    """``GET /prompt``: the queue size, like the WebSocket ``status`` event."""

    exec_info: ExecInfo = ExecInfo()

    @property
    def queue_remaining(self) -> int:
        """Pending plus running prompts, for the whole server (per user on Comfy Cloud)."""
        return self.exec_info.queue_remaining


_QUEUE = msgspec.json.Decoder(Queue)
_PROMPT_INFO = msgspec.json.Decoder(PromptInfo)


def decode_queue(buf: JsonBuffer) -> Queue:
    """Decode the body of ``GET /queue`` (local or Cloud item layout)."""
    return _QUEUE.decode(buf)


def decode_prompt_info(buf: JsonBuffer) -> PromptInfo:
    """Decode the body of ``GET /prompt``."""
    return _PROMPT_INFO.decode(buf)
