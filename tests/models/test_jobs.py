from __future__ import annotations

import json

import msgspec
import pytest

from comfy_async.models import (
    CLOUD_TERMINAL_STATES,
    CancelResult,
    CloudJobState,
    JobDetail,
    JobPhase,
    JobStatus,
    OutputFile,
    Pagination,
    decode_cancel_result,
    decode_cloud_job_status,
    decode_job,
    decode_job_list,
    job_phase,
)
from tests.recordings import find, matching


def test_completed_job_detail() -> None:
    job = decode_job(find("02", "GET /api/jobs/{run1}").body)
    assert isinstance(job, JobDetail)
    assert job.id == "18f4ead6-e28e-4498-b2df-6657a62bb2dd"
    assert job.status == JobStatus.COMPLETED
    assert job.phase is JobPhase.SUCCESS
    assert job.priority == 0
    assert job.create_time == 1795344820944
    assert job.execution_start_time == 1795344820944
    assert job.execution_end_time == 1795344820951
    assert job.outputs_count == 2
    assert job.previewable_outputs_count == 2
    assert job.preview_output == OutputFile(
        filename="probe_00001_.png", type="output", node_id="2", kind="images"
    )
    assert [f.filename for f in job.files()] == [
        "probe_00001_.png",
        "ComfyUI_temp_bdyhz_00001_.png",
    ]
    assert job.execution_status is not None
    assert job.execution_status.succeeded
    assert job.execution_error is None
    workflow = msgspec.json.decode(job.workflow)
    assert set(workflow) == {"prompt", "extra_data"}
    assert workflow["extra_data"]["client_id"] == "client-basic-02"
    assert job.update_time is None
    assert job.short_link is None


def test_failed_job_has_the_full_execution_error() -> None:
    job = decode_job(find("05", "GET /api/jobs/{failed}").body)
    assert job.status == "failed"
    assert job.phase is JobPhase.FAILED
    error = job.execution_error
    assert error is not None
    assert error.prompt_id == job.id
    assert error.node_id == "2"
    assert error.node_type == "ProbeRaise"
    assert error.exception_type == "ValueError"
    assert len(error.traceback) == 5
    assert error.current_outputs == ["2", "1", "4", "3"]
    # the jobs API's error is the history message's data, verbatim
    assert job.execution_status is not None
    assert job.execution_status.execution_error == error


@pytest.mark.parametrize("label", ["GET /api/jobs/{A}", "GET /api/jobs/{B}", "GET /api/jobs/{C}"])
def test_interrupted_jobs_are_cancelled(label: str) -> None:
    job = decode_job(find("06", label).body)
    assert job.status == JobStatus.CANCELLED
    assert job.phase is JobPhase.CANCELLED
    assert job.interrupted
    assert job.outputs_count == 0
    assert job.preview_output is None


def test_pending_and_running_jobs_have_no_times() -> None:
    pending = decode_job(find("06", "GET /api/jobs/{pending D}").body)
    running = decode_job(find("06", "GET /api/jobs/{running C}").body)
    assert pending.phase is JobPhase.PENDING
    assert running.phase is JobPhase.RUNNING
    for job in (pending, running):
        assert job.execution_start_time is None
        assert job.execution_end_time is None
        assert job.outputs_count == 0
        assert job.outputs == {}
        assert job.execution_status is None
        assert len(job.workflow) == 0


def test_job_list_pagination_and_statuses() -> None:
    page = decode_job_list(
        find("10", "GET /api/jobs?status=completed&limit=2&offset=0&sort_order=asc").body
    )
    assert len(page.jobs) == 2
    assert page.pagination == Pagination(offset=0, limit=2, total=20, has_more=True)
    assert {job.status for job in page.jobs} == {"completed"}
    full = decode_job_list(find("10", "GET /api/jobs default").body)
    assert full.pagination.limit is None
    assert full.pagination.total == len(full.jobs) == 25
    assert full.pagination.has_more is False
    assert full.pagination.next_cursor is None
    failed = [job for job in full.jobs if job.phase is JobPhase.FAILED]
    assert len(failed) == 1
    assert failed[0].execution_error is not None
    assert failed[0].execution_error.node_type == "ProbeRaise"


def test_job_list_while_running() -> None:
    page = decode_job_list(find("07", "GET /api/jobs (with running + pending)").body)
    assert [job.phase for job in page.jobs[:2]] == [JobPhase.PENDING, JobPhase.RUNNING]
    assert page.jobs[0].outputs_count == 0


def test_workflow_id_and_fractional_priority() -> None:
    page = decode_job_list(find("12", "GET /api/jobs?workflow_id=...").body)
    (job,) = page.jobs
    assert job.workflow_id == "11111111-2222-3333-4444-555555555555"
    assert job.priority == 7.5


def test_every_recorded_job_status_is_known() -> None:
    jobs = [job for ex in matching("GET", "/jobs") for job in decode_job_list(ex.body).jobs]
    jobs += [decode_job(ex.body) for ex in matching("GET", "/jobs/[^/]+")]
    assert jobs
    assert {job.status for job in jobs} <= set(JobStatus)
    assert all(job.phase is not JobPhase.UNKNOWN for job in jobs)
    assert decode_job_list(find("11", "GET /api/jobs after clear").body).jobs == []


