"""The error tree of comfy_async: every failure the library raises is one of these.

Errors are filled at one boundary (``_http`` for requests, ``_connection`` for the WebSocket,
``job`` for outcomes); nothing from aiohttp, msgspec or the standard library escapes the public
API untranslated. Every error carries data (``status``, ``body``, ``prompt_id``, ``node_id``,
``node_errors``, ``retryable``…) and a readable ``str()`` that never contains a secret: URLs are
shown with their query string and credentials redacted (:func:`redact_url`).

::

    ComfyError
    ├── ConfigurationError                  bad options or arguments given to the library
    ├── ClientClosedError                   the session was closed while in use
    ├── AdmissionRefused                    a tenant's limit refused a submission (retry_after)
    ├── UnsupportedOperationError           the server (or its flavour) has no such route
    │   └── ManagerUnavailableError         no ComfyUI-Manager (v4 API) answers on the server
    ├── TransportError                      the network failed; no HTTP status was received
    │   ├── ConnectError                    could not connect (refused, DNS, TLS)
    │   ├── ConnectionLostError             the connection broke mid-request or mid-stream
    │   └── RequestTimeoutError             connect/read/total timeout (also a TimeoutError)
    ├── HTTPStatusError                     the server answered with an error status
    │   ├── BadRequestError                 400
    │   │   └── PromptValidationError       400 from POST /prompt, with parsed node_errors
    │   ├── AuthenticationError             401 (and, on connect, any refused credential)
    │   │   └── PermissionDeniedError       403
    │   ├── PaymentRequiredError            402 (Comfy Cloud credits)
    │   ├── NotFoundError                   404
    │   ├── ConflictError                   409
    │   ├── PayloadTooLargeError            413
    │   ├── RateLimitedError                429, with retry_after
    │   └── ServerError                     5xx
    │       └── ServiceUnavailableError     503
    ├── JobError                            a job did not succeed; carries prompt_id
    │   ├── ExecutionError                  a node raised (node, exception, traceback, is_oom)
    │   ├── JobInterrupted                  the server interrupted the job
    │   │   └── JobCancelled                this client cancelled the job
    │   ├── JobLost                         the job vanished from queue and history
    │   ├── JobExpired                      it left the queue and its record was pruned
    │   └── JobTimeout                      the caller's deadline passed (also a TimeoutError)
    ├── ManagerTaskError                    a ComfyUI-Manager task failed or vanished
    ├── ProtocolError                       the server sent something the protocol does not allow
    │   ├── FrameError                      a malformed binary WebSocket frame
    │   ├── MessageError                    a malformed text WebSocket message
    │   └── DecodeError                     an HTTP body that does not have the expected shape
    ├── UnsafeError                         refused for safety before anything was done
    │   ├── UnsafePathError                 a server-provided file name that could escape a folder
    │   ├── UnsafeRedirectError             a redirect to a downgraded or non-HTTP location
    │   ├── UnsafeURLError                  a URL to install from that is not http(s)
    │   └── DownloadTooLargeError           a download went over its byte cap or its Content-Length
    └── WorkflowError                       a workflow cannot be edited or converted as asked
        ├── UnknownNodeError
        ├── UnknownInputError
        ├── AmbiguousNodeError
        ├── WorkflowFormatError
        ├── UnsupportedWorkflowError
        └── NoCapableServerError            no server of a pool has the nodes or models it needs
            └── AutoInstallError            ... and installing them (auto_install) did not help
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

if TYPE_CHECKING:
    from collections.abc import Mapping

    from comfy_async.models.prompts import NodeError, PromptErrorInfo

__all__ = [
    "AdmissionRefused",
    "AmbiguousNodeError",
    "AuthenticationError",
    "AutoInstallError",
    "BadRequestError",
    "ClientClosedError",
    "ComfyError",
    "ConfigurationError",
    "ConflictError",
    "ConnectError",
    "ConnectionLostError",
    "DecodeError",
    "DownloadTooLargeError",
    "ExecutionError",
    "FrameError",
    "HTTPStatusError",
    "JobCancelled",
    "JobError",
    "JobExpired",
    "JobInterrupted",
    "JobLost",
    "JobTimeout",
    "ManagerTaskError",
    "ManagerUnavailableError",
    "MessageError",
    "NoCapableServerError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "PromptValidationError",
    "ProtocolError",
    "RateLimitedError",
    "RequestTimeoutError",
    "ServerError",
    "ServiceUnavailableError",
    "TransportError",
    "UnknownInputError",
    "UnknownNodeError",
    "UnsafeError",
    "UnsafePathError",
    "UnsafeRedirectError",
    "UnsafeURLError",
    "UnsupportedOperationError",
    "UnsupportedWorkflowError",
    "WorkflowError",
    "WorkflowFormatError",
    "error_for_status",
    "redact_text",
    "redact_url",
]

_REDACTED = "REDACTED"
# Query parameters whose values are credentials or signatures (Cloud WS token, signed storage
# URLs of /api/view redirects: X-Amz-Signature, Signature, sig, GoogleAccessId, …).
_SECRET_QUERY = re.compile(r"([?&][^=&#\s]*=)([^&#\s]*)")
_BODY_LIMIT = 500


def redact_url(url: object) -> str:
    """Return ``url`` as text with user info and every query value replaced by ``REDACTED``.

    The query string of a ComfyUI URL is where secrets live (the Cloud WebSocket ``token``, the
    signature of a signed storage URL), so every value is hidden, not just known names.
    """
    text = str(url)
    if "?" not in text and "@" not in text and "#" not in text:
        return text  # nothing to hide (the common case: every request builds one)
    try:
        parts = urlsplit(text)
    except ValueError:
        return _SECRET_QUERY.sub(rf"\1{_REDACTED}", text)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{_REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = _SECRET_QUERY.sub(rf"\1{_REDACTED}", "?" + parts.query)[1:] if parts.query else ""
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, ""))


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Return ``text`` with every non-empty string of ``secrets`` replaced by ``REDACTED``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return text


class ComfyError(Exception):
    """The base of every error comfy_async raises."""


class ConfigurationError(ComfyError, ValueError):
    """An option or argument given to the library is invalid (raised before any I/O)."""


class ClientClosedError(ComfyError):
    """The session was closed (or is closing) while an operation needed it."""


class AdmissionRefused(ComfyError):
    """A submission went over a limit of its tenant (or the held total): nothing was queued.

    ``limit`` names it (``max_in_flight``, ``max_held``, ``per_minute``, or ``max_held`` of the
    whole client with ``tenant`` ``None``), ``value`` is its setting; for a rate,
    ``retry_after`` says in how many seconds a submission would be accepted.
    """

    def __init__(
        self, tenant: str | None, limit: str, value: int, retry_after: float | None = None
    ) -> None:
        self.tenant = tenant
        self.limit = limit
        self.value = value
        self.retry_after = retry_after
        who = "the client" if tenant is None and limit == "max_held" else f"tenant {tenant!r}"
        message = f"{who} is at its {limit} limit ({value})"
        if retry_after is not None:
            message += f"; retry in {retry_after:.1f} s"
        super().__init__(message)


class UnsupportedOperationError(ComfyError):
    """The server, or its flavour (local or Comfy Cloud), has no route for this operation."""

    def __init__(self, operation: str, flavour: str, detail: str = "") -> None:
        self.operation = operation
        self.flavour = flavour
        message = f"{operation} is not available on a {flavour} server"
        super().__init__(f"{message}: {detail}" if detail else message)


class ManagerUnavailableError(UnsupportedOperationError):
    """The server has no ComfyUI-Manager speaking the v4 API (``/v2/manager/*``).

    Attributes:
        legacy_version: the version of a legacy (3.x) Manager found instead, if any.

    """

    def __init__(
        self, detail: str, *, flavour: str = "local", legacy_version: str | None = None
    ) -> None:
        self.operation = "ComfyUI-Manager"
        self.flavour = flavour
        self.legacy_version = legacy_version
        # Not the parent's "X is not available on a Y server": the reason is the message.
        ComfyError.__init__(self, f"no ComfyUI-Manager on this server: {detail}")


# --------------------------------------------------------------------------- transport


class TransportError(ComfyError):
    """The network failed before an HTTP status arrived; ``retryable`` says if a retry may help."""

    retryable: bool = True

    def __init__(self, message: str, *, method: str | None = None, url: object = None) -> None:
        self.method = method
        self.url = redact_url(url) if url is not None else None
        where = f" ({method} {self.url})" if method and self.url else ""
        super().__init__(f"{message}{where}")


class ConnectError(TransportError):
    """The connection could not be opened (refused, DNS failure, TLS failure)."""


class ConnectionLostError(TransportError):
    """An open connection broke while a request, a download or the WebSocket was using it."""


class RequestTimeoutError(TransportError, TimeoutError):
    """A connect, read or total timeout passed."""


# --------------------------------------------------------------------------- HTTP status


class HTTPStatusError(ComfyError):
    """The server answered with an error status.

    Attributes:
        status: the HTTP status code.
        method: the request method.
        url: the request URL, redacted.
        body: the response body as text (at most a few hundred characters, secrets redacted).
        retryable: whether repeating an idempotent request may succeed.

    """

    retryable: bool = False

    def __init__(
        self,
        status: int,
        *,
        method: str = "",
        url: object = "",
        body: str = "",
        message: str | None = None,
    ) -> None:
        self.status = status
        self.method = method
        self.url = redact_url(url) if url else ""
        self.body = body[:_BODY_LIMIT]
        summary = message or _summarise_body(self.body)
        text = f"HTTP {status}"
        if method or self.url:
            text += f" from {method} {self.url}".rstrip()
        if summary:
            text += f": {summary}"
        super().__init__(text)


def _summarise_body(body: str) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= 200 else flat[:197] + "..."


class BadRequestError(HTTPStatusError):
    """400: the server rejected the request."""


class AuthenticationError(HTTPStatusError):
    """401, or credentials refused while connecting: the API key or token is missing or wrong.

    A session never reconnects in a loop on this error: it is fatal.
    """


class PermissionDeniedError(AuthenticationError):
    """403: the credentials are valid but not allowed, or the request was refused as cross-site."""


class PaymentRequiredError(HTTPStatusError):
    """402: Comfy Cloud has no credits left for this account."""


class NotFoundError(HTTPStatusError):
    """404: no such route, file, folder or job."""


class ConflictError(HTTPStatusError):
    """409: the target exists and overwriting was not allowed."""


class PayloadTooLargeError(HTTPStatusError):
    """413: the request body is larger than the server accepts (``--max-upload-size``)."""


class RateLimitedError(HTTPStatusError):
    """429: too many requests, or a Cloud queue or tier limit; ``retry_after`` is in seconds."""

    retryable = True

    def __init__(self, status: int, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(status, **kwargs)


class ServerError(HTTPStatusError):
    """5xx: the server failed; idempotent requests are retried by default."""

    retryable = True


class ServiceUnavailableError(ServerError):
    """503: the server or one of its services is unavailable right now."""


class PromptValidationError(BadRequestError):
    """The server refused a prompt (400 from POST /prompt), or offline validation found problems.

    Attributes:
        error: the top-level error (``type``, ``message``, ``details``, ``extra_info``).
        node_errors: per-node errors keyed by node id, each with a list of input errors.

    """

    def __init__(
        self,
        error: PromptErrorInfo,
        node_errors: Mapping[str, NodeError],
        *,
        status: int = 400,
        method: str = "POST",
        url: object = "",
        body: str = "",
    ) -> None:
        self.error = error
        self.node_errors = dict(node_errors)
        super().__init__(
            status, method=method, url=url, body=body, message=self._describe(error, node_errors)
        )

    @property
    def error_type(self) -> str:
        """The server's top-level error type, e.g. ``prompt_outputs_failed_validation``."""
        return self.error.type

    def problems(self) -> list[tuple[str, str, str | None, str]]:
        """Return ``(node_id, error_type, input_name, message)`` for every node error."""
        return [
            (node_id, item.type, item.input_name, item.message)
            for node_id, node_error in self.node_errors.items()
            for item in node_error.errors
        ]

    @staticmethod
    def _describe(error: PromptErrorInfo, node_errors: Mapping[str, NodeError]) -> str:
        head = error.message or error.type
        lines = [head if not error.details else f"{head}: {error.details}"]
        for node_id, node_error in node_errors.items():
            for item in node_error.errors:
                where = f"node {node_id} ({node_error.class_type})"
                if item.input_name:
                    where += f" input {item.input_name!r}"
                lines.append(f"  {where}: {item.type}: {item.details or item.message}")
        return "\n".join(lines)


# One class per status that a caller may want to catch on its own.
_STATUS_CLASSES: dict[int, type[HTTPStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    429: RateLimitedError,
    503: ServiceUnavailableError,
}


def error_for_status(
    status: int,
    *,
    method: str = "",
    url: object = "",
    body: str = "",
    retry_after: float | None = None,
) -> HTTPStatusError:
    """Build the error for an HTTP error ``status``: the one factory behind every status class."""
    cls = _STATUS_CLASSES.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else HTTPStatusError
    if cls is RateLimitedError:
        return RateLimitedError(status, retry_after=retry_after, method=method, url=url, body=body)
    return cls(status, method=method, url=url, body=body)


# --------------------------------------------------------------------------- jobs


class JobError(ComfyError):
    """A job ended without success; ``prompt_id`` names it."""

    def __init__(self, prompt_id: str, message: str) -> None:
        self.prompt_id = prompt_id
        super().__init__(f"job {prompt_id}: {message}")


_OOM_MARKERS = ("OutOfMemoryError", "OOMError", "out of memory", "Allocation on device")


class ExecutionError(JobError):
    """A node raised while the job ran (the server's ``execution_error``).

    Attributes:
        node_id: the id of the failing node.
        node_type: its class type.
        exception_type: the server-side exception type, e.g. ``torch.OutOfMemoryError``.
        exception_message: the exception's message.
        traceback: the server-side traceback lines.
        executed: ids of the nodes that completed before the failure.

    """

    def __init__(
        self,
        prompt_id: str,
        *,
        node_id: str | None,
        node_type: str | None,
        exception_type: str,
        exception_message: str,
        traceback: list[str] | None = None,
        executed: list[str] | None = None,
    ) -> None:
        self.node_id = node_id
        self.node_type = node_type
        self.exception_type = exception_type
        self.exception_message = exception_message
        self.traceback = list(traceback or ())
        self.executed = list(executed or ())
        where = f"node {node_id} ({node_type})" if node_id else "a node"
        message = exception_message.strip().splitlines()[0] if exception_message.strip() else ""
        super().__init__(prompt_id, f"{where} raised {exception_type}: {message}".rstrip(": "))

    @property
    def is_oom(self) -> bool:
        """Whether the failure was the device running out of memory."""
        text = f"{self.exception_type} {self.exception_message}"
        return any(marker in text for marker in _OOM_MARKERS)


class JobInterrupted(JobError):
    """The server interrupted the job (``execution_interrupted``, or jobs status ``cancelled``)."""

    def __init__(
        self, prompt_id: str, message: str = "interrupted", *, node_id: str | None = None
    ) -> None:
        self.node_id = node_id
        super().__init__(prompt_id, message)


class JobCancelled(JobInterrupted):
    """This client cancelled the job (``job.cancel()``, task cancellation, or a deadline)."""

    def __init__(self, prompt_id: str, message: str = "cancelled") -> None:
        super().__init__(prompt_id, message)


class JobLost(JobError):
    """The job vanished: in neither queue nor history on two reads in a row (deleted, restart)."""

    def __init__(self, prompt_id: str, message: str = "lost: in neither queue nor history") -> None:
        super().__init__(prompt_id, message)


class JobExpired(JobError):
    """The job left the queue and the server no longer keeps its record: its outcome is gone.

    ComfyUI keeps a bounded history (10,000 entries by default, oldest evicted) and Comfy Cloud
    expires jobs. When a job is found nowhere and the oldest record the server still keeps was
    queued after it, the job ran (or was removed from the queue) and its record was pruned
    before this client looked: unlike :class:`JobLost`, it did not simply vanish (a restart, a
    deletion). The server cannot say how it ended.

    Attributes:
        outputs: the outputs its ``executed`` events showed before the record was lost (node id
            → UI dict; empty if none was seen). Their files may still be on the server.

    """

    def __init__(
        self,
        prompt_id: str,
        outputs: Mapping[str, Mapping[str, Any]] | None = None,
        message: str = "expired: it left the queue and the server's history no longer holds it",
    ) -> None:
        self.outputs: dict[str, Mapping[str, Any]] = dict(outputs or {})
        super().__init__(prompt_id, message)


class JobTimeout(JobError, TimeoutError):
    """The caller's deadline for a job passed before its outcome arrived."""

    def __init__(self, prompt_id: str, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(prompt_id, f"no outcome within {timeout:g} s")


# --------------------------------------------------------------------------- protocol


class ProtocolError(ComfyError):
    """The server sent something the ComfyUI protocol does not allow."""


class FrameError(ProtocolError):
    """A binary WebSocket frame is truncated or inconsistent."""


class MessageError(ProtocolError):
    """A text WebSocket message is not JSON, nested too deeply, or not a ``{type, data}`` object."""


class DecodeError(ProtocolError):
    """An HTTP response body does not have the shape the route promises."""


class ManagerTaskError(ComfyError):
    """A ComfyUI-Manager task (an install) did not succeed, or vanished from its queue.

    Attributes:
        task_id: the task's ``ui_id``.
        kind: what the task did (``install``, ``install-model``…).
        status: the Manager's outcome (``error``, ``failed``…; ``lost`` when it vanished).
        messages: the Manager's messages about it.

    """

    def __init__(
        self, task_id: str, kind: str, status: str, messages: tuple[str, ...] = ()
    ) -> None:
        self.task_id = task_id
        self.kind = kind
        self.status = status
        self.messages = messages
        detail = "; ".join(_summarise_body(message) for message in messages if message)
        text = f"ComfyUI-Manager task {task_id} ({kind}): {status}"
        super().__init__(f"{text}: {detail}" if detail else text)


# --------------------------------------------------------------------------- safety


class UnsafeError(ComfyError):
    """Refused for safety before anything was written or sent."""


class UnsafePathError(UnsafeError, ValueError):
    """A server-provided file name or subfolder could write outside the target folder."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"unsafe file name {name!r}: {reason}")


class UnsafeRedirectError(UnsafeError):
    """A redirect pointed at a non-HTTP scheme, or downgraded https to http."""

    def __init__(self, location: str, reason: str) -> None:
        self.location = redact_url(location)
        self.reason = reason
        super().__init__(f"refused redirect to {self.location}: {reason}")


class UnsafeURLError(UnsafeError, ValueError):
    """A URL to install from is not an absolute ``http://`` or ``https://`` URL with a host."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = redact_url(url)
        self.reason = reason
        super().__init__(f"refused URL {self.url}: {reason}")


class DownloadTooLargeError(UnsafeError):
    """A download went over its byte cap, or disagreed with its ``Content-Length``."""

    def __init__(self, received: int, limit: int, reason: str = "over the byte cap") -> None:
        self.received = received
        self.limit = limit
        super().__init__(f"download stopped after {received} bytes: {reason} ({limit})")


# --------------------------------------------------------------------------- workflows


class WorkflowError(ComfyError):
    """A workflow cannot be loaded, edited or converted as asked."""


class UnknownNodeError(WorkflowError, KeyError):
    """No node has this id, title or class type."""

    def __init__(self, reference: str, detail: str = "") -> None:
        self.reference = reference
        message = f"no node {reference!r} in the workflow"
        super().__init__(f"{message}: {detail}" if detail else message)

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class UnknownInputError(WorkflowError, KeyError):
    """The node has no such input (or the catalogue does not list it)."""

    def __init__(self, node_id: str, input_name: str, detail: str = "") -> None:
        self.node_id = node_id
        self.input_name = input_name
        message = f"node {node_id} has no input {input_name!r}"
        super().__init__(f"{message}: {detail}" if detail else message)

    def __str__(self) -> str:
        return str(self.args[0])


class AmbiguousNodeError(WorkflowError):
    """A title or class type matches more than one node; address the node by id."""

    def __init__(self, reference: str, node_ids: list[str]) -> None:
        self.reference = reference
        self.node_ids = node_ids
        super().__init__(
            f"{reference!r} matches {len(node_ids)} nodes ({', '.join(node_ids)}); use a node id"
        )


class WorkflowFormatError(WorkflowError, ValueError):
    """The data is not an API-format workflow (e.g. a UI-format export, or not a graph at all)."""


class UnsupportedWorkflowError(WorkflowError):
    """A UI-format workflow uses a feature the converter cannot translate faithfully."""


class NoCapableServerError(WorkflowError):
    """No server of a pool can run the workflow: each lacks a node class or a model it needs.

    ``missing`` maps each server to what it lacks (``"node AcmeSharpen"``,
    ``"model checkpoints/sdxl.safetensors"``, ``"tag gpu-80g"``).
    """

    def __init__(self, missing: Mapping[str, list[str]]) -> None:
        self.missing = dict(missing)
        where = "; ".join(f"{server} lacks {', '.join(what)}" for server, what in missing.items())
        super().__init__(f"no server of the pool can run this workflow: {where}")


class AutoInstallError(NoCapableServerError):
    """No server of a pool can run the workflow, and installing what it lacks did not help.

    Raised on a held job (or at submit) when every server that a pool's
    :class:`~comfy_async.config.AutoInstall` could have equipped has been tried: the install
    failed there, its Manager is missing, or what it lacks is not in the policy.

    Attributes:
        missing: each server → what it lacks (as in :class:`NoCapableServerError`).
        failures: each server → why it could not be equipped (the install that failed, with the
            Manager's own words, or the missing Manager).

    """

    def __init__(self, missing: Mapping[str, list[str]], failures: Mapping[str, str]) -> None:
        super().__init__(missing)
        self.failures = dict(failures)
        why = "; ".join(f"{server}: {reason}" for server, reason in failures.items())
        self.args = (f"{self.args[0]}; installing did not help ({why})",)
