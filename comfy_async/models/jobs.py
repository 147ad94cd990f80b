"""Payloads of the jobs API: ``/api/jobs``, ``/api/jobs/{id}``, the cancel routes (§2.1, §4.5, §8).

Local ComfyUI and Comfy Cloud share the shapes, with differences this module absorbs:

* pagination is by offset locally (``offset, limit|null, total, has_more``) and by cursor on
  Cloud (``next_cursor``): one :class:`Pagination` holds both;
* the job detail gains ``update_time``, ``user_id``, ``workspace_id``, ``execution_meta`` and
  ``short_link`` on Cloud;
* ``POST /api/jobs/cancel`` answers ``{"cancelled": bool}`` locally and ``{"cancelled": [ids]}``
  on Cloud: :class:`CancelResult` accepts both;
* Cloud's deprecated ``GET /api/job/{id}/status`` reports raw states (``success``, ``lost``…):
  :func:`job_phase` classifies any status string of either flavour.

Servers older than the jobs API (§9) answer 404; the history and queue models cover them.
"""

from __future__ import annotations

import enum
from typing import Any, Final

import msgspec

from comfy_async.models._base import JsonBuffer, Model
from comfy_async.models.files import OutputFile, output_files
from comfy_async.models.history import ExecutionErrorInfo, HistoryStatus

__all__ = [
    "CLOUD_TERMINAL_STATES",
    "CancelResult",
    "CloudJobState",
    "CloudJobStatus",
    "JobDetail",
    "JobEntry",
    "JobList",
    "JobPhase",
    "JobStatus",
    "Pagination",
    "decode_cancel_result",
    "decode_cloud_job_status",
    "decode_job",
    "decode_job_list",
    "job_phase",
]


class JobStatus(enum.StrEnum):
    """The ``status`` values of ``/api/jobs`` (local and Cloud), also its ``status`` filter."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class CloudJobState(enum.StrEnum):
    """Raw job states of Comfy Cloud's ``GET /api/job/{id}/status`` (documented, §8).

    The first five are terminal; every other state, including ones not listed here, means the
    job is still in flight.
    """

    SUCCESS = "success"
    ERROR = "error"
    NON_RETRYABLE_ERROR = "non_retryable_error"
    LOST = "lost"
    CANCELLED = "cancelled"
    SUBMITTED = "submitted"
    QUEUED_LIMITED = "queued_limited"
    QUEUED_WAITING = "queued_waiting"
    ALLOCATED = "allocated"
    PREPARING = "preparing"
    PENDING_EXECUTION = "pending_execution"
    EXECUTING = "executing"
    EXECUTED = "executed"
    ERRORING = "erroring"
    CANCEL_REQUESTED = "cancel_requested"
    CANCEL_PENDING = "cancel_pending"
    CANCELLING_PREPARING = "cancelling_preparing"


#: The raw Cloud states after which a job changes no more.
CLOUD_TERMINAL_STATES: Final = frozenset(
    {
        CloudJobState.SUCCESS,
        CloudJobState.ERROR,
        CloudJobState.NON_RETRYABLE_ERROR,
        CloudJobState.LOST,
        CloudJobState.CANCELLED,
    }
)


class JobPhase(enum.StrEnum):
    """Where a job is, whatever flavour of status string the server used (see :func:`job_phase`)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        """Whether the job is over. ``UNKNOWN`` is not: treat an unknown state as in flight."""
        return self in _TERMINAL_PHASES


_TERMINAL_PHASES: Final = frozenset(
    {JobPhase.SUCCESS, JobPhase.FAILED, JobPhase.CANCELLED, JobPhase.LOST}
)

_PHASES: Final[dict[str, JobPhase]] = {
    # the jobs API, local and Cloud (§4.5)
    JobStatus.PENDING: JobPhase.PENDING,
    JobStatus.IN_PROGRESS: JobPhase.RUNNING,
    JobStatus.COMPLETED: JobPhase.SUCCESS,
    JobStatus.FAILED: JobPhase.FAILED,
    JobStatus.CANCELLED: JobPhase.CANCELLED,
    # raw Cloud states (§8); transitional ones (erroring, cancel_*) are still in flight
    CloudJobState.SUCCESS: JobPhase.SUCCESS,
    CloudJobState.ERROR: JobPhase.FAILED,
    CloudJobState.NON_RETRYABLE_ERROR: JobPhase.FAILED,
    CloudJobState.LOST: JobPhase.LOST,
    CloudJobState.SUBMITTED: JobPhase.PENDING,
    CloudJobState.QUEUED_LIMITED: JobPhase.PENDING,
    CloudJobState.QUEUED_WAITING: JobPhase.PENDING,
    CloudJobState.ALLOCATED: JobPhase.PENDING,
    CloudJobState.PREPARING: JobPhase.PENDING,
    CloudJobState.PENDING_EXECUTION: JobPhase.PENDING,
    CloudJobState.EXECUTING: JobPhase.RUNNING,
    CloudJobState.EXECUTED: JobPhase.RUNNING,
    CloudJobState.ERRORING: JobPhase.RUNNING,
    CloudJobState.CANCEL_REQUESTED: JobPhase.RUNNING,
    CloudJobState.CANCEL_PENDING: JobPhase.RUNNING,
    CloudJobState.CANCELLING_PREPARING: JobPhase.RUNNING,
    "waiting_to_dispatch": JobPhase.PENDING,  # listed by the Cloud status schema
}


