"""comfy_async: an asyncio client for ComfyUI and Comfy Cloud.

One session, one WebSocket, any number of jobs; each job an async iterator of typed events that
ends in exactly one outcome; a complete, typed REST surface. See the README for a tour.
"""

from __future__ import annotations

from comfy_async.catalogue import Catalogue
from comfy_async.config import (
    USE_CLIENT_DEFAULT,
    Backoff,
    ClientOptions,
    HeartbeatPolicy,
    ReconcilePolicy,
    ReconnectPolicy,
    RetryPolicy,
    StreamLimits,
    Timeouts,
)
from comfy_async.errors import (
    AuthenticationError,
    ComfyError,
    ExecutionError,
    HTTPStatusError,
    JobCancelled,
    JobError,
    JobInterrupted,
    JobLost,
    JobTimeout,
    PromptValidationError,
    ProtocolError,
    TransportError,
)
from comfy_async.workflow import Problem, Workflow

__all__ = [
    "USE_CLIENT_DEFAULT",
    "AuthenticationError",
    "Backoff",
    "Catalogue",
    "ClientOptions",
    "ComfyError",
    "ExecutionError",
    "HTTPStatusError",
    "HeartbeatPolicy",
    "JobCancelled",
    "JobError",
    "JobInterrupted",
    "JobLost",
    "JobTimeout",
    "Problem",
    "PromptValidationError",
    "ProtocolError",
    "ReconcilePolicy",
    "ReconnectPolicy",
    "RetryPolicy",
    "StreamLimits",
    "Timeouts",
    "TransportError",
    "Workflow",
]

__version__ = "0.1.0"
