from __future__ import annotations

import gzip
import json
from typing import TYPE_CHECKING

import msgspec
import pytest

from comfy_async.models import (
    CloudHistoryList,
    ExecutionErrorInfo,
    HistoryEntry,
    HistoryStatus,
    NodeMeta,
    OutputFile,
    decode_cloud_history,
    decode_cloud_history_list,
    decode_history,
)
from tests.recordings import find, matching

if TYPE_CHECKING:
    from pathlib import Path


def _only(body: bytes) -> HistoryEntry:
    history = decode_history(body)
    assert len(history) == 1
    return next(iter(history.values()))


def test_success_entry() -> None:
    entry = _only(find("02", "GET /history/{run1}").body)
    assert entry.prompt.number == 0
    assert entry.prompt.prompt_id == "18f4ead6-e28e-4498-b2df-6657a62bb2dd"
    assert entry.prompt.outputs_to_execute == ["2", "3"]
    assert entry.status is not None
    assert entry.status_str == "success"
    assert entry.status.completed is True
    assert entry.status.succeeded
    assert [name for name, _ in entry.status.messages] == [
        "execution_start",
        "execution_cached",
        "execution_success",
    ]
    assert entry.status.messages[0][1]["timestamp"] == 1795344820944
    assert not entry.interrupted
    assert entry.execution_error is None
    assert entry.meta["2"] == NodeMeta(node_id="2", display_node="2", real_node_id="2")
    assert entry.files() == [
        OutputFile(filename="probe_00001_.png", type="output", node_id="2", kind="images"),
        OutputFile(filename="ComfyUI_temp_bdyhz_00001_.png", type="temp", node_id="3"),
    ]


def test_fully_cached_run_lists_every_node_as_cached() -> None:
    entry = _only(find("02", "GET /history/{run2 fully cached}").body)
    assert entry.status is not None
    assert entry.status.last_message("execution_cached") == {
        "nodes": ["1", "2", "3"],
        "prompt_id": "f965baf4-7db8-42f6-8bcd-f302b842873e",
        "timestamp": 1795344821345,
    }
    # a fully cached run still has outputs: the same files as run 1 (§5)
    assert [f.filename for f in entry.files()] == [
        "probe_00001_.png",
        "ComfyUI_temp_bdyhz_00001_.png",
    ]


def test_error_entry_keeps_earlier_outputs_and_types_the_error() -> None:
    entry = _only(find("05", "GET /history/{failed}").body)
    assert entry.status_str == "error"
    assert entry.status is not None
    assert entry.status.completed is False
    assert not entry.interrupted
    error = entry.execution_error
    assert isinstance(error, ExecutionErrorInfo)
    assert error.prompt_id == "148e2881-e580-4953-9498-b1ea94e756e7"
    assert error.node_id == "2"
    assert error.node_type == "ProbeRaise"
    assert error.exception_type == "ValueError"
    assert error.exception_message == "deliberate failure\n"
    assert error.executed == ["1", "4"]
    assert len(error.traceback) == 5
    assert isinstance(error.current_inputs, dict)
    assert error.current_inputs["message"] == ["deliberate failure"]
    assert error.current_outputs == ["2", "1", "4", "3"]
    assert error.timestamp == 1795344825977
    assert not error.is_blocked
    assert [f.filename for f in entry.files()] == ["err_side_00001_.png"]


@pytest.mark.parametrize("label", ["GET /history/{A}", "GET /history/{B}", "GET /history/{C}"])
def test_interrupted_entries(label: str) -> None:
    entry = _only(find("06", label).body)
    assert entry.status_str == "error"
    assert entry.interrupted
    assert entry.execution_error is None
    assert entry.status is not None
    assert entry.status.messages[-1][0] == "execution_interrupted"
    interrupted = entry.status.last_message("execution_interrupted")
    assert interrupted is not None
    assert interrupted["node_id"] == "2"
    assert entry.files() == []
    assert entry.meta == {}


def test_unknown_or_deleted_prompt_is_an_empty_dict() -> None:
    assert decode_history(find("06", "GET /history/{D}").body) == {}
    assert decode_history(find("11", "GET /history after clear").body) == {}


def test_blocked_prompt_succeeds_without_an_error() -> None:
    entry = _only(find("16", "GET /history/{blocked with message}").body)
    assert entry.status_str == "success"
    assert entry.execution_error is None
    assert entry.status is not None
    assert "execution_error" not in [name for name, _ in entry.status.messages]
    assert [f.filename for f in entry.files()] == ["unblocked_00001_.png"]


