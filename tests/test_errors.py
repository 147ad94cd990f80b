"""The error tree: one factory for statuses, typed data, readable and secret-free strings."""

from __future__ import annotations

import pytest

from comfy_async import errors
from comfy_async.errors import (
    AuthenticationError,
    BadRequestError,
    ComfyError,
    ConflictError,
    ExecutionError,
    HTTPStatusError,
    JobCancelled,
    JobInterrupted,
    JobLost,
    JobTimeout,
    NotFoundError,
    PayloadTooLargeError,
    PaymentRequiredError,
    PermissionDeniedError,
    PromptValidationError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    ServiceUnavailableError,
    UnsafePathError,
    UnsafeRedirectError,
    error_for_status,
    redact_text,
    redact_url,
)
from comfy_async.models.prompts import PromptRejection
from tests.recordings import exchanges

SECRET = "sk-live-0123456789abcdef"


def test_every_public_error_is_a_comfy_error() -> None:
    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type):
            assert issubclass(value, ComfyError), name


def test_the_tree_in_the_docstring_names_every_error_class() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        if isinstance(getattr(errors, name), type):
            assert name in doc, f"{name} missing from the drawn tree"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (402, PaymentRequiredError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (413, PayloadTooLargeError),
        (429, RateLimitedError),
        (500, ServerError),
        (502, ServerError),
        (503, ServiceUnavailableError),
        (418, HTTPStatusError),
    ],
)
def test_error_for_status(status: int, cls: type[HTTPStatusError]) -> None:
    error = error_for_status(status, method="GET", url="http://127.0.0.1:8188/api/queue", body="x")
    assert type(error) is cls
    assert error.status == status
    assert str(error).startswith(f"HTTP {status} from GET http://127.0.0.1:8188/api/queue")


def test_retryable_flags() -> None:
    assert error_for_status(503).retryable
    assert error_for_status(500).retryable
    assert error_for_status(429).retryable
    assert not error_for_status(400).retryable
    assert not error_for_status(404).retryable
    assert isinstance(error_for_status(403), AuthenticationError)


def test_rate_limited_keeps_retry_after() -> None:
    error = error_for_status(429, retry_after=2.5)
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 2.5


def test_timeouts_are_builtin_timeouts_too() -> None:
    assert issubclass(RequestTimeoutError, TimeoutError)
    assert issubclass(JobTimeout, TimeoutError)
    assert str(JobTimeout("p", 1.5)) == "job p: no outcome within 1.5 s"


def test_redact_url_hides_query_values_and_user_info() -> None:
    url = f"wss://user:{SECRET}@cloud.comfy.org/ws?clientId=abc&token={SECRET}"
    redacted = redact_url(url)
    assert SECRET not in redacted
    assert redacted == "wss://REDACTED@cloud.comfy.org/ws?clientId=REDACTED&token=REDACTED"
    signed = redact_url(f"https://storage.example/o/x.png?X-Amz-Signature={SECRET}&X-Amz-Date=1")
    assert SECRET not in signed
    assert signed.startswith("https://storage.example/o/x.png?")
    assert redact_url("http://127.0.0.1:8188/api/queue") == "http://127.0.0.1:8188/api/queue"
    assert SECRET not in redact_url(f"not a url ?token={SECRET}")


def test_redact_text() -> None:
    assert (
        redact_text(f"key {SECRET} twice {SECRET}", (SECRET, "")) == "key REDACTED twice REDACTED"
    )


def test_http_error_never_shows_the_query_string() -> None:
    error = error_for_status(401, method="GET", url=f"https://cloud.comfy.org/ws?token={SECRET}")
    assert SECRET not in str(error)
    assert SECRET not in repr(error)


def test_http_error_body_is_bounded_and_summarised() -> None:
    error = error_for_status(500, body="x" * 10_000)
    assert len(error.body) == 500
    assert len(str(error)) < 300


def recorded_rejections() -> list[dict[str, object]]:
    return [
        exchange.json
        for exchange in exchanges()
        if exchange.file == "03_validation_errors.json" and exchange.status == 400
    ]


@pytest.mark.parametrize("body", recorded_rejections())
def test_prompt_validation_error_from_recorded_bodies(body: dict[str, object]) -> None:
    import msgspec

    rejection = msgspec.convert(body, PromptRejection)
    error = PromptValidationError(rejection.error, rejection.node_errors)
    assert isinstance(error, BadRequestError)
    assert error.status == 400
    assert error.error_type == rejection.error.type
    text = str(error)
    for node_id, _type, input_name, _message in error.problems():
        assert f"node {node_id}" in text
        if input_name:
            assert repr(input_name) in text


def test_prompt_validation_error_lists_problems() -> None:
    import msgspec

    body = next(b for b in recorded_rejections() if "value_smaller_than_min" in str(b))
    rejection = msgspec.convert(body, PromptRejection)
    error = PromptValidationError(rejection.error, rejection.node_errors)
    assert error.problems() == [
        ("1", "value_smaller_than_min", "width", "Value 0 smaller than min of 1")
    ]
    assert "node 1 (EmptyImage) input 'width': value_smaller_than_min: width" in str(error)


def test_execution_error_data_and_oom() -> None:
    error = ExecutionError(
        "p",
        node_id="4",
        node_type="KSampler",
        exception_type="torch.OutOfMemoryError",
        exception_message="CUDA out of memory.\nTried to allocate",
        traceback=["line"],
    )
    assert error.is_oom
    assert error.prompt_id == "p"
    assert error.traceback == ["line"]
    assert (
        str(error) == "job p: node 4 (KSampler) raised torch.OutOfMemoryError: CUDA out of memory."
    )
    plain = ExecutionError(
        "p", node_id=None, node_type=None, exception_type="ValueError", exception_message=""
    )
    assert not plain.is_oom
    assert str(plain) == "job p: a node raised ValueError"


def test_job_outcome_hierarchy() -> None:
    assert issubclass(JobCancelled, JobInterrupted)
    assert str(JobLost("p")) == "job p: lost: in neither queue nor history"
    assert JobInterrupted("p", node_id="3").node_id == "3"


def test_unsafe_errors_redact() -> None:
    redirect = UnsafeRedirectError(f"http://x/y?sig={SECRET}", "downgrade")
    assert SECRET not in str(redirect)
    path = UnsafePathError("../etc/passwd", "parent directory")
    assert isinstance(path, ValueError)
    assert path.reason == "parent directory"