def job_phase(status: str) -> JobPhase:
    """Classify a job status of the jobs API or a raw Cloud state.

    ``completed``/``success`` → SUCCESS; ``failed``/``error``/``non_retryable_error`` → FAILED;
    ``in_progress``/``executing`` and transitional states → RUNNING; queued states → PENDING;
    ``cancelled`` → CANCELLED; ``lost`` → LOST; anything else → UNKNOWN.
    """
    return _PHASES.get(status.strip().lower(), JobPhase.UNKNOWN)


class JobEntry(Model, frozen=True):
    """One job of ``GET /api/jobs``. Absent fields are omitted by the server, hence the defaults.

    Times are epoch milliseconds locally. Pending or running jobs have no times and
    ``outputs_count == 0`` (§4.5). ``execution_error`` is set on failed jobs.
    """

    id: str
    status: str
    priority: int | float | None = None
    create_time: int | float | None = None
    execution_start_time: int | float | None = None
    execution_end_time: int | float | None = None
    outputs_count: int | None = None
    previewable_outputs_count: int | None = None
    preview_output: OutputFile | None = None
    execution_error: ExecutionErrorInfo | None = None
    workflow_id: str | None = None

    @property
    def phase(self) -> JobPhase:
        """The job's :class:`JobPhase`, derived from :attr:`status`."""
        return job_phase(self.status)


class JobDetail(JobEntry, frozen=True):
    """``GET /api/jobs/{id}``: a :class:`JobEntry` plus outputs, history status and the workflow.

    ``workflow`` (locally ``{"prompt", "extra_data"}``) stays :class:`msgspec.Raw`: empty when
    the server left it out. ``execution_status`` is the history ``status`` of the prompt.
    The remaining fields are Comfy Cloud's additions.
    """

    outputs: dict[str, dict[str, Any]] = {}
    execution_status: HistoryStatus | None = None
    workflow: msgspec.Raw = msgspec.Raw()
    update_time: int | float | None = None
    user_id: str | None = None
    workspace_id: str | None = None
    execution_meta: dict[str, Any] | None = None
    short_link: str | None = None

    @property
    def interrupted(self) -> bool:
        """Whether the job was interrupted or cancelled while it ran."""
        return self.execution_status is not None and self.execution_status.interrupted

    def files(self) -> list[OutputFile]:
        """Every output file (images, audio, video, gifs…), node by node."""
        return output_files(self.outputs)


class Pagination(Model, frozen=True):
    """Paging of ``GET /api/jobs``: by offset locally, by cursor on Comfy Cloud.

    Locally ``limit`` is ``None`` when none was asked for. On Cloud, pass
    :attr:`next_cursor` as ``after`` to get the next page; it is ``None`` on the last one.
    """

    offset: int = 0
    limit: int | None = None
    total: int | None = None
    has_more: bool = False
    next_cursor: str | None = None


class JobList(Model, frozen=True):
    """``GET /api/jobs``: one page of jobs."""

    jobs: list[JobEntry] = []
    pagination: Pagination = Pagination()


class CancelResult(Model, frozen=True):
    """The answer of ``POST /api/jobs/{id}/cancel`` and ``POST /api/jobs/cancel``.

    Locally ``cancelled`` is a bool (for the batch: whether any was cancelled); Comfy Cloud's
    batch call answers with the list of cancelled ids (§8).
    """

    cancelled: bool | list[str] = False

    @property
    def any_cancelled(self) -> bool:
        """Whether at least one job was cancelled."""
        return bool(self.cancelled)

    @property
    def cancelled_ids(self) -> list[str] | None:
        """The cancelled ids when the server lists them (Cloud), else ``None``."""
        return self.cancelled if isinstance(self.cancelled, list) else None


class CloudJobStatus(Model, frozen=True):
    """Comfy Cloud's deprecated ``GET /api/job/{id}/status``: a raw :class:`CloudJobState`."""

    status: str
    id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    last_state_update: str | None = None
    assigned_inference: str | None = None
    error_message: str | None = None

    @property
    def phase(self) -> JobPhase:
        """The job's :class:`JobPhase`, derived from :attr:`status`."""
        return job_phase(self.status)


_JOB_LIST = msgspec.json.Decoder(JobList)
_JOB = msgspec.json.Decoder(JobDetail)
_CANCEL_RESULT = msgspec.json.Decoder(CancelResult)
_CLOUD_JOB_STATUS = msgspec.json.Decoder(CloudJobStatus)


def decode_job_list(buf: JsonBuffer) -> JobList:
    """Decode the body of ``GET /api/jobs``."""
    return _JOB_LIST.decode(buf)


def decode_job(buf: JsonBuffer) -> JobDetail:
    """Decode the 200 body of ``GET /api/jobs/{id}``."""
    return _JOB.decode(buf)


def decode_cancel_result(buf: JsonBuffer) -> CancelResult:
    """Decode the 200 body of ``POST /api/jobs/{id}/cancel`` or ``POST /api/jobs/cancel``."""
    return _CANCEL_RESULT.decode(buf)


def decode_cloud_job_status(buf: JsonBuffer) -> CloudJobStatus:
    """Decode the body of Comfy Cloud's ``GET /api/job/{id}/status``."""
    return _CLOUD_JOB_STATUS.decode(buf)
