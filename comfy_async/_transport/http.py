"""The single request path: every HTTP request of a session goes through :class:`HttpClient`.

It builds the URL (base URL with an optional path prefix, a route compiled from the table),
attaches credentials only for the configured origin (``_auth``), sends with the session's
timeouts, follows redirects by hand (a redirect to another origin is fetched with a separate,
credential-free session; ``https`` → ``http`` and non-HTTP locations are refused), retries
per the policy (``_retry``), and turns every aiohttp, OS and timeout failure and every error
status into the library's error tree **here and only here**, with secrets redacted. Nothing is
raised while an aiohttp exception is being handled, so no foreign exception (whose text may hold
a signed URL) hangs on the ``__context__`` chain of an error we raise.

This module and ``_connection`` are the only ones that import aiohttp (design §2). Namespaces
call :meth:`HttpClient.request`, :meth:`HttpClient.fetch` and :meth:`HttpClient.stream`; the
values they exchange live in ``_exchange``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeAlias, TypeVar

import aiohttp
import msgspec
from yarl import URL

from comfy_async._transport.auth import Credentials
from comfy_async._transport.exchange import (
    Download,
    FilePart,
    QueryValue,
    Response,
    encode_json,
    encode_query,
    redirect_target,
)
from comfy_async._transport.retry import parse_retry_after, retry_delay, should_retry
from comfy_async._transport.routes import AuthStyle
from comfy_async.config import (
    USE_CLIENT_DEFAULT,
    ClientOptions,
    RetryPolicy,
    Timeouts,
    UseClientDefault,
)
from comfy_async.errors import (
    ClientClosedError,
    ComfyError,
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    DecodeError,
    HTTPStatusError,
    RequestTimeoutError,
    TransportError,
    UnsafeRedirectError,
    error_for_status,
    redact_text,
    redact_url,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Mapping

    from comfy_async._transport.routes import CompiledRoute, RouteTable

__all__ = ["NO_BODY", "HttpClient"]

logger = logging.getLogger("comfy_async.http")
T = TypeVar("T")

NO_BODY: Final = object()
"""``json=`` default of :meth:`HttpClient.request`: send no body (``None`` sends ``null``)."""
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS: Final = 5
_ERROR_BODY_LIMIT: Final = 64 * 1024
_SAFE_METHODS: Final = frozenset({"GET", "HEAD"})
_QUERY_VALUES: Final = re.compile(r"([?&][^=&#\s]*=)([^&#\s]*)")
_NEVER: Final = RetryPolicy.never()
_URL_CACHE: Final = 256
_TIMEOUTS: dict[Timeouts, aiohttp.ClientTimeout] = {}
_NO_LIMITS: Final = aiohttp.ClientTimeout()


def _client_timeout(timeouts: Timeouts) -> aiohttp.ClientTimeout:
    """The ``aiohttp.ClientTimeout`` for ``timeouts`` (made once per distinct value)."""
    limits = _TIMEOUTS.get(timeouts)
    if limits is None:
        if len(_TIMEOUTS) > 64:
            _TIMEOUTS.clear()
        limits = _TIMEOUTS[timeouts] = aiohttp.ClientTimeout(
            total=timeouts.total, sock_connect=timeouts.connect, sock_read=timeouts.read
        )
    return limits


@dataclass(slots=True)
class _Request:
    """One request as the retry loop replays it (a form is rebuilt for every send)."""

    route: CompiledRoute
    url: URL
    json: object = NO_BODY
    data: bytes | None = None
    form: Mapping[str, str | FilePart] | None = None
    headers: Mapping[str, str] | None = None

    def body(self) -> tuple[object, dict[str, str]]:
        if self.form is not None:
            form = aiohttp.FormData()
            for name, value in self.form.items():
                if isinstance(value, FilePart):
                    form.add_field(
                        name, value.data, filename=value.filename, content_type=value.content_type
                    )
                else:
                    form.add_field(name, value)
            return form, {}
        if self.json is not NO_BODY:
            return encode_json(self.json), {"Content-Type": "application/json"}
        return self.data, {}


_Outcome: TypeAlias = (
    "ComfyError | aiohttp.ClientResponse | tuple[aiohttp.ClientResponse, bytes | None]"
)
"""A first send's outcome: its failure, its response read in full, or a redirect to follow."""


