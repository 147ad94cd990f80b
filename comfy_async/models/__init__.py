"""msgspec Structs for every REST payload of the ComfyUI and Comfy Cloud servers, by API area.

Models hold data only (no I/O, no logic beyond properties). Unknown fields are ignored and every
field the server may omit has a default (design §7). Each area module has ``decode_*`` functions,
one per response shape, each backed by one reusable module-level decoder; they raise
``msgspec.ValidationError`` (a ``msgspec.DecodeError``) on a body of the wrong shape.
"""

from __future__ import annotations

from comfy_async.models._base import JsonBuffer, Model
from comfy_async.models.files import (
    FileRef,
    OutputFile,
    UploadResult,
    decode_upload_result,
    output_files,
)
from comfy_async.models.history import (
    CloudHistory,
    CloudHistoryEntry,
    CloudHistoryList,
    CloudHistoryListItem,
    CloudHistoryPrompt,
    ExecutionErrorInfo,
    History,
    HistoryEntry,
    HistoryRecord,
    HistoryStatus,
    NodeMeta,
    decode_cloud_history,
    decode_cloud_history_list,
    decode_history,
)
from comfy_async.models.jobs import (
    CLOUD_TERMINAL_STATES,
    CancelResult,
    CloudJobState,
    CloudJobStatus,
    JobDetail,
    JobEntry,
    JobList,
    JobPhase,
    JobStatus,
    Pagination,
    decode_cancel_result,
    decode_cloud_job_status,
    decode_job,
    decode_job_list,
    job_phase,
)
from comfy_async.models.prompts import (
    InputError,
    NodeError,
    PromptErrorInfo,
    PromptRejection,
    PromptResponse,
)
from comfy_async.models.queue import (
    PromptInfo,
    Queue,
    QueueItem,
    decode_extra_data,
    decode_prompt_info,
    decode_queue,
)

__all__ = [
    "CLOUD_TERMINAL_STATES",
    "CancelResult",
    "CloudHistory",
    "CloudHistoryEntry",
    "CloudHistoryList",
    "CloudHistoryListItem",
    "CloudHistoryPrompt",
    "CloudJobState",
    "CloudJobStatus",
    "ExecutionErrorInfo",
    "FileRef",
    "History",
    "HistoryEntry",
    "HistoryRecord",
    "HistoryStatus",
    "InputError",
    "JobDetail",
    "JobEntry",
    "JobList",
    "JobPhase",
    "JobStatus",
    "JsonBuffer",
    "Model",
    "NodeError",
    "NodeMeta",
    "OutputFile",
    "Pagination",
    "PromptErrorInfo",
    "PromptInfo",
    "PromptRejection",
    "PromptResponse",
    "Queue",
    "QueueItem",
    "UploadResult",
    "decode_cancel_result",
    "decode_cloud_history",
    "decode_cloud_history_list",
    "decode_cloud_job_status",
    "decode_extra_data",
    "decode_history",
    "decode_job",
    "decode_job_list",
    "decode_prompt_info",
    "decode_queue",
    "decode_upload_result",
    "job_phase",
    "output_files",
]
