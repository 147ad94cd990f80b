"""The Comfy API v2 payloads: the contract's shapes decode, unknown fields and events are kept out
of the way, links are read as given, and any SSE data either decodes or raises msgspec's error."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from comfy_async.models import (
    API_V2_TERMINAL,
    V2Asset,
    V2JobStatus,
    V2Output,
    V2PreviewEvent,
    V2Progress,
    V2StatusEvent,
    V2UnknownEvent,
    decode_v2_asset,
    decode_v2_error,
    decode_v2_event,
    decode_v2_job,
)

OUTPUT: dict[str, Any] = {
    "node_id": "9",
    "name": "ComfyUI_00001_.png",
    "type": "image",
    "content_type": "image/png",
    "size_bytes": 1848,
    "id": "9f8a1c0d-2b3e-4f56-8a7b-1c2d3e4f5a6b",
    "hash": None,
    "url": "/api/v2/assets/9f8a1c0d-2b3e-4f56-8a7b-1c2d3e4f5a6b/content",
    "url_expires_at": "2026-12-04T05:00:00Z",
    "job_id": "7f3d2c1b-9a8e-4d6f-b012-3c4d5e6f7a8b",
}
V2_JOB_SAMPLE: dict[str, Any] = {
    "id": "7f3d2c1b-9a8e-4d6f-b012-3c4d5e6f7a8b",
    "status": "running",
    "created_at": "2026-12-04T04:00:00Z",
    "started_at": "2026-12-04T04:00:01Z",
    "completed_at": None,
    "expires_at": "2026-12-11T04:00:00Z",
    "queue_position": None,
    "progress": {
        "value": 0.42,
        "nodes_done": 3,
        "nodes_total": 7,
        "current_node": "3",
        "current_node_class": "KSampler",
        "step": 8,
        "steps": 20,
        "message": "KSampler 8/20",
    },
    "outputs": [OUTPUT],
    "error": None,
    "metrics": {"queue_ms": 10, "execution_ms": None},
    "urls": {
        "self": "/api/v2/jobs/7f3d2c1b-9a8e-4d6f-b012-3c4d5e6f7a8b",
        "events": "/api/v2/jobs/7f3d2c1b-9a8e-4d6f-b012-3c4d5e6f7a8b/events",
        "cancel": "/api/v2/jobs/7f3d2c1b-9a8e-4d6f-b012-3c4d5e6f7a8b/cancel",
    },
    "a_field_from_the_future": {"x": 1},
}
V2_ASSET_SAMPLE: dict[str, Any] = {
    "id": "0b7d4c7e-33a5-4d2b-9e8f-aaaaaaaaaaaa",
    "hash": "blake3:" + "ab" * 32,
    "size_bytes": 12,
    "content_type": "image/png",
    "file_path": "photo.png",
    "created_new": True,
    "created_at": "2026-12-04T04:00:00Z",
    "url": "https://cdn.example/x?sig=1",
    "url_expires_at": "2026-12-04T05:00:00Z",
    "expires_at": None,
}


def test_a_job_decodes_with_its_links_and_progress() -> None:
    job = decode_v2_job(json.dumps(V2_JOB_SAMPLE))
    assert job.status == V2JobStatus.RUNNING
    assert not job.terminal
    assert job.urls.self_.endswith("/jobs/7f3d2c1b-9a8e-4d6f-b012-3c4d5e6f7a8b")
    assert job.urls.events.endswith("/events")
    assert job.urls.logs is None
    assert job.progress == V2Progress(
        value=0.42,
        nodes_done=3,
        nodes_total=7,
        current_node="3",
        current_node_class="KSampler",
        step=8,
        steps=20,
        message="KSampler 8/20",
    )
    assert job.outputs[0].url == OUTPUT["url"]
    assert job.metrics == {"queue_ms": 10, "execution_ms": None}


def test_every_terminal_status_is_terminal_and_no_other() -> None:
    for status in V2JobStatus:
        job = decode_v2_job(json.dumps({"id": "j", "status": status.value}))
        assert job.terminal is (status.value in API_V2_TERMINAL)
    assert {"succeeded", "canceled", "failed", "expired"} == API_V2_TERMINAL
    assert not decode_v2_job(b'{"id": "j", "status": "warming_up"}').terminal


def test_a_job_without_an_id_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_v2_job(b'{"status": "queued"}')


def test_an_asset_gives_its_workflow_reference() -> None:
    asset = decode_v2_asset(json.dumps(V2_ASSET_SAMPLE))
    assert asset.reference() == {
        "__type": "core/ASSET",
        "info": {"id": asset.id, "hash": asset.hash, "file_path": "photo.png"},
    }
    bare = V2Asset(id="a")
    assert bare.reference() == {"__type": "core/ASSET", "info": {"id": "a"}}


def test_an_error_envelope_decodes_and_anything_else_is_none() -> None:
    envelope = decode_v2_error(b'{"error": {"code": "queue_full", "message": "later"}}')
    assert envelope is not None
    assert envelope.error.code == "queue_full"
    assert decode_v2_error(b"<html>bad gateway</html>") is None
    assert decode_v2_error(b'{"error": 3}') is None


def test_the_events_of_the_catalogue_decode_to_their_types() -> None:
    status = decode_v2_event("status", b'{"status": "succeeded", "outputs": []}')
    assert status == V2StatusEvent(status="succeeded", outputs=())
    assert isinstance(decode_v2_event("progress", b'{"value": 0.5}'), V2Progress)
    preview = decode_v2_event("preview", b'{"node_id": "3", "data_base64": "AAAA"}')
    assert preview == V2PreviewEvent(node_id="3", data_base64="AAAA")
    assert isinstance(decode_v2_event("output", json.dumps(OUTPUT)), V2Output)
    assert decode_v2_event("heartbeat", b'{"n": 1}') == V2UnknownEvent(
        name="heartbeat", data={"n": 1}
    )
    assert decode_v2_event("ping", "not json") == V2UnknownEvent(name="ping", data="not json")


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["status", "value", "node_id", "outputs", "error", "step", "x"])
            | st.text(max_size=6),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@given(
    name=st.sampled_from(["status", "progress", "preview", "output", "log", "other"]),
    value=JSON,
)
def test_any_event_data_decodes_or_raises_a_validation_error(name: str, value: object) -> None:
    with contextlib.suppress(msgspec.ValidationError):
        decode_v2_event(name, json.dumps(value).encode())


@given(body=st.binary(max_size=64))
def test_any_bytes_decode_or_raise_msgspecs_error(body: bytes) -> None:
    with contextlib.suppress(msgspec.DecodeError):
        decode_v2_event("status", body)
    decode_v2_error(body)  # never raises: a body that is not the envelope is None