def transport_error(
    exc: BaseException, method: str, url: URL, secrets: tuple[str, ...], *, reading: bool
) -> ComfyError:
    """Translate one aiohttp/OS/timeout exception (the one seam where that happens).

    The exception's text is kept for diagnosis, with every secret, the full URL and its query
    string redacted (a signed storage URL is a credential).
    """
    hidden = (*secrets, str(url), url.query_string)
    try:
        text = f"{type(exc).__name__}: {exc}"
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the failure itself
        text = type(exc).__name__
    # Query values anywhere in the text are hidden too: a library may print the URL differently
    # (another parameter order, another encoding) than the form we know.
    detail = _QUERY_VALUES.sub(
        r"\1REDACTED", redact_text(text, tuple(item for item in hidden if item))
    )
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts are TimeoutErrors too
        return RequestTimeoutError(f"timed out ({detail})", method=method, url=url)
    if isinstance(exc, ValueError):  # aiohttp.InvalidURL, a header it refuses…
        return ConfigurationError(f"invalid request to {redact_url(url)}: {detail}")
    if isinstance(exc, aiohttp.ClientConnectorError) and not reading:
        return ConnectError(f"cannot connect ({detail})", method=method, url=url)
    return ConnectionLostError(f"connection lost ({detail})", method=method, url=url)


