"""HTTP for the Comfy API v2 backend: Bearer-authenticated requests, links, retries, typed errors.

:class:`V2Http` resolves links (absolute as given, host-relative against the origin that gave
them), retries what may succeed when repeated (transport errors, 429 with ``Retry-After``, 5xx)
and turns error answers into the library's :class:`~comfy_async.errors.HTTPStatusError`
subclasses, with the v2 error code in the message.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

import aiohttp
import msgspec
import orjson
from yarl import URL

from comfy_async.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ConnectError,
    ConnectionLostError,
    DecodeError,
    HTTPStatusError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    ServiceUnavailableError,
)
from comfy_async.models.api_v2 import (
    V2Job,
    decode_v2_error,
    decode_v2_job,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from comfy_async.config import ClientOptions

__all__ = ["V2Http", "status_error"]

_STATUS_ERRORS: Final[dict[int, type[HTTPStatusError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BadRequestError,
    503: ServiceUnavailableError,
}
_RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})


def status_error(
    status: int, method: str, url: URL, body: bytes, retry_after: str = ""
) -> HTTPStatusError:
    envelope = decode_v2_error(body)
    message = None
    if envelope is not None:
        message = f"{envelope.error.code}: {envelope.error.message}"
    text = body.decode("utf-8", "replace")
    if status == 429:
        after = float(retry_after) if retry_after.isdigit() else None
        return RateLimitedError(
            status, retry_after=after, method=method, url=url, body=text, message=message
        )
    cls = _STATUS_ERRORS.get(status, ServerError if status >= 500 else HTTPStatusError)
    return cls(status, method=method, url=url, body=text, message=message)


class V2Http:
    """Bearer-authenticated requests to one v2 origin, links resolved against it."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: URL, token: str, options: ClientOptions
    ) -> None:
        self.session = session
        self.base_url = base_url
        self.options = options
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def link(self, reference: str, origin: URL | None = None) -> URL:
        """Resolve a link: absolute as is, host-relative against the origin that gave it."""
        url = URL(reference)
        if url.is_absolute():
            return url
        return (origin or self.base_url).origin().join(url)

    async def send(
        self,
        method: str,
        url: URL,
        *,
        body: object = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = True,
        retry_statuses: frozenset[int] = _RETRY_STATUSES,
    ) -> bytes:
        """Send and return the body of a 2xx answer; retry what may succeed when repeated."""
        policy = self.options.retry
        delays = policy.backoff.delays()
        attempt = 0
        while True:
            try:
                return await self._once(method, url, body, headers)
            except (HTTPStatusError, ConnectError, ConnectionLostError, RequestTimeoutError) as e:
                status = e.status if isinstance(e, HTTPStatusError) else None
                retryable = status is None or status in retry_statuses
                if not retry or not retryable or attempt >= policy.max_retries:
                    raise
                delay = next(delays)
                after = e.retry_after if isinstance(e, RateLimitedError) else None
                if after is not None and after > delay:
                    delay = min(after, policy.max_retry_after)
                attempt += 1
                await asyncio.sleep(delay)

    async def _once(
        self, method: str, url: URL, body: object, headers: Mapping[str, str] | None
    ) -> bytes:
        sent = {**self.headers, **(headers or {})}
        data = None
        if body is not None:
            data = orjson.dumps(body)
            sent["Content-Type"] = "application/json"
        try:
            async with self.session.request(method, url, data=data, headers=sent) as response:
                raw = await response.read()
                if response.status >= 400:
                    after = response.headers.get("Retry-After", "")
                    raise status_error(response.status, method, url, raw, after)
                return raw
        except aiohttp.ClientConnectorError as e:
            raise ConnectError(f"cannot connect: {e.os_error}", method=method, url=url) from None
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError) as e:
            raise ConnectionLostError(f"connection lost: {e}", method=method, url=url) from None
        except aiohttp.ClientError as e:
            raise ConnectionLostError(f"request failed: {e}", method=method, url=url) from None
        except TimeoutError:
            raise RequestTimeoutError("timed out", method=method, url=url) from None

    async def job(self, url: URL) -> V2Job:
        """Read a job object (the truth)."""
        raw = await self.send("GET", url)
        try:
            return decode_v2_job(raw)
        except msgspec.DecodeError as e:
            raise DecodeError(f"the job at {url} is not a v2 job: {e}") from None
