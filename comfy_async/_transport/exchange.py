"""What crosses the request path's boundary, free of any HTTP library.

The values the REST namespaces hand to ``_http`` and get back from it: a :class:`FilePart` of an
upload form, a :class:`Response` read in full, a :class:`Download` streamed chunk by chunk with
its byte cap, plus the pure rules the request path applies (JSON encoding of request bodies,
query values, and the vetting of redirect locations). Keeping them here keeps ``_http`` about
sending requests; nothing in this module does I/O or imports aiohttp.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import orjson
from yarl import URL

from comfy_async.errors import (
    ConfigurationError,
    DownloadTooLargeError,
    UnsafeRedirectError,
    redact_url,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

__all__ = [
    "Download",
    "FilePart",
    "QueryValue",
    "Response",
    "encode_json",
    "encode_query",
    "redirect_target",
]

QueryValue: TypeAlias = str | int | float | bool | None
"""A query parameter value: ``None`` leaves the parameter out, booleans become true/false."""


@dataclass(frozen=True, slots=True)
class FilePart:
    """A file field of a multipart form (an upload)."""

    filename: str
    data: bytes
    content_type: str = "application/octet-stream"


class Response:
    """A response read in full: status, headers and body bytes; ``url`` is redacted.

    The redacted form of the URL is made when ``url`` is read, not for every response.
    """

    __slots__ = ("_url", "body", "headers", "method", "status")

    def __init__(
        self, status: int, headers: Mapping[str, str], body: bytes, method: str, url: URL
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.method = method
        self._url = url

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.method} {self.url}>"

    @property
    def url(self) -> str:
        """The URL that answered, without its query string, fragment or user info."""
        return redact_url(self._url)

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300


class Download:
    """A response body being streamed: iterate it for chunks; the byte cap is enforced here.

    ``content_length`` is the server's ``Content-Length`` (``None`` if absent; with a
    ``Content-Encoding`` it counts compressed bytes); ``content_type`` is read from the
    ``Content-Type`` header (``None`` if absent) when asked. Going over ``max_bytes`` raises
    :class:`~comfy_async.errors.DownloadTooLargeError`; so does a body that ends short of its
    ``Content-Length``. Iterate it once.
    """

    def __init__(
        self,
        read: Callable[[], Awaitable[bytes]],
        *,
        max_bytes: int | None,
        content_length: int | None,
        content_type: str | None,
        encoded: bool,
    ) -> None:
        self._read = read
        self._max_bytes = max_bytes
        self._encoded = encoded
        self._content_type = content_type
        self.content_length = content_length
        self.received = 0
        """Bytes received so far (after decompression)."""

    @property
    def content_type(self) -> str:
        """The body's media type, lower case and without parameters (``image/png``).

        ``application/octet-stream`` when the server sent none, ``text/plain`` for a value that
        is no ``type/subtype`` (RFC 2045 §5.2).
        """
        raw = self._content_type
        if raw is None:
            return "application/octet-stream"
        kind = raw.partition(";")[0].strip().lower()
        main, slash, sub = kind.partition("/")
        return kind if slash and main and sub and "/" not in sub else "text/plain"

    def check_length(self) -> None:
        """Refuse before reading when ``Content-Length`` already exceeds the cap."""
        length, limit = self.content_length, self._max_bytes
        if limit is not None and length is not None and length > limit:
            raise DownloadTooLargeError(length, limit, "Content-Length is over the cap")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        limit = self._max_bytes
        while chunk := await self._read():
            self.received += len(chunk)
            if limit is not None and self.received > limit:
                raise DownloadTooLargeError(self.received, limit)
            yield chunk
        length = self.content_length
        if not self._encoded and length is not None and self.received != length:
            raise DownloadTooLargeError(self.received, length, "the body ends short of its length")


def encode_json(value: object) -> bytes:
    """Encode a request body with orjson (integer dict keys become strings).

    Raises:
        ConfigurationError: the value is not JSON-serialisable.

    """
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:  # orjson.JSONEncodeError
        raise ConfigurationError(f"the request body is not JSON-serialisable: {exc}") from None


def encode_query(query: Mapping[str, QueryValue]) -> dict[str, str | int | float]:
    """Drop ``None`` values and spell booleans the way ComfyUI reads them."""
    return {
        key: ("true" if value else "false") if isinstance(value, bool) else value
        for key, value in query.items()
        if value is not None
    }


def redirect_target(current: URL, location: str) -> URL:
    """Resolve and vet a ``Location``: http(s) only, never from https down to http.

    Raises:
        UnsafeRedirectError: any other scheme, a downgrade, or an unparsable location.

    """
    try:
        target = current.join(URL(location))
    except ValueError:
        raise UnsafeRedirectError(location, "not a valid URL") from None
    if target.scheme not in ("http", "https") or not target.host:
        raise UnsafeRedirectError(str(target), "only http and https locations are followed")
    if current.scheme == "https" and target.scheme == "http":
        raise UnsafeRedirectError(str(target), "a redirect from https to http is a downgrade")
    return target
