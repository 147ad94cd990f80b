"""Text WebSocket messages: ``{"type", "data"}`` JSON → typed event (protocol doc §3.2). Pure.

One module-level msgspec decoder of a tagged union on ``type`` does all the work in a single
pass. A type this library does not know becomes :class:`~comfy_async.events.UnknownEvent` with the
decoded data (design invariant 12). Anything else that is wrong — not JSON, nested deeper than the
decoder allows, not an envelope, or a known type whose data has the wrong shape — raises
:class:`~comfy_async.errors.MessageError` and nothing else.
"""

from __future__ import annotations

from typing import Any, Final, get_args

import msgspec

from comfy_async.errors import MessageError
from comfy_async.events import (
    Executed,
    Executing,
    ExecutionCached,
    ExecutionFailed,
    ExecutionInterrupted,
    ExecutionStart,
    ExecutionSuccess,
    FeatureFlags,
    Logs,
    Notification,
    Progress,
    ProgressState,
    Status,
    TextEvent,
    UnknownEvent,
)

__all__ = ["KNOWN_TYPES", "decode_message", "encode_message"]


class _Envelope(msgspec.Struct, tag_field="type", frozen=True, gc=False):
    """Base of the wire envelopes; subclasses fix ``type`` and the type of ``data``."""


class _StatusMessage(_Envelope, frozen=True, tag="status"):
    data: Status


class _FeatureFlagsMessage(_Envelope, frozen=True, tag="feature_flags"):
    data: dict[str, Any]


class _ExecutionStartMessage(_Envelope, frozen=True, tag="execution_start"):
    data: ExecutionStart


class _ExecutionCachedMessage(_Envelope, frozen=True, tag="execution_cached"):
    data: ExecutionCached


class _ExecutingMessage(_Envelope, frozen=True, tag="executing"):
    data: Executing


class _ExecutedMessage(_Envelope, frozen=True, tag="executed"):
    data: Executed


class _ProgressMessage(_Envelope, frozen=True, tag="progress"):
    data: Progress


class _ProgressStateMessage(_Envelope, frozen=True, tag="progress_state"):
    data: ProgressState


class _ExecutionSuccessMessage(_Envelope, frozen=True, tag="execution_success"):
    data: ExecutionSuccess


class _ExecutionErrorMessage(_Envelope, frozen=True, tag="execution_error"):
    data: ExecutionFailed


class _ExecutionInterruptedMessage(_Envelope, frozen=True, tag="execution_interrupted"):
    data: ExecutionInterrupted


class _LogsMessage(_Envelope, frozen=True, tag="logs"):
    data: Logs


class _NotificationMessage(_Envelope, frozen=True, tag="notification"):
    data: Notification


_KnownMessage = (
    _StatusMessage
    | _FeatureFlagsMessage
    | _ExecutionStartMessage
    | _ExecutionCachedMessage
    | _ExecutingMessage
    | _ExecutedMessage
    | _ProgressMessage
    | _ProgressStateMessage
    | _ExecutionSuccessMessage
    | _ExecutionErrorMessage
    | _ExecutionInterruptedMessage
    | _LogsMessage
    | _NotificationMessage
)


class _AnyMessage(msgspec.Struct, frozen=True, gc=False):
    """Any envelope: used only when the typed decode fails, to tell unknown from malformed."""

    type: str
    data: Any = None


_DECODER: Final = msgspec.json.Decoder(_KnownMessage)
_FALLBACK_DECODER: Final = msgspec.json.Decoder(_AnyMessage)
_ENCODER: Final = msgspec.json.Encoder()

#: The event types decoded into their own Struct.
KNOWN_TYPES: Final[frozenset[str]] = frozenset(
    str(cls.__struct_config__.tag) for cls in get_args(_KnownMessage)
)


def decode_message(text: str | bytes | memoryview) -> TextEvent:
    """Decode one text frame into its typed event.

    Raises:
        MessageError: the frame is not JSON, is nested too deeply, is not a ``{"type", "data"}``
            object, or has a known ``type`` whose ``data`` has the wrong shape.

    """
    try:
        # Annotated: msgspec 0.22 types ``decode`` as Any, 0.23 as the tagged union plus dict.
        data: TextEvent | dict[str, Any] = _DECODER.decode(text).data
    except msgspec.ValidationError as exc:
        return _decode_fallback(text, exc)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise MessageError(f"text frame is not valid JSON: {_reason(exc)}") from None
    if isinstance(data, dict):  # only feature_flags carries a free-form dict
        return FeatureFlags(flags=data)
    return data


def _decode_fallback(text: str | bytes | memoryview, first: Exception) -> TextEvent:
    try:
        message = _FALLBACK_DECODER.decode(text)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise MessageError(f"text frame is not a {{type, data}} object: {_reason(exc)}") from None
    if message.type in KNOWN_TYPES:
        raise MessageError(f"{message.type!r} message has the wrong shape: {_reason(first)}")
    data = message.data
    prompt_id = data.get("prompt_id") if isinstance(data, dict) else None
    return UnknownEvent(
        type=message.type,
        data=data,
        prompt_id=prompt_id if isinstance(prompt_id, str) else None,
    )


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def encode_message(type_: str, data: object) -> bytes:
    """Encode a ``{"type", "data"}`` text message (as the server, or the fake server, sends it)."""
    return _ENCODER.encode({"type": type_, "data": data})
