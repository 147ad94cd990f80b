"""How a pool reads one submission attempt to a Comfy API v2 server (pure: no server)."""

from __future__ import annotations

import pytest

from comfy_async._pool.v2_server import Attempt, attempt_outcome, learns_from
from comfy_async.errors import (
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ComfyError,
    ConflictError,
    ConnectError,
    ConnectionLostError,
    DecodeError,
    PaymentRequiredError,
    PromptValidationError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    ServiceUnavailableError,
)
from comfy_async.models.prompts import PromptErrorInfo


def refusal(code: str) -> PromptValidationError:
    return PromptValidationError(PromptErrorInfo(type=code, message="no"), {}, status=422)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (ConflictError(409, message="the Idempotency-Key k was used before"), Attempt.CLAIMED),
        (refusal("invalid_workflow"), Attempt.REFUSED),
        (BadRequestError(422), Attempt.REFUSED),
        (RateLimitedError(429, retry_after=2.0), Attempt.BUSY),
        (ServiceUnavailableError(503), Attempt.BUSY),
        (ConnectError("refused"), Attempt.NOT_SENT),
        (ClientClosedError("closed"), Attempt.NOT_SENT),
        (AuthenticationError(401), Attempt.NOT_SENT),
        (PaymentRequiredError(402), Attempt.NOT_SENT),
        (ConnectionLostError("cut"), Attempt.UNKNOWN),
        (RequestTimeoutError("slow"), Attempt.UNKNOWN),
        (ServerError(500), Attempt.UNKNOWN),
        (ServerError(504), Attempt.UNKNOWN),
        (DecodeError("not a job"), Attempt.UNKNOWN),
    ],
)
def test_each_attempt_says_what_it_knows_of_the_job(error: ComfyError, outcome: Attempt) -> None:
    assert attempt_outcome(error) is outcome


def test_only_an_invalid_workflow_teaches_what_a_server_cannot_run() -> None:
    assert learns_from(refusal("invalid_workflow"))
    assert not learns_from(refusal("missing_asset"))  # assets are per server, not capability
    assert not learns_from(refusal("workflow_format_ui"))
    assert not learns_from(BadRequestError(422))