def test_local_cancel_results() -> None:
    assert decode_cancel_result(
        find("06", "POST /api/jobs/cancel {job_ids:[D]}").body
    ).any_cancelled
    running = decode_cancel_result(find("06", "POST /api/jobs/{C}/cancel (running)").body)
    assert running == CancelResult(cancelled=True)
    assert running.cancelled_ids is None
    again = decode_cancel_result(
        find("06", "POST /api/jobs/{C}/cancel again (terminal -> no-op)").body
    )
    assert not again.any_cancelled


def test_cloud_batch_cancel_lists_ids() -> None:
    result = decode_cancel_result(b'{"cancelled": ["a", "b"]}')
    assert result.any_cancelled
    assert result.cancelled_ids == ["a", "b"]
    assert not decode_cancel_result(b'{"cancelled": []}').any_cancelled


def test_cloud_job_list_with_cursor() -> None:
    body = json.dumps(
        {
            "jobs": [
                {
                    "id": "j1",
                    "status": "completed",
                    "create_time": 1760000000,
                    "outputs_count": 1,
                    "preview_output": {
                        "filename": "a.png",
                        "subfolder": "",
                        "type": "output",
                        "nodeId": "9",
                        "mediaType": "images",
                    },
                    "workflow_id": "wf",
                },
                {"id": "j2", "status": "in_progress", "create_time": 1760000001},
            ],
            "pagination": {"limit": 100, "has_more": True, "next_cursor": "opaque-cursor"},
        }
    )
    page = decode_job_list(body)
    assert page.pagination.next_cursor == "opaque-cursor"
    assert page.pagination.has_more
    assert page.pagination.offset == 0
    assert page.jobs[0].preview_output is not None
    assert page.jobs[0].preview_output.node_id == "9"
    assert page.jobs[1].phase is JobPhase.RUNNING


def test_cloud_job_detail() -> None:
    body = json.dumps(
        {
            "id": "j1",
            "status": "failed",
            "create_time": 1760000000,
            "update_time": 1760000005,
            "user_id": "u1",
            "workspace_id": "ws1",
            "short_link": "https://comfy.example/s/abc",
            "workflow": {"nodes": [], "links": []},
            "execution_meta": {"9": {"node_id": "9"}},
            # openapi-cloud: no prompt_id, current_outputs is an object
            "execution_error": {
                "node_id": "3",
                "node_type": "KSampler",
                "exception_message": "CUDA out of memory",
                "exception_type": "OOMError",
                "traceback": [],
                "current_inputs": {},
                "current_outputs": {},
            },
        }
    )
    job = decode_job(body)
    assert (job.update_time, job.user_id, job.workspace_id) == (1760000005, "u1", "ws1")
    assert job.short_link == "https://comfy.example/s/abc"
    assert job.execution_meta == {"9": {"node_id": "9"}}
    assert job.execution_error is not None
    assert job.execution_error.prompt_id is None
    assert job.execution_error.current_outputs == {}
    assert msgspec.json.decode(job.workflow) == {"nodes": [], "links": []}


@pytest.mark.parametrize(
    ("status", "phase"),
    [
        ("pending", JobPhase.PENDING),
        ("in_progress", JobPhase.RUNNING),
        ("completed", JobPhase.SUCCESS),
        ("failed", JobPhase.FAILED),
        ("cancelled", JobPhase.CANCELLED),
        ("success", JobPhase.SUCCESS),
        ("error", JobPhase.FAILED),
        ("non_retryable_error", JobPhase.FAILED),
        ("lost", JobPhase.LOST),
        ("submitted", JobPhase.PENDING),
        ("queued_waiting", JobPhase.PENDING),
        ("preparing", JobPhase.PENDING),
        ("executing", JobPhase.RUNNING),
        ("cancel_requested", JobPhase.RUNNING),
        ("Completed ", JobPhase.SUCCESS),
        ("something_new", JobPhase.UNKNOWN),
        ("", JobPhase.UNKNOWN),
    ],
)
def test_job_phase(status: str, phase: JobPhase) -> None:
    assert job_phase(status) is phase


def test_terminal_phases_and_states() -> None:
    assert {p for p in JobPhase if p.is_terminal} == {
        JobPhase.SUCCESS,
        JobPhase.FAILED,
        JobPhase.CANCELLED,
        JobPhase.LOST,
    }
    assert {job_phase(s).is_terminal for s in CLOUD_TERMINAL_STATES} == {True}
    in_flight = set(CloudJobState) - CLOUD_TERMINAL_STATES
    assert in_flight
    assert not any(job_phase(s).is_terminal for s in in_flight)


def test_cloud_raw_status_route() -> None:
    status = decode_cloud_job_status(b'{"status": "queued_waiting"}')
    assert status.phase is JobPhase.PENDING
    assert decode_cloud_job_status(b'{"status": "lost", "id": "j"}').phase.is_terminal


@pytest.mark.parametrize(
    "body",
    [
        b'{"jobs": [{"status": "pending"}]}',
        b'{"jobs": [{"id": "j", "status": 3}]}',
        b'{"jobs": [{"id": "j", "status": "x", "priority": "high"}]}',
        b'{"jobs": [], "pagination": {"has_more": "no"}}',
        b'{"jobs": {}}',
    ],
)
def test_job_list_wrong_shapes(body: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_job_list(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "j", "status": "failed", "execution_error": "boom"}',
        b'{"id": "j", "status": "completed", "workflow": {}, "outputs": {"1": 2}}',
        b'{"id": "j", "status": "completed", "preview_output": []}',
    ],
)
def test_job_detail_wrong_shapes(body: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_job(body)


def test_cancel_wrong_shape() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_cancel_result(b'{"cancelled": "yes"}')
