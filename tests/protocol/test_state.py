"""Per-connection state: attribution of frames without a prompt id, on recordings and by rule."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comfy_async.events import (
    Executing,
    MalformedFrame,
    PreviewImage,
    ProgressText,
    UnknownEvent,
)
from comfy_async.protocol.frames import (
    encode_preview_image,
    encode_preview_with_metadata,
    encode_progress_text,
)
from comfy_async.protocol.messages import encode_message
from comfy_async.protocol.state import FEATURE_FLAGS_HELLO, ProtocolState
from tests.recordings import REAL_COMFYUI, received_frames

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8


def replay(name: str) -> list[tuple[int, object]]:
    """Feed one capture file through a fresh state per connection; (gseq, event) pairs."""
    state = ProtocolState()
    events: list[tuple[int, object]] = []
    for frame in received_frames(REAL_COMFYUI / "ws" / name):
        if frame is None:
            state = ProtocolState()
            continue
        if frame.kind == "text":
            event = state.receive_text(frame.payload.decode())
        else:
            event = state.receive_bytes(frame.payload)
        assert not isinstance(event, MalformedFrame | UnknownEvent), (name, frame.gseq)
        events.append((frame.gseq, event))
    return events


def owners(name: str, kind: type) -> dict[int, str | None]:
    return {gseq: event.prompt_id for gseq, event in replay(name) if isinstance(event, kind)}  # type: ignore[attr-defined]


def test_hello_is_the_exact_feature_flags_message() -> None:
    assert json.loads(FEATURE_FLAGS_HELLO) == {
        "type": "feature_flags",
        "data": {"supports_preview_metadata": True},
    }


def test_sid_and_server_flags_from_first_frames() -> None:
    state = ProtocolState()
    for frame in received_frames(REAL_COMFYUI / "ws" / "01_connect_with_feature_flags.jsonl"):
        if frame is not None:
            state.receive_text(frame.payload)
    assert state.sid is not None
    assert state.preview_metadata is True


def test_without_flags_there_is_no_preview_metadata() -> None:
    state = ProtocolState()
    for frame in received_frames(REAL_COMFYUI / "ws" / "01_connect_without_flags.jsonl"):
        if frame is not None:
            state.receive_text(frame.payload)
    assert state.sid is not None
    assert state.preview_metadata is False


LEGACY_PROMPT = "9f531596-b6a8-4804-a646-3cd6a59ee36e"
METADATA_PROMPT = "4570f612-d39f-462b-a6e0-c97a91559c0d"
BROADCAST_PROMPT = "049d5a69-0cdf-4832-8f36-4ce4912a6ed1"  # queued without client_id


def test_legacy_client_previews_go_to_the_prompt_of_the_preceding_progress() -> None:
    previews = owners("04_progress_legacy_client.jsonl", PreviewImage)
    assert list(previews.values()) == [LEGACY_PROMPT] * 4 + [BROADCAST_PROMPT] * 3


def test_metadata_client_previews_carry_their_own_prompt() -> None:
    previews = owners("04_progress_metadata_client.jsonl", PreviewImage)
    # four type-4 frames of its own prompt, then the broadcast prompt's type-1 frames
    assert list(previews.values()) == [METADATA_PROMPT] * 4 + [BROADCAST_PROMPT] * 3


def test_text_frames_of_other_clients_prompts_are_not_attributed() -> None:
    legacy = owners("04_progress_legacy_client.jsonl", ProgressText)
    meta = owners("04_progress_metadata_client.jsonl", ProgressText)
    observer = owners("04_progress_observer_client.jsonl", ProgressText)
    # legacy saw "hello from node 2" (meta client's prompt) before running anything itself
    assert list(legacy.values()) == [None, LEGACY_PROMPT, BROADCAST_PROMPT]
    assert list(meta.values()) == [METADATA_PROMPT, None, BROADCAST_PROMPT]
    assert list(observer.values()) == [None, None, BROADCAST_PROMPT]


def test_two_clients_each_attribute_only_their_own_previews() -> None:
    x = set(owners("07_two_clients_X.jsonl", PreviewImage).values())
    y = set(owners("07_two_clients_Y.jsonl", PreviewImage).values())
    assert len(x) == 1
    assert len(y) == 1
    assert x != y
    assert None not in x | y


def test_reconnect_replay_is_passed_on_without_prompt() -> None:
    events = [e for _, e in replay("08_reconnect_second_socket_same_clientId.jsonl")]
    replays = [e for e in events if isinstance(e, Executing) and e.is_replay]
    assert len(replays) == 1
    assert replays[0].node is not None
    previews = [e for e in events if isinstance(e, PreviewImage)]
    assert previews
    assert all(p.prompt_id is not None for p in previews)


@pytest.mark.parametrize(
    "name",
    sorted(p.name for p in (REAL_COMFYUI / "ws").glob("*.jsonl")),
)
def test_every_recording_replays_without_malformed_or_unknown(name: str) -> None:
    assert replay(name)


# --------------------------------------------------------------------------- rules


def feed(state: ProtocolState, type_: str, data: dict[str, object]) -> object:
    return state.receive_text(encode_message(type_, data))


def test_type_1_preview_with_nothing_running_is_unattributed() -> None:
    state = ProtocolState()
    event = state.receive_bytes(encode_preview_image(PNG, mime="image/png"))
    assert isinstance(event, PreviewImage)
    assert event.prompt_id is None


def test_finish_clears_attribution() -> None:
    state = ProtocolState()
    feed(state, "execution_start", {"prompt_id": "a"})
    feed(state, "executing", {"node": "2", "display_node": "2", "prompt_id": "a"})
    feed(state, "progress", {"value": 1, "max": 2, "prompt_id": "a", "node": "2"})
    assert state.preview_owner() == "a"
    assert state.text_owner("2") == "a"
    assert state.text_owner("3") is None  # a node that is not running
    feed(state, "execution_success", {"prompt_id": "a"})
    assert state.preview_owner() is None
    assert state.text_owner("2") is None


@pytest.mark.parametrize(
    ("type_", "data", "cleared"),
    [
        ("executing", {"node": None, "prompt_id": "a"}, True),
        ("execution_interrupted", {"prompt_id": "a"}, True),
        ("execution_error", {"prompt_id": "a", "exception_type": "ValueError"}, True),
        ("execution_error", {"prompt_id": "a", "exception_type": "ExecutionBlocked"}, False),
        ("execution_success", {"prompt_id": "other"}, False),
    ],
)
def test_terminal_events_clear_only_their_prompt(
    type_: str, data: dict[str, object], cleared: bool
) -> None:
    state = ProtocolState()
    feed(state, "executing", {"node": "2", "prompt_id": "a"})
    feed(state, type_, data)
    assert (state.active_prompt is None) is cleared


def test_progress_state_finished_node_stops_attribution() -> None:
    state = ProtocolState()
    running = {"value": 0, "max": 1, "state": "running", "node_id": "2", "display_node_id": "2"}
    feed(state, "progress_state", {"prompt_id": "b", "nodes": {"2": running}})
    assert state.text_owner("2") == "b"
    finished = dict(running, state="finished")
    feed(state, "progress_state", {"prompt_id": "b", "nodes": {"2": finished}})
    assert state.text_owner("2") is None
    assert state.preview_owner() is None


def test_text_matches_the_display_node_too() -> None:
    state = ProtocolState()
    feed(state, "executing", {"node": "5.0.1", "display_node": "5", "prompt_id": "c"})
    text = state.receive_bytes(encode_progress_text("5", "x"))
    assert isinstance(text, ProgressText)
    assert text.prompt_id == "c"


def test_type_4_is_never_reattributed() -> None:
    state = ProtocolState()
    feed(state, "executing", {"node": "2", "prompt_id": "mine"})
    event = state.receive_bytes(encode_preview_with_metadata(PNG, {"prompt_id": "theirs"}))
    assert isinstance(event, PreviewImage)
    assert event.prompt_id == "theirs"


def test_malformed_frames_become_events() -> None:
    state = ProtocolState()
    text = state.receive_text("{broken")
    binary = state.receive_bytes(b"\x00\x00")
    assert isinstance(text, MalformedFrame)
    assert text.kind == "text"
    assert text.size == 7
    assert isinstance(binary, MalformedFrame)
    assert binary.kind == "binary"
    assert binary.size == 2
    shaped = state.receive_text('{"type":"progress","data":{"value":"x","max":1}}')
    assert isinstance(shaped, MalformedFrame)
    assert "progress" in shaped.reason


@settings(max_examples=2000)
@given(st.lists(st.binary(max_size=40) | st.text(max_size=60), max_size=12))
def test_state_never_raises(frames: list[bytes | str]) -> None:
    state = ProtocolState()
    for frame in frames:
        if isinstance(frame, bytes):
            state.receive_bytes(frame)
        else:
            state.receive_text(frame)
