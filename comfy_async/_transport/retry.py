"""Whether a failed HTTP request is sent again, and after how long.

The decisions of the request path's one retry loop (``_http``), kept free of I/O so they can be
read and tested on their own:

* :func:`should_retry`: idempotent requests are retried on the policy's statuses and on
  transport errors; any request is retried when the connection could not even be opened
  (nothing was sent); ``POST /prompt`` is never retried here (the prompts namespace reconciles
  it by its client-minted id instead, design invariant 8);
* :func:`parse_retry_after`: the ``Retry-After`` header, in seconds or as an HTTP date;
* :func:`retry_delay`: the server's ``Retry-After`` when it gave one (capped by the policy),
  otherwise the next backoff delay (exponential, with jitter).
"""

from __future__ import annotations

import math
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from comfy_async.errors import ComfyError, ConnectError, HTTPStatusError, TransportError

if TYPE_CHECKING:
    from comfy_async.config import RetryPolicy

__all__ = ["parse_retry_after", "retry_delay", "should_retry"]


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header value, or ``None`` if unusable.

    ``now`` is the current epoch time, used for the HTTP-date form. Negative results (a date in
    the past) become 0; non-finite or unparsable values give ``None``.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # an HTTP date is always GMT; be lenient with missing zones
            return None
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def should_retry(error: ComfyError, *, idempotent: bool, policy: RetryPolicy, attempt: int) -> bool:
    """Whether attempt number ``attempt`` (1-based) that failed with ``error`` is repeated."""
    if attempt > policy.max_retries:
        return False
    if isinstance(error, TransportError):
        if not policy.retry_transport_errors:
            return False
        # A refused connection sent nothing: safe to repeat whatever the method.
        return idempotent or isinstance(error, ConnectError)
    if isinstance(error, HTTPStatusError):
        return idempotent and error.status in policy.retry_statuses
    return False


def retry_delay(retry_after: float | None, backoff_delay: float, policy: RetryPolicy) -> float:
    """The pause before the next attempt: ``Retry-After`` (capped) or the backoff delay."""
    if retry_after is not None:
        return min(retry_after, policy.max_retry_after)
    return backoff_delay
