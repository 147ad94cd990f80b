"""ComfyUI-Manager 4 payloads: queue counts, a task's history entry, the installed packs."""

from __future__ import annotations

import msgspec
import pytest

from comfy_async.models import (
    ManagerQueueStatus,
    ManagerTaskRecord,
    decode_installed_packs,
    decode_manager_queue_status,
    decode_manager_task,
)

# Shapes as the Manager's routes answer them (TaskHistoryItem dumped in JSON mode).
DONE = b"""{"history": {"ui_id": "t1", "client_id": "c1", "kind": "install",
  "timestamp": "2026-01-01T00:00:00Z", "result": "success",
  "status": {"status_str": "success", "completed": true, "messages": []},
  "batch_id": "batch_1", "end_time": "2026-01-01T00:00:01Z", "params": {"id": "x"}}}"""
FAILED = b"""{"history": {"ui_id": "t2", "client_id": "c1", "kind": "install",
  "timestamp": "2026-01-01T00:00:00Z", "result": "Node 'x@unknown' not found",
  "status": {"status_str": "error", "completed": true,
             "messages": ["Node 'x@unknown' not found"]}}}"""


def test_queue_status_overall_and_per_client() -> None:
    overall = decode_manager_queue_status(
        b'{"total_count": 2, "done_count": 3, "in_progress_count": 1, "pending_count": 1,'
        b' "is_processing": true}'
    )
    assert (overall.total_count, overall.done_count, overall.pending) == (2, 3, 1)
    assert overall.is_processing
    assert overall.client_id is None
    mine = decode_manager_queue_status(
        b'{"client_id": "c1", "total_count": 0, "done_count": 1, "in_progress_count": 0,'
        b' "pending_count": 0, "is_processing": false, "new_field": 1}'
    )
    assert mine.client_id == "c1"
    assert mine.done_count == 1


def test_pending_is_derived_when_the_manager_omits_it() -> None:
    # Older Managers answer without pending_count.
    status = ManagerQueueStatus(total_count=3, in_progress_count=1)
    assert status.pending == 2
    assert ManagerQueueStatus(total_count=0, in_progress_count=1).pending == 0


def test_unfinished_task_is_none_and_finished_task_decodes() -> None:
    assert decode_manager_task(b'{"history": {}}') is None
    record = decode_manager_task(DONE)
    assert record is not None
    assert (record.ui_id, record.kind, record.outcome) == ("t1", "install", "success")
    assert record.succeeded
    assert record.messages == ()


def test_failed_task_carries_the_managers_messages() -> None:
    record = decode_manager_task(FAILED)
    assert record is not None
    assert not record.succeeded
    assert record.outcome == "error"
    assert record.messages == ("Node 'x@unknown' not found",)


@pytest.mark.parametrize(
    ("result", "succeeded"), [("success", True), ("skip", True), ("Installation failed", False)]
)
def test_a_task_without_status_falls_back_on_its_result(result: str, succeeded: bool) -> None:
    record = ManagerTaskRecord(ui_id="t", result=result)
    assert record.succeeded is succeeded
    assert record.messages == (() if succeeded else (result,))


def test_a_history_entry_that_is_not_a_task_is_a_decode_error() -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_manager_task(b'{"history": {"t1": {"ui_id": "t1"}}}')
    with pytest.raises(msgspec.DecodeError):
        decode_manager_task(b'{"history": []}')


def test_installed_packs_are_listed_by_name() -> None:
    packs = decode_installed_packs(
        b'{"zeta-pack": {"ver": "1.2.0", "cnr_id": "zeta-pack", "aux_id": null, "enabled": true},'
        b' "alpha": {"ver": "a1b2c3d", "cnr_id": "", "aux_id": "owner/alpha", "enabled": false}}'
    )
    assert [pack.name for pack in packs] == ["alpha", "zeta-pack"]
    assert packs[0].aux_id == "owner/alpha"
    assert not packs[0].enabled
    assert packs[1].version == "1.2.0"
    assert packs[1].cnr_id == "zeta-pack"
    assert decode_installed_packs(b"null") == []
