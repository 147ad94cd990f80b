"""Text messages: every recorded frame decodes with no field lost; unknown and hostile input."""

from __future__ import annotations

import contextlib
import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comfy_async.errors import MessageError
from comfy_async.events import (
    Executed,
    Executing,
    ExecutionFailed,
    FeatureFlags,
    Logs,
    Notification,
    Progress,
    ProgressState,
    Status,
    UnknownEvent,
)
from comfy_async.protocol.messages import KNOWN_TYPES, decode_message, encode_message
from tests.recordings import all_received_frames

TEXT = [frame for frame in all_received_frames() if frame.kind == "text"]


def test_recordings_cover_the_core_event_types() -> None:
    seen = {frame.json["type"] for frame in TEXT}
    assert seen == KNOWN_TYPES - {"notification"}  # Notification is Cloud-only


@pytest.mark.parametrize("frame", TEXT, ids=lambda f: f"{f.file}:{f.gseq}")
def test_recorded_frame_decodes_with_no_field_lost(frame) -> None:
    event = decode_message(frame.payload)
    wire = frame.json
    assert event.type == wire["type"]
    assert not isinstance(event, UnknownEvent)
    if isinstance(event, FeatureFlags):
        assert event.flags == wire["data"]
        return
    decoded = msgspec.to_builtins(event)
    for key, value in wire["data"].items():
        assert key in decoded, f"{key} lost"
        # 1 and 1.0 are the same number (the server mixes them, protocol doc §7.14)
        assert decoded[key] == value, key


def test_status_queue_remaining_and_sid() -> None:
    first = decode_message(
        '{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 3}},'
        ' "sid": "abc"}}'
    )
    assert isinstance(first, Status)
    assert (first.queue_remaining, first.sid, first.prompt_id) == (3, "abc", None)
    bare = decode_message('{"type": "status", "data": {}}')
    assert isinstance(bare, Status)
    assert bare.queue_remaining == 0
    assert bare.sid is None


def test_executing_variants() -> None:
    running = decode_message(
        '{"type":"executing","data":{"node":"5","display_node":"5","prompt_id":"p"}}'
    )
    finished = decode_message('{"type":"executing","data":{"node":null,"prompt_id":"p"}}')
    replay = decode_message('{"type":"executing","data":{"node":"5"}}')
    assert isinstance(running, Executing)
    assert not running.is_finished
    assert not running.is_replay
    assert isinstance(finished, Executing)
    assert finished.is_finished
    assert isinstance(replay, Executing)
    assert replay.is_replay
    assert replay.prompt_id is None


def test_executed_output_may_be_null() -> None:
    event = decode_message('{"type":"executed","data":{"node":"3","output":null,"prompt_id":"p"}}')
    assert isinstance(event, Executed)
    assert event.output is None


def test_progress_fraction() -> None:
    event = decode_message('{"type":"progress","data":{"value":3,"max":4,"prompt_id":"p"}}')
    assert isinstance(event, Progress)
    assert event.fraction == 0.75
    zero = Progress(value=1, max=0)
    assert zero.fraction == 0.0


def test_progress_state_mixes_int_and_float() -> None:
    event = decode_message(
        '{"type":"progress_state","data":{"prompt_id":"p","nodes":'
        '{"1":{"value":1,"max":1.0,"state":"finished","node_id":"1"}}}}'
    )
    assert isinstance(event, ProgressState)
    assert event.nodes["1"].value == 1.0
    assert event.nodes["1"].state == "finished"


def test_blocked_execution_error_has_list_fields_and_no_timestamp() -> None:
    event = decode_message(
        json.dumps(
            {
                "type": "execution_error",
                "data": {
                    "prompt_id": "p",
                    "node_id": "2",
                    "node_type": "ProbeBlock",
                    "executed": ["1"],
                    "exception_message": "Execution Blocked: stop",
                    "exception_type": "ExecutionBlocked",
                    "traceback": [],
                    "current_inputs": [],
                    "current_outputs": [],
                },
            }
        )
    )
    assert isinstance(event, ExecutionFailed)
    assert event.is_blocked
    assert event.timestamp is None
    assert event.current_inputs == []


