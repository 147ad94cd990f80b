"""comfy_async: an asyncio client for ComfyUI and Comfy Cloud.

One session, one WebSocket, any number of jobs; each job an async iterator of typed events that
ends in exactly one outcome; a complete, typed REST surface. See the README for a tour.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

from comfy_async.config import (
    USE_CLIENT_DEFAULT,
    AdmissionPolicy,
    AutoInstall,
    Backoff,
    ClientOptions,
    HeartbeatPolicy,
    ReconcilePolicy,
    ReconnectPolicy,
    RetryPolicy,
    StreamLimits,
    TenantLimits,
    Timeouts,
)
from comfy_async.errors import (
    AdmissionRefused,
    AmbiguousNodeError,
    AuthenticationError,
    AutoInstallError,
    BadRequestError,
    ClientClosedError,
    ComfyError,
    ConfigurationError,
    ConflictError,
    ConnectError,
    ConnectionLostError,
    DecodeError,
    DownloadTooLargeError,
    ExecutionError,
    FrameError,
    HTTPStatusError,
    JobCancelled,
    JobError,
    JobExpired,
    JobInterrupted,
    JobLost,
    JobTimeout,
    ManagerTaskError,
    ManagerUnavailableError,
    MessageError,
    NoCapableServerError,
    NotFoundError,
    PayloadTooLargeError,
    PaymentRequiredError,
    PermissionDeniedError,
    PromptValidationError,
    ProtocolError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    ServiceUnavailableError,
    TransportError,
    UnknownInputError,
    UnknownNodeError,
    UnsafeError,
    UnsafePathError,
    UnsafeRedirectError,
    UnsafeURLError,
    UnsupportedOperationError,
    UnsupportedWorkflowError,
    WorkflowError,
    WorkflowFormatError,
)

# A library configures no logging: records go nowhere unless the application sets handlers up
# (the logger names and what each level carries are listed in the README, "Logging").
logging.getLogger("comfy_async").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from comfy_async._live.batch import BatchOutcome
    from comfy_async._live.connection import ConnectionState, ReconnectInfo
    from comfy_async._transport.rest.prompts import batch_prompt_id, new_prompt_id
    from comfy_async.catalogue import Catalogue
    from comfy_async.client import ComfyClient
    from comfy_async.job import Job, JobProgress, JobResult, JobState
    from comfy_async.pool import ComfyPool, PoolServer
    from comfy_async.workflow import Problem, Workflow

__all__ = [
    "USE_CLIENT_DEFAULT",
    "AdmissionPolicy",
    "AdmissionRefused",
    "AmbiguousNodeError",
    "AuthenticationError",
    "AutoInstall",
    "AutoInstallError",
    "Backoff",
    "BadRequestError",
    "BatchOutcome",
    "Catalogue",
    "ClientClosedError",
    "ClientOptions",
    "ComfyClient",
    "ComfyError",
    "ComfyPool",
    "ConfigurationError",
    "ConflictError",
    "ConnectError",
    "ConnectionLostError",
    "ConnectionState",
    "DecodeError",
    "DownloadTooLargeError",
    "ExecutionError",
    "FrameError",
    "HTTPStatusError",
    "HeartbeatPolicy",
    "Job",
    "JobCancelled",
    "JobError",
    "JobExpired",
    "JobInterrupted",
    "JobLost",
    "JobProgress",
    "JobResult",
    "JobState",
    "JobTimeout",
    "ManagerTaskError",
    "ManagerUnavailableError",
    "MessageError",
    "NoCapableServerError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "PoolServer",
    "Problem",
    "PromptValidationError",
    "ProtocolError",
    "RateLimitedError",
    "ReconcilePolicy",
    "ReconnectInfo",
    "ReconnectPolicy",
    "RequestTimeoutError",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailableError",
    "StreamLimits",
    "TenantLimits",
    "Timeouts",
    "TransportError",
    "UnknownInputError",
    "UnknownNodeError",
    "UnsafeError",
    "UnsafePathError",
    "UnsafeRedirectError",
    "UnsafeURLError",
    "UnsupportedOperationError",
    "UnsupportedWorkflowError",
    "Workflow",
    "WorkflowError",
    "WorkflowFormatError",
    "batch_prompt_id",
    "new_prompt_id",
]

__version__ = "0.1.0"

# The session pulls in aiohttp, workflows pull in the catalogue: both are imported on first use,
# so that the sans-I/O core (``comfy_async.protocol``, events, models) stays importable without
# any network stack and ``import comfy_async`` stays cheap.
_LAZY = {
    "BatchOutcome": "comfy_async._live.batch",
    "Catalogue": "comfy_async.catalogue",
    "Problem": "comfy_async.workflow",
    "Workflow": "comfy_async.workflow",
    "ComfyClient": "comfy_async.client",
    "ComfyPool": "comfy_async.pool",
    "PoolServer": "comfy_async.pool",
    "ConnectionState": "comfy_async._live.connection",
    "Job": "comfy_async.job",
    "JobProgress": "comfy_async.job",
    "JobResult": "comfy_async.job",
    "JobState": "comfy_async.job",
    "ReconnectInfo": "comfy_async._live.connection",
    "batch_prompt_id": "comfy_async._transport.rest.prompts",
    "new_prompt_id": "comfy_async._transport.rest.prompts",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'comfy_async' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
