"""Per-connection protocol state: frames in, typed events out, with prompt attribution. Pure.

A :class:`ProtocolState` lives as long as one WebSocket connection. It

* decodes every text and binary frame into exactly one event and **never raises**: a frame it
  cannot decode becomes :class:`~comfy_async.events.MalformedFrame` (design §2);
* remembers the ``sid`` from the first ``status`` and the server's feature flags;
* attributes the frames that carry no prompt id (protocol doc §3.3, §7.4):

  - a type-1 preview belongs to the prompt of the most recent ``progress`` seen on this
    connection (a legacy client receives ``progress_state`` → ``progress`` → type 1), as long as
    that prompt has not finished;
  - a TEXT frame belongs to the prompt whose currently running node sent it; the server
    broadcasts TEXT to every socket, so a frame from a node that is not running for a prompt this
    connection follows gets ``prompt_id=None`` rather than a guess;
  - the reconnect ``executing`` replay names a node but no prompt; it is passed on with
    ``prompt_id=None`` (the session reconciles over HTTP after every reconnect).

:data:`FEATURE_FLAGS_HELLO` is the first message a client must send to get type-4 previews.
"""

from __future__ import annotations

from typing import Any, Final

from comfy_async.errors import FrameError, MessageError
from comfy_async.events import (
    Executing,
    ExecutionCached,
    ExecutionFailed,
    ExecutionInterrupted,
    ExecutionStart,
    ExecutionSuccess,
    FeatureFlags,
    MalformedFrame,
    Progress,
    ProgressState,
    ServerEvent,
    Status,
    TextEvent,
)
from comfy_async.protocol.frames import parse_binary_frame
from comfy_async.protocol.messages import _DECODER, decode_message, encode_message

__all__ = ["CLIENT_FEATURE_FLAGS", "FEATURE_FLAGS_HELLO", "ProtocolState"]

_decode_known: Final = _DECODER.decode

#: The flags this client announces. The server reads only ``supports_preview_metadata`` and
#: checks it with ``is True``, so it must be a JSON boolean (protocol doc §3.1).
CLIENT_FEATURE_FLAGS: Final = {"supports_preview_metadata": True}

#: The feature-flags hello; it must be the first JSON text message on the socket.
FEATURE_FLAGS_HELLO: Final = encode_message("feature_flags", CLIENT_FEATURE_FLAGS).decode()


class ProtocolState:
    """The protocol state of one WebSocket connection (create a new one per connection)."""

    __slots__ = (
        "_node",
        "_node_display",
        "_node_running",
        "_pending_state",
        "_prompt",
        "server_flags",
        "sid",
    )

    def __init__(self) -> None:
        self.sid: str | None = None
        """The id the server knows this socket by (from the first ``status``)."""
        self.server_flags: FeatureFlags | None = None
        """The server's reply to :data:`FEATURE_FLAGS_HELLO`, once received."""
        self._prompt: str | None = None
        self._node: str | None = None
        self._node_display: str | None = None
        self._node_running = False
        # The latest progress_state, read only when something needs the running node: it is
        # one of the most frequent frames and most of them are never needed for attribution.
        self._pending_state: ProgressState | None = None

    @property
    def preview_metadata(self) -> bool:
        """Whether the server agreed to send type-4 previews to this connection."""
        return self.server_flags is not None and self.server_flags.supports_preview_metadata

    @property
    def active_prompt(self) -> str | None:
        """The prompt this connection last saw running and not yet finished, if any."""
        self._apply_pending_state()
        return self._prompt

    # ------------------------------------------------------------------ frames in

    def receive_text(self, text: str | bytes) -> ServerEvent:
        """Decode a text frame and update the state; never raises."""
        # decode_message's typed decode, in line (one call less for every text frame); a frame
        # it does not take (unknown type, wrong shape, not JSON) goes through decode_message.
        try:
            data: TextEvent | dict[str, Any] = _decode_known(text).data
        except Exception:  # noqa: BLE001 - decode_message tells unknown from malformed
            return self._receive_other_text(text)
        # The two most frequent frames first, here rather than in _observe (one call less).
        if type(data) is ProgressState:
            self._pending_state = data
            return data
        if type(data) is Progress and data.prompt_id is not None and data.node is not None:
            # it sets everything attribution needs: an earlier progress_state no longer matters
            self._pending_state = None
            self._prompt = data.prompt_id
            self._node = data.node
            self._node_display = None
            self._node_running = True
            return data
        # only feature_flags carries a free-form dict
        event = FeatureFlags(flags=data) if isinstance(data, dict) else data
        self._observe(event)
        return event

    def _receive_other_text(self, text: str | bytes) -> ServerEvent:
        try:
            event = decode_message(text)
        except MessageError as exc:
            return MalformedFrame(kind="text", reason=str(exc), size=len(text))
        self._observe(event)
        return event

    def receive_bytes(self, data: bytes | bytearray | memoryview) -> ServerEvent:
        """Decode a binary frame, attributing it from the state; never raises."""
        try:
            return parse_binary_frame(data, self)
        except FrameError as exc:
            return MalformedFrame(kind="binary", reason=str(exc), size=len(data))

    # ------------------------------------------------------------------ attribution

    def preview_owner(self) -> str | None:
        """The prompt a type-1 preview received now belongs to, or ``None``."""
        self._apply_pending_state()
        return self._prompt if self._node_running else None

    def text_owner(self, node_id: str) -> str | None:
        """The prompt a TEXT frame from ``node_id`` received now belongs to, or ``None``."""
        self._apply_pending_state()
        if self._node_running and node_id in (self._node, self._node_display):
            return self._prompt
        return None

    # ------------------------------------------------------------------ bookkeeping

    def _observe(self, event: ServerEvent) -> None:
        # Every frame but the two most frequent ones, which receive_text handles itself.
        self._apply_pending_state()
        if type(event) is Executing:
            prompt_id = event.prompt_id
            if prompt_id is None:
                pass  # the reconnect replay: there is no prompt to attribute to
            elif event.node is None:
                self._finished(prompt_id)
            else:
                self._running(prompt_id, event.node, event.display_node)
        elif type(event) is ExecutionStart or type(event) is ExecutionCached:
            self._prompt = event.prompt_id
            self._node = self._node_display = None
            self._node_running = False
        elif type(event) is ExecutionSuccess or type(event) is ExecutionInterrupted:
            self._finished(event.prompt_id)
        elif type(event) is ExecutionFailed:
            if not event.is_blocked:
                self._finished(event.prompt_id)
        elif type(event) is Status:
            if event.sid is not None:
                self.sid = event.sid
        elif type(event) is FeatureFlags:
            self.server_flags = event

    def _apply_pending_state(self) -> None:
        event = self._pending_state
        if event is not None:
            self._pending_state = None
            self._observe_progress_state(event)

    def _observe_progress_state(self, event: ProgressState) -> None:
        running: tuple[str, str | None] | None = None
        for node_id, node in event.nodes.items():
            if node.state == "running":
                running = (node_id, node.display_node_id)
        if running is not None:
            self._running(event.prompt_id, running[0], running[1])
        elif event.prompt_id == self._prompt:
            self._node_running = False

    def _running(self, prompt_id: str, node: str, display_node: str | None) -> None:
        self._prompt = prompt_id
        self._node = node
        self._node_display = display_node
        self._node_running = True

    def _finished(self, prompt_id: str) -> None:
        if prompt_id == self._prompt:
            self._prompt = self._node = self._node_display = None
            self._node_running = False