def test_cloud_notification() -> None:
    event = decode_message('{"type":"notification","data":{"value":"Queue is busy","id":"n1"}}')
    assert isinstance(event, Notification)
    assert event.value == "Queue is busy"


def test_logs_event() -> None:
    event = decode_message(
        '{"type":"logs","data":{"entries":[{"t":"2026-01-01T00:00:00","m":"hi\\n"}],"size":null}}'
    )
    assert isinstance(event, Logs)
    assert event.entries[0].m == "hi\n"
    assert event.size is None


def test_unknown_type_keeps_data_and_finds_prompt_id() -> None:
    event = decode_message(
        '{"type":"crystools.monitor","data":{"cpu":12.5,"prompt_id":"p-9","x":[1,{"y":null}]}}'
    )
    assert isinstance(event, UnknownEvent)
    assert event.type == "crystools.monitor"
    assert event.data == {"cpu": 12.5, "prompt_id": "p-9", "x": [1, {"y": None}]}
    assert event.prompt_id == "p-9"


@pytest.mark.parametrize(
    "data", ['{"prompt_id": 5}', "[1, 2]", '"text"', "null", '{"a": 1}'], ids=str
)
def test_unknown_type_without_a_string_prompt_id(data: str) -> None:
    event = decode_message(f'{{"type": "custom", "data": {data}}}')
    assert isinstance(event, UnknownEvent)
    assert event.prompt_id is None


def test_unknown_type_without_data() -> None:
    event = decode_message('{"type": "ping"}')
    assert isinstance(event, UnknownEvent)
    assert event.data is None


def test_unknown_fields_are_tolerated() -> None:
    event = decode_message(
        '{"type":"execution_success","data":{"prompt_id":"p","timestamp":1,"new":true},"v":2}'
    )
    assert event.type == "execution_success"
    assert event.prompt_id == "p"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not valid JSON"),
        ("not json", "not valid JSON"),
        ('{"type": "status"', "not valid JSON"),
        ("[1, 2]", "not a {type, data} object"),
        ('{"data": {}}', "not a {type, data} object"),
        ('{"type": 5, "data": {}}', "not a {type, data} object"),
        ('{"type": "executing", "data": {"node": 5}}', "'executing' message has the wrong shape"),
        ('{"type": "progress", "data": {"value": "x", "max": 1}}', "wrong shape"),
        ('{"type": "execution_start", "data": {}}', "wrong shape"),
        ('{"type": "status", "data": []}', "wrong shape"),
        ('{"type": "feature_flags", "data": [1]}', "wrong shape"),
    ],
)
def test_malformed_messages_raise_message_error(text: str, reason: str) -> None:
    with pytest.raises(MessageError, match=reason):
        decode_message(text)


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deep_nesting_raises_message_error(depth: int) -> None:
    nested = "[" * depth + "]" * depth
    for text in (
        nested,
        f'{{"type": "custom", "data": {nested}}}',
        '{"type": "executed", "data": {"node": "1", "prompt_id": "p", "output": {"a": '
        + nested
        + "}}}",
    ):
        try:
            decode_message(text)
        except MessageError:
            continue
        # shallow enough for the decoder is fine too: it just must not crash


def test_encode_message_round_trips() -> None:
    raw = encode_message("execution_success", {"prompt_id": "p", "timestamp": 5})
    event = decode_message(raw)
    assert event.type == "execution_success"
    assert event.prompt_id == "p"


# --------------------------------------------------------------------------- properties

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=3000)
@given(text=st.text(max_size=200))
def test_arbitrary_text_raises_only_message_error(text: str) -> None:
    with contextlib.suppress(MessageError):
        decode_message(text)


@settings(max_examples=2000)
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_message_error(data: bytes) -> None:
    with contextlib.suppress(MessageError):
        decode_message(data)


@settings(max_examples=3000)
@given(
    type_=st.sampled_from(sorted(KNOWN_TYPES)) | st.text(max_size=15),
    data=json_values,
)
def test_arbitrary_envelopes_decode_or_raise_message_error(type_: str, data: object) -> None:
    text = json.dumps({"type": type_, "data": data})
    try:
        event = decode_message(text)
    except MessageError:
        assert type_ in KNOWN_TYPES  # an unknown type never fails
        return
    assert event.type == type_