def test_extra_data_is_kept_and_extra_pnginfo_stays_raw() -> None:
    entry = _only(find("12", "GET /history (extra_data stored)").body)
    assert entry.prompt.number == 7.5
    extra = entry.prompt.extra_data
    assert extra["my_key"] == 1
    assert extra["client_id"] == "client-dup-12"
    assert isinstance(extra["extra_pnginfo"], msgspec.Raw)
    assert msgspec.json.decode(extra["extra_pnginfo"]) == {
        "workflow": {"id": "11111111-2222-3333-4444-555555555555"}
    }


def test_max_items_gives_the_newest_oldest_first() -> None:
    history = decode_history(find("10", "GET /history?max_items=2").body)
    assert [entry.prompt.number for entry in history.values()] == [39, 40]


def test_every_recorded_history_body() -> None:
    entries = [
        e for ex in matching("GET", "/history(/[^/]+)?") for e in decode_history(ex.body).values()
    ]
    assert len(entries) > 20
    for entry in entries:
        assert entry.status_str in {"success", "error"}
        assert entry.status is not None
        assert entry.status.completed is (entry.status_str == "success")
        assert set(entry.meta) <= set(entry.prompt.outputs_to_execute)


# --------------------------------------------------------------------------- shared fixtures


def _read(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()


def test_shared_history_fixtures_decode(shared_fixtures: Path) -> None:
    paths = sorted((shared_fixtures / "history").glob("*.json*"))
    assert paths
    for path in paths:
        raw = _read(path)
        history = decode_history(raw)
        assert len(history) == len(json.loads(raw)), path.name
        for prompt_id, entry in history.items():
            assert entry.prompt.prompt_id == prompt_id
            assert entry.status_str in {"success", "error"}
            files = entry.files()
            assert all(f.filename and f.node_id in entry.outputs for f in files)
            assert all(f.kind != "text" for f in files)
            if entry.status_str == "error":
                error = entry.execution_error
                assert error is not None
                assert error.exception_type
                assert error.traceback


def test_big_shared_history(shared_fixtures: Path) -> None:
    path = shared_fixtures / "history" / "history_200-entries.json.gz"
    if not path.exists():
        pytest.skip(f"{path.name} is not present")
    history = decode_history(_read(path))
    assert len(history) == 200
    files = [f for entry in history.values() for f in entry.files()]
    assert len(files) > 200
    assert {f.type for f in files} <= {"output", "temp", "input"}
    ui_submitted = [e for e in history.values() if "extra_pnginfo" in e.prompt.raw_extra_data]
    assert ui_submitted
    assert all(isinstance(e.prompt.extra_data["extra_pnginfo"], msgspec.Raw) for e in ui_submitted)


def test_shared_oom_entry(shared_fixtures: Path) -> None:
    path = shared_fixtures / "history" / "single_error_oom.json"
    if not path.exists():
        pytest.skip(f"{path.name} is not present")
    entry = _only(path.read_bytes())
    error = entry.execution_error
    assert error is not None
    assert "OutOfMemory" in error.exception_type
    assert entry.files() == []


# --------------------------------------------------------------------------- helpers


def test_files_of_every_kind_but_text() -> None:
    body = json.dumps(
        {
            "p": {
                "prompt": [1, "p", {}, {}, ["5", "6", "7", "8"]],
                "outputs": {
                    "5": {
                        "images": [{"filename": "a.png", "subfolder": "s", "type": "output"}],
                        "animated": [False],
                    },
                    "6": {"audio": [{"filename": "b.flac", "subfolder": "", "type": "output"}]},
                    "7": {
                        "gifs": [
                            {
                                "filename": "c.mp4",
                                "subfolder": "",
                                "type": "output",
                                "format": "video/h264-mp4",
                            }
                        ]
                    },
                    "8": {"text": ["hello"], "video": [{"filename": "d.mp4"}], "odd": "not a list"},
                },
            }
        }
    )
    entry = decode_history(body)["p"]
    assert entry.status is None
    assert entry.status_str is None
    assert not entry.interrupted
    assert entry.execution_error is None
    assert [(f.node_id, f.kind, f.filename, f.subfolder, f.type) for f in entry.files()] == [
        ("5", "images", "a.png", "s", "output"),
        ("6", "audio", "b.flac", "", "output"),
        ("7", "gifs", "c.mp4", "", "output"),
        ("8", "video", "d.mp4", "", "output"),
    ]


def test_blocked_and_malformed_errors_are_not_reported_as_the_error() -> None:
    blocked = {"prompt_id": "p", "exception_type": "ExecutionBlocked", "current_inputs": []}
    status = HistoryStatus(status_str="success", messages=[("execution_error", blocked)])
    assert status.execution_error is None
    malformed = HistoryStatus(status_str="error", messages=[("execution_error", {"node_id": 5})])
    assert malformed.execution_error is None
    assert malformed.last_message("execution_error") == {"node_id": 5}
    assert malformed.last_message("execution_success") is None


# --------------------------------------------------------------------------- Comfy Cloud (§8, [D])

CLOUD_LIST = {
    "history": [
        {
            "prompt_id": "c2",
            "create_time": 1760000000200,
            "workflow_id": "wf-1",
            "prompt": {"priority": 2, "prompt_id": "c2", "extra_data": {"client_id": "cl"}},
            "outputs": {
                "9": {"images": [{"filename": "out.png", "subfolder": "", "type": "output"}]}
            },
            "status": {
                "status_str": "success",
                "completed": True,
                "messages": [["execution_start", {"prompt_id": "c2", "timestamp": 1}]],
            },
            "meta": {
                "9": {"node_id": "9", "display_node": "9", "parent_node": None, "real_node_id": "9"}
            },
        },
        {
            "prompt_id": "c1",
            "create_time": 1760000000100,
            "prompt": {"priority": 1, "prompt_id": "c1", "extra_data": {}},
        },
    ]
}

CLOUD_DETAIL = {
    "c2": {
        "prompt": {
            "priority": 2,
            "prompt_id": "c2",
            "prompt": {"9": {"class_type": "SaveImage", "inputs": {}}},
            "extra_data": {"client_id": "cl", "extra_pnginfo": {"workflow": {}}},
            "outputs_to_execute": ["9"],
        },
        "outputs": {"9": {"images": [{"filename": "out.png", "subfolder": "", "type": "output"}]}},
        "status": {"status_str": "success", "completed": True, "messages": []},
        "meta": {},
    }
}


def test_cloud_history_list() -> None:
    listing = decode_cloud_history_list(json.dumps(CLOUD_LIST))
    assert isinstance(listing, CloudHistoryList)
    newest, oldest = listing.history
    assert newest.prompt_id == "c2"
    assert newest.create_time == 1760000000200
    assert newest.workflow_id == "wf-1"
    assert newest.prompt.number == 2
    assert newest.prompt.extra_data == {"client_id": "cl"}
    assert len(newest.prompt.prompt) == 0  # the list strips the graph
    assert newest.status_str == "success"
    assert [f.filename for f in newest.files()] == ["out.png"]
    assert oldest.status is None
    assert oldest.workflow_id is None
    assert list(listing.by_id()) == ["c2", "c1"]


def test_cloud_history_detail() -> None:
    entry = decode_cloud_history(json.dumps(CLOUD_DETAIL))["c2"]
    assert entry.prompt.prompt_id == "c2"
    assert entry.prompt.outputs_to_execute == ["9"]
    assert msgspec.json.decode(entry.prompt.prompt)["9"]["class_type"] == "SaveImage"
    assert isinstance(entry.prompt.extra_data["extra_pnginfo"], msgspec.Raw)
    assert entry.files()[0].node_id == "9"


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'{"p": []}',
        b'{"p": {"outputs": {}}}',
        b'{"p": {"prompt": [1, "p", {}], "outputs": []}}',
        b'{"p": {"prompt": [1, "p", {}], "outputs": {"1": []}}}',
        b'{"p": {"prompt": [1, "p", {}], "status": {"messages": [["x"]]}}}',
        b'{"p": {"prompt": [1, "p", {}], "status": {"completed": "yes"}}}',
        b'{"p": {"prompt": [1, "p", {}], "meta": {"1": {"parent_node": 3}}}}',
    ],
)
def test_wrong_shapes_are_validation_errors(body: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_history(body)


def test_cloud_wrong_shapes_are_validation_errors() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_cloud_history_list(b'{"history": [{"create_time": 1}]}')
    with pytest.raises(msgspec.ValidationError):
        decode_cloud_history(b'{"c": {"prompt": [1, "c", {}]}}')