class HttpClient:
    """One session's HTTP side: base URL, routes, credentials, retries, the aiohttp session.

    ``session`` may be a borrowed :class:`aiohttp.ClientSession` (never closed here); otherwise
    one is created on first use and closed by :meth:`aclose`. ``sleep`` is injectable so tests can
    observe retry pauses without waiting.
    """

    def __init__(
        self,
        base_url: str | URL,
        *,
        routes: RouteTable,
        options: ClientOptions | None = None,
        session: aiohttp.ClientSession | None = None,
        api_key: str | None = None,
        bearer_token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        user: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        url = URL(str(base_url))
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigurationError(
                f"the base URL must be http(s)://host[:port][/prefix], got {redact_url(url)}"
            )
        if url.query_string or url.fragment:
            raise ConfigurationError("the base URL cannot have a query string or a fragment")
        if url.user is not None or url.password is not None:
            if basic_auth is not None:
                raise ConfigurationError("basic auth is given twice (in the URL and basic_auth=)")
            basic_auth = (url.user or "", url.password or "")
        self.routes = routes
        self.options = options or ClientOptions()
        self.origin = url.origin()
        self.prefix = url.raw_path.rstrip("/")
        self.base_url = URL(f"{self.origin}{self.prefix}/", encoded=True)
        self.credentials = Credentials(
            self.origin,
            api_key=api_key,
            bearer_token=bearer_token,
            basic_auth=basic_auth,
            headers=headers,
            user=user,
        )
        self._borrowed = session
        self._session = session
        self._anonymous: aiohttp.ClientSession | None = None
        self._sleep = sleep
        self._closed = False
        self._urls: dict[str, URL] = {}
        self._last_limits: tuple[Timeouts | None, aiohttp.ClientTimeout] = (None, _NO_LIMITS)
        self._last_stream_limits: tuple[Timeouts | None, aiohttp.ClientTimeout] = (
            None,
            _NO_LIMITS,
        )
        self._headers_of: ClientOptions | None = None
        self._plain_headers: Mapping[str, str] = {}
        self._json_headers: Mapping[str, str] = {}

    def __repr__(self) -> str:
        return f"<HttpClient {self.routes.flavour} {redact_url(self.base_url)}>"

    # ------------------------------------------------------------------ session side

    @property
    def flavour(self) -> str:
        """``"local"`` or ``"cloud"``."""
        return self.routes.flavour

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret of the session (for redacting text that may contain one)."""
        return self.credentials.secrets

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session (borrowed, or created on first use inside the running loop)."""
        if self._closed:
            raise ClientClosedError("the session is closed")
        if self._session is None:
            # No cookie jar: ComfyUI sets no cookies, and nothing should follow requests around.
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    def _anonymous_session(self) -> aiohttp.ClientSession:
        """The credential-free session for other origins (signed storage URLs): no cookies."""
        if self._closed:
            raise ClientClosedError("the session is closed")
        if self._anonymous is None:
            self._anonymous = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return self._anonymous

    def url(self, route: CompiledRoute, query: Mapping[str, QueryValue] | None = None) -> URL:
        """The absolute URL of a compiled route (base URL prefix included)."""
        url = self._urls.get(route.path)
        if url is None:
            if len(self._urls) >= _URL_CACHE:
                self._urls.clear()  # paths with ids in them: keep the cache bounded
            url = self._urls[route.path] = URL(
                f"{self.origin}{self.prefix}{route.path}", encoded=True
            )
        return url.with_query(encode_query(query)) if query else url

    def ws_url(self, client_id: str) -> URL:
        """The WebSocket URL: ``ws[s]://host[/prefix]/ws?clientId=…`` (Cloud adds ``&token=``).

        The result holds the Cloud key: show it only through ``redact_url``.
        """
        scheme = "wss" if self.origin.scheme == "https" else "ws"
        url = URL(f"{self.origin}{self.prefix}{self.routes.ws_path}", encoded=True)
        query = {"clientId": client_id}
        if self.routes.auth is AuthStyle.API_KEY and self.credentials.api_key:
            query["token"] = self.credentials.api_key
        return url.with_scheme(scheme).with_query(query)

    def ws_headers(self) -> dict[str, str]:
        """Headers for the WebSocket handshake (proxy credentials, user, agent; never Origin)."""
        return {"User-Agent": self.options.user_agent, **self.credentials.ws_headers()}

    async def pause(self, seconds: float) -> None:
        """Wait between attempts (the injected ``sleep``). Cancelling ends the wait."""
        await self._sleep(seconds)

    async def aclose(self) -> None:
        """Close the sessions this client created (a borrowed one stays open). Idempotent.

        Requests still in flight on an owned session fail; cancelling the close leaves the
        client marked closed.
        """
        self._closed = True
        anonymous, self._anonymous = self._anonymous, None
        if anonymous is not None:
            await anonymous.close()
        session, self._session = self._session, None
        if session is not None and session is not self._borrowed:
            await session.close()

    def _limits(self, timeouts: Timeouts | UseClientDefault) -> aiohttp.ClientTimeout:
        """The aiohttp limits of one request (those of the session's options kept at hand)."""
        chosen = self.options.timeouts if isinstance(timeouts, UseClientDefault) else timeouts
        known, limits = self._last_limits
        if chosen is not known:
            limits = _client_timeout(chosen)
            self._last_limits = (chosen, limits)
        return limits

    def _stream_limits(self, timeouts: Timeouts | UseClientDefault) -> aiohttp.ClientTimeout:
        """The aiohttp limits of a streamed body: ``connect`` and ``read`` only, never a total."""
        chosen = self.options.timeouts if isinstance(timeouts, UseClientDefault) else timeouts
        known, limits = self._last_stream_limits
        if chosen is not known:
            limits = _client_timeout(Timeouts(connect=chosen.connect, read=chosen.read, total=None))
            self._last_stream_limits = (chosen, limits)
        return limits

    def _home_headers(self, *, json: bool) -> Mapping[str, str]:
        """The headers of a request to the configured origin: agent, credentials, JSON type.

        Made once per options (never mutated: aiohttp copies what it is given). The order of
        precedence is that of :meth:`_exchange`: the content type, then the credentials.
        """
        options = self.options
        if self._headers_of is not options:
            plain = {"User-Agent": options.user_agent, **self.credentials.headers_for(self.origin)}
            typed = {"User-Agent": options.user_agent, "Content-Type": "application/json"}
            typed.update(self.credentials.headers_for(self.origin))
            self._plain_headers, self._json_headers = plain, typed
            self._headers_of = options
        return self._json_headers if json else self._plain_headers

    # ------------------------------------------------------------------ requests

    async def request(
        self,
        route: CompiledRoute,
        *,
        query: Mapping[str, QueryValue] | None = None,
        json: object = NO_BODY,
        data: bytes | None = None,
        form: Mapping[str, str | FilePart] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool | None = None,
        allow: Collection[int] = (),
        timeouts: Timeouts | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> Response:
        """Send ``route`` and read the whole response.

        ``retry`` overrides the route's idempotency (``False``: one attempt, whatever failed).
        Statuses in ``allow`` are returned instead of raised. Cancelling abandons the request
        (the server may or may not have received it).

        Raises:
            HTTPStatusError: an error status not in ``allow`` (the subclass for the status).
            TransportError: the network failed (after the retries the policy allows).
            UnsafeRedirectError: a redirect to a refused location.
            ClientClosedError: the session is closed.

        """
        url = self.url(route, query)
        limits = self._limits(timeouts)
        outgoing = _Request(route, url, json, data, form, headers)
        first: _Outcome | None = None
        if form is None and headers is None and not logger.isEnabledFor(logging.DEBUG):
            # The common case, inline (no frame per layer): one send and its status. Anything
            # else (a redirect, an error status, a failure) continues in the general loop from
            # this first outcome; nothing is sent twice.
            session = self.session
            if session.closed:
                raise ClientClosedError("the aiohttp session is closed")
            method = route.method
            payload: bytes | None
            if json is not NO_BODY:
                payload, sent = encode_json(json), self._home_headers(json=True)
            else:
                payload, sent = data, self._home_headers(json=False)
            try:
                response = await session.request(
                    method,
                    url,
                    data=payload,
                    headers=sent,
                    allow_redirects=False,
                    raise_for_status=False,
                    timeout=limits,
                )
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                first = transport_error(exc, method, url, self.secrets, reading=False)
            else:
                status = response.status
                if status in _REDIRECTS and "Location" in response.headers:
                    first = response  # the first hop of the attempt: the loop follows it
                else:
                    try:
                        body = await response.read()
                    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                        first = transport_error(exc, method, url, self.secrets, reading=True)
                    else:
                        if 200 <= status < 300 or status in allow:
                            return Response(status, response.headers, body, method, response.url)
                        first = (response, body)
                    finally:
                        response.release()
        final, read = await self._open(outgoing, retry, allow, limits, read=True, first=first)
        return Response(final.status, final.headers, read or b"", route.method, final.url)

    async def fetch(
        self,
        route: CompiledRoute,
        decode: Callable[[bytes], T],
        *,
        query: Mapping[str, QueryValue] | None = None,
        json: object = NO_BODY,
        retry: bool | None = None,
        timeouts: Timeouts | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> T:
        """Send ``route`` and decode its body with ``decode`` (a cached msgspec decoder).

        Cancelling abandons the request, as for :meth:`request`.

        Raises:
            DecodeError: the body does not have the shape the route promises.
            HTTPStatusError, TransportError: as :meth:`request`.

        """
        response = await self.request(route, query=query, json=json, retry=retry, timeouts=timeouts)
        return self.decode(response, decode)

    @staticmethod
    def decode(response: Response, decode: Callable[[bytes], T]) -> T:
        """Decode a response body, turning msgspec's errors into :class:`DecodeError`."""
        try:
            return decode(response.body)
        except msgspec.DecodeError as exc:
            raise DecodeError(f"{response.method} {response.url}: unexpected body: {exc}") from exc

    @contextlib.asynccontextmanager
    async def stream(
        self,
        route: CompiledRoute,
        *,
        query: Mapping[str, QueryValue] | None = None,
        max_bytes: int | None,
        timeouts: Timeouts | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> AsyncIterator[Download]:
        """Open ``route`` for streaming; read the body by iterating the :class:`Download`.

        Only the read timeout applies to the body, never a total one. Opening is retried per the
        policy; a failure while streaming is not. Leaving the block, by an error or a
        cancellation too, closes the response.

        Raises:
            DownloadTooLargeError: ``Content-Length`` (or the bytes received) exceed ``max_bytes``.
            HTTPStatusError, TransportError, UnsafeRedirectError: as :meth:`request`.

        """
        limits = self._stream_limits(timeouts)
        url = self.url(route, query)
        response: aiohttp.ClientResponse | None = None
        first: _Outcome | None = None
        if not logger.isEnabledFor(logging.DEBUG):
            # The common case inline, as in request(): one send and its status. A redirect, an
            # error status or a failure continues in the general loop from this first outcome;
            # nothing is sent twice.
            session = self.session
            if session.closed:
                raise ClientClosedError("the aiohttp session is closed")
            method = route.method
            try:
                sent = await session.request(
                    method,
                    url,
                    headers=self._home_headers(json=False),
                    allow_redirects=False,
                    raise_for_status=False,
                    timeout=limits,
                )
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                first = transport_error(exc, method, url, self.secrets, reading=False)
            else:
                status = sent.status
                if 200 <= status < 300:
                    response = sent
                elif status in _REDIRECTS and "Location" in sent.headers:
                    first = sent  # the first hop of the attempt: the loop follows it
                else:
                    first = (sent, None)  # an error status: the loop reads its body and decides
        if response is None:
            response, _ = await self._open(
                _Request(route, url), None, (), limits, read=False, first=first
            )
        opened, secrets = response, self.secrets

        async def read() -> bytes:
            failure: ComfyError
            try:
                return await opened.content.readany()
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                failure = transport_error(exc, "GET", opened.url, secrets, reading=True)
            raise failure

        try:
            headers = opened.headers
            download = Download(
                read,
                max_bytes=max_bytes,
                content_length=opened.content_length,
                content_type=headers.get("Content-Type"),
                encoded=headers.get("Content-Encoding", "identity") != "identity",
            )
            download.check_length()
            yield download
        finally:
            opened.release()

    # ------------------------------------------------------------------ the retry loop

    async def _open(
        self,
        outgoing: _Request,
        retry: bool | None,
        allow: Collection[int],
        limits: aiohttp.ClientTimeout,
        *,
        read: bool,
        first: _Outcome | None = None,
    ) -> tuple[aiohttp.ClientResponse, bytes | None]:
        """Send until a status to return, retrying per the policy.

        ``first`` is the outcome of a first send already made (by :meth:`request`): the
        failure, the response read in full, or a redirect response still to follow.
        """
        route = outgoing.route
        policy = self.options.retry if retry is not False else _NEVER
        idempotent = route.idempotent if retry is None else retry
        delays: Iterator[float] | None = None  # made on the first retry only
        attempt = 0
        while True:
            attempt += 1
            retry_after = None
            error: HTTPStatusError | TransportError
            try:
                if isinstance(first, ComfyError):
                    raise first
                if isinstance(first, tuple):
                    response, body = first
                else:
                    response, body = await self._attempt(
                        outgoing, limits, attempt, read=read, redirect=first
                    )
            except (HTTPStatusError, TransportError) as exc:
                error = exc
            else:
                if 200 <= response.status < 300 or response.status in allow:
                    return response, body
                header = response.headers.get("Retry-After")
                retry_after = parse_retry_after(header, now=time.time())
                error = await self._status_error(response, body, retry_after)
            if not should_retry(error, idempotent=idempotent, policy=policy, attempt=attempt):
                raise error
            first = None
            if delays is None:
                delays = policy.backoff.delays()
            pause = retry_delay(retry_after, next(delays), policy)
            logger.debug(
                "retrying %s %s in %.3f s: %s",
                route.method,
                redact_url(outgoing.url),
                pause,
                error,
            )
            await self._sleep(pause)

    async def _status_error(
        self, response: aiohttp.ClientResponse, body: bytes | None, retry_after: float | None
    ) -> HTTPStatusError:
        if body is None:
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                body = await response.content.read(_ERROR_BODY_LIMIT)
        response.release()
        raw = (body or b"")[:_ERROR_BODY_LIMIT].decode("utf-8", "replace")
        return error_for_status(
            response.status,
            method=response.method,
            url=response.url,
            body=redact_text(raw, self.secrets),
            retry_after=retry_after,
        )

    async def _attempt(
        self,
        outgoing: _Request,
        limits: aiohttp.ClientTimeout,
        attempt: int,
        *,
        read: bool,
        redirect: aiohttp.ClientResponse | None = None,
    ) -> tuple[aiohttp.ClientResponse, bytes | None]:
        """One attempt: send, follow redirects by hand, optionally read the body.

        ``redirect`` is the first hop's response when the request was already sent.
        """
        method, url = outgoing.route.method, outgoing.url
        session, secrets, send_body = self.session, self.secrets, True
        debug = logger.isEnabledFor(logging.DEBUG)
        for _hop in range(_MAX_REDIRECTS + 1):
            started = time.monotonic() if debug else 0.0
            if redirect is not None:
                response, redirect = redirect, None
            else:
                response = await self._exchange(
                    session, method, url, outgoing, limits, send_body=send_body, secrets=secrets
                )
            if debug:
                logger.debug(
                    "%s %s -> %d (attempt %d, %.3f s)",
                    method,
                    redact_url(url),
                    response.status,
                    attempt,
                    time.monotonic() - started,
                )
            location = response.headers.get("Location")
            if response.status not in _REDIRECTS or location is None:
                break
            response.release()
            target = redirect_target(url, location)
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, send_body = "GET", False
            if session is not self._anonymous and not self.credentials.is_home(target):
                if method not in _SAFE_METHODS:
                    raise UnsafeRedirectError(
                        str(target), f"{method} is not sent to another origin"
                    )
                # A signed storage URL: fetched without any credential, and a secret itself.
                session = self._anonymous_session()
                secrets = (*secrets, str(target), target.query_string)
            url = target
        else:
            raise error_for_status(
                response.status, method=method, url=url, body="too many redirects"
            )
        if not read:
            return response, None
        failure: ComfyError | None = None
        try:
            body = await response.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            failure = transport_error(exc, method, url, secrets, reading=True)
        finally:
            response.release()
        if failure is not None:
            raise failure
        return response, body

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: URL,
        outgoing: _Request,
        limits: aiohttp.ClientTimeout,
        *,
        send_body: bool,
        secrets: tuple[str, ...],
    ) -> aiohttp.ClientResponse:
        if session.closed:
            raise ClientClosedError("the aiohttp session is closed")
        headers = {"User-Agent": self.options.user_agent, **(outgoing.headers or {})}
        body: object = None
        if send_body:
            body, content_headers = outgoing.body()
            headers.update(content_headers)
        if session is not self._anonymous:
            headers.update(self.credentials.headers_for(url))
        failure: ComfyError
        try:
            return await session.request(
                method,
                url,
                data=body,
                headers=headers,
                allow_redirects=False,
                raise_for_status=False,
                timeout=limits,
            )
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            failure = transport_error(exc, method, url, secrets, reading=False)
        raise failure
