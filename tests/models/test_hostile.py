"""Hostile input: every decode entry point accepts a body or raises msgspec's errors, nothing else.

The REST layer maps ``msgspec.DecodeError`` (and its subclass ``ValidationError``) to
``comfy_async.errors.DecodeError``; any other exception would escape it. Whatever decodes must
also survive every helper property and method of the result.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from comfy_async import models
from comfy_async.models import (
    decode_cancel_result,
    decode_cloud_history,
    decode_cloud_history_list,
    decode_cloud_job_status,
    decode_history,
    decode_installed_packs,
    decode_job,
    decode_job_list,
    decode_manager_queue_status,
    decode_manager_task,
    decode_model_files,
    decode_model_folders,
    decode_node_info,
    decode_object_info,
    decode_object_info_index,
    decode_prompt_info,
    decode_queue,
    decode_server_logs,
    decode_system_stats,
    decode_upload_result,
    decode_userdata_entries,
    decode_userdata_file,
    decode_userdata_files,
    decode_users,
    decode_v2_asset,
    decode_v2_error,
    decode_v2_job,
)
from tests.recordings import find

from .test_api_v2 import V2_ASSET_SAMPLE, V2_JOB_SAMPLE
from .test_history import CLOUD_DETAIL, CLOUD_LIST

if TYPE_CHECKING:
    from collections.abc import Callable

KEYS = st.sampled_from(
    [
        "prompt",
        "outputs",
        "status",
        "meta",
        "messages",
        "status_str",
        "completed",
        "images",
        "filename",
        "subfolder",
        "type",
        "queue_running",
        "queue_pending",
        "jobs",
        "pagination",
        "id",
        "execution_error",
        "preview_output",
        "cancelled",
        "name",
        "input",
        "required",
        "hidden",
        "output",
        "system",
        "devices",
        "entries",
        "size",
        "path",
        "pathIndex",
        "users",
        "history",
        "extra_data",
        "prompt_id",
        "number",
        "priority",
        "workflow",
        "nodeId",
        "ui_id",
        "ver",
        "total_count",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(KEYS | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=40,
)


def _sample(prefix: str, label: str) -> Any:
    return find(prefix, label).json


# decode entry point → a realistic body to mutate
CASES: dict[str, tuple[Callable[[bytes], object], Any]] = {
    "queue": (decode_queue, _sample("06", "GET /queue (C running, D/E/F pending)")),
    "prompt_info": (decode_prompt_info, _sample("07", "GET /prompt (queue_remaining)")),
    "history": (decode_history, _sample("05", "GET /history/{failed}")),
    "cloud_history": (decode_cloud_history, CLOUD_DETAIL),
    "cloud_history_list": (decode_cloud_history_list, CLOUD_LIST),
    "job": (decode_job, _sample("05", "GET /api/jobs/{failed}")),
    "job_list": (decode_job_list, _sample("10", "GET /api/jobs?status=failed,cancelled")),
    "cancel": (decode_cancel_result, {"cancelled": ["a", "b"]}),
    "cloud_job_status": (decode_cloud_job_status, {"status": "executing", "id": "j"}),
    "upload": (decode_upload_result, _sample("09", "upload #5 subfolder + type=input")),
    "object_info": (
        decode_object_info,
        _sample("10", "GET /object_info/SaveImage legacy output node"),
    ),
    "object_info_index": (decode_object_info_index, {"A": {"name": "A"}}),
    "node_info": (
        decode_node_info,
        _sample("10", "GET /object_info/ProbeSleepProgress custom node")["ProbeSleepProgress"],
    ),
    "system_stats": (decode_system_stats, _sample("10", "GET /system_stats")),
    "server_logs": (
        decode_server_logs,
        {"entries": [{"t": "x", "m": "y\n"}], "size": {"cols": 1, "rows": 2}},
    ),
    "model_folders": (
        decode_model_folders,
        [*_sample("10", "GET /experiment/models")[:2], "loras"],
    ),
    "model_files": (
        decode_model_files,
        ["a.safetensors", {"name": "b", "pathIndex": 0, "size": 1}],
    ),
    "users": (decode_users, {"storage": "server", "users": {"a": "b"}}),
    "userdata_files": (decode_userdata_files, ["a", ["b", "b"], {"path": "c", "size": 1}]),
    "userdata_file": (decode_userdata_file, {"path": "c", "size": 1, "modified": 2.5}),
    "userdata_entries": (
        decode_userdata_entries,
        [{"name": "a", "path": "a", "type": "file", "size": 1}],
    ),
    "manager_queue_status": (
        decode_manager_queue_status,
        {"total_count": 2, "done_count": 1, "in_progress_count": 1, "pending_count": 1,
         "is_processing": True, "client_id": "c"},
    ),
    "manager_task": (
        decode_manager_task,
        {"history": {"ui_id": "t", "client_id": "c", "kind": "install", "result": "failed",
                     "timestamp": "2026-01-01T00:00:00Z",
                     "status": {"status_str": "error", "completed": True, "messages": ["x"]}}},
    ),
    "installed_packs": (
        decode_installed_packs,
        {"pack": {"ver": "1.0.0", "cnr_id": "pack", "aux_id": None, "enabled": True}},
    ),
    "v2_job": (decode_v2_job, V2_JOB_SAMPLE),
    "v2_asset": (decode_v2_asset, V2_ASSET_SAMPLE),
    "v2_error": (decode_v2_error, {"error": {"code": "not_found", "message": "m", "details": {}}}),
}  # fmt: skip


def test_every_decode_function_is_covered() -> None:
    exported = {name for name in models.__all__ if name.startswith("decode_")}
    # decode_extra_data decodes a field already decoded to raw values, not a response body
    assert exported - {"decode_extra_data", "decode_v2_event"} == {
        fn.__name__ for fn, _ in CASES.values()
    }


def exercise(value: object, depth: int = 0) -> None:
    """Touch every helper property and no-argument method of a decoded value, recursively."""
    if depth > 6:
        return
    if isinstance(value, msgspec.Struct):
        cls = type(value)
        for name in dir(cls):
            if isinstance(getattr(cls, name, None), property):
                exercise(getattr(value, name), depth + 1)
        for method in ("files", "by_id", "pending_in_run_order"):
            attribute = getattr(value, method, None)
            if callable(attribute):
                exercise(attribute(), depth + 1)
        for probe in ("find", "is_running", "is_pending"):
            attribute = getattr(value, probe, None)
            if callable(attribute):
                attribute("x")
        if hasattr(value, "last_message"):
            value.last_message("execution_error")
        for field in value.__struct_fields__:
            exercise(getattr(value, field), depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            exercise(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            exercise(item, depth + 1)
    elif isinstance(value, msgspec.Raw) and depth == 0:
        msgspec.json.decode(value)


def _decode_or_reject(decode: Callable[[bytes], object], body: bytes) -> None:
    try:
        result = decode(body)
    except msgspec.ValidationError:
        return
    exercise(result)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


@pytest.mark.parametrize("case", list(CASES))
def test_the_realistic_sample_decodes(case: str) -> None:
    decode, sample = CASES[case]
    exercise(decode(json.dumps(sample).encode()))


@pytest.mark.parametrize("case", list(CASES))
@given(data=st.data())
def test_mutated_bodies_decode_or_raise_validation_error(case: str, data: st.DataObject) -> None:
    decode, sample = CASES[case]
    path = data.draw(st.sampled_from(_paths(sample)), label="path")
    new = data.draw(JSON, label="new value")
    _decode_or_reject(decode, json.dumps(_replace(sample, path, new)).encode())


@pytest.mark.parametrize("case", list(CASES))
@given(value=JSON)
def test_any_json_decodes_or_raises_validation_error(case: str, value: Any) -> None:
    decode, _ = CASES[case]
    _decode_or_reject(decode, json.dumps(value).encode())


@pytest.mark.parametrize("case", list(CASES))
@given(body=st.binary(max_size=64))
def test_any_bytes_decode_or_raise_decode_error(case: str, body: bytes) -> None:
    decode, _ = CASES[case]
    try:
        result = decode(body)
    except msgspec.DecodeError:  # ValidationError is a DecodeError too
        return
    exercise(result)
