"""The session's one WebSocket: connect, feature flags, heartbeat, a thin reader, reconnects.

A :class:`Connection` is opened lazily (:meth:`Connection.ensure_open`) and then kept open by a
supervisor task:

* every connection sends the feature-flags hello first, runs with an explicit
  ``max_msg_size`` and a client heartbeat (the server sends none, protocol doc §3.1), and gets a
  fresh :class:`~comfy_async.protocol.state.ProtocolState`;
* the reader only turns frames into events and hands them to the dispatcher, which never awaits
  (design invariant 3);
* when the socket drops, the old socket is closed **and awaited** before a new one is opened with
  the same clientId — the server's cleanup of an old socket can otherwise orphan the new one
  (§3.1, invariant 6) — with backoff and jitter, reset after a healthy connection;
* fatal errors are not retried: a refused credential (401/403), a wrong path (404), an invalid
  URL or a failed TLS verification; nor is a failure of the very first connection, which is
  raised to the caller instead of retried in the background;
* after each reconnect the ``on_reconnect`` callback runs (the session reconciles its jobs over
  HTTP there); if it raises, the connection gives up with that error.

This module and ``_http`` are the only ones that import aiohttp; every aiohttp exception is
translated here into the library's error tree, with the URL redacted (the Cloud token is in it).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp

from comfy_async._transport.http import transport_error
from comfy_async.errors import (
    ClientClosedError,
    ComfyError,
    ConfigurationError,
    ConnectionLostError,
    NotFoundError,
    error_for_status,
    redact_url,
)
from comfy_async.events import Event, Status
from comfy_async.protocol.state import FEATURE_FLAGS_HELLO, ProtocolState

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from yarl import URL

    from comfy_async.config import ClientOptions

__all__ = ["Connection", "ConnectionState", "ReconnectInfo"]

logger = logging.getLogger("comfy_async.connection")

# How long a new socket may stay silent before it counts as open anyway (some servers may not
# send the initial status frame).
_FIRST_FRAME_WAIT = 5.0


class ConnectionState(enum.Enum):
    """The state of the session's WebSocket."""

    IDLE = "idle"
    """Not opened yet (it opens on first need)."""
    CONNECTING = "connecting"
    OPEN = "open"
    RECONNECTING = "reconnecting"
    """The socket dropped; a new one is being opened."""
    FAILED = "failed"
    """Gave up (a fatal error, or too many attempts); :attr:`Connection.error` says why."""
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ReconnectInfo:
    """What the ``on_reconnect`` callback is told about a reconnect."""

    attempt: int
    """How many attempts the reconnect took (1 for the first try)."""
    downtime: float
    """Seconds between losing the old socket and opening the new one."""
    reason: str
    """Why the old socket ended."""


def _is_fatal(error: ComfyError) -> bool:
    return isinstance(error, ConfigurationError | NotFoundError) or getattr(error, "status", 0) in (
        401,
        403,
    )


class Connection:
    """The session's one WebSocket, kept open by a supervisor task."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: URL,
        *,
        options: ClientOptions,
        dispatch: Callable[[Event], None],
        headers: dict[str, str] | None = None,
        on_reconnect: Callable[[ReconnectInfo], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._url = url
        self._headers = headers or {}
        self._options = options
        self._dispatch = dispatch
        self._on_reconnect = on_reconnect
        self._clock = clock
        self._state = ConnectionState.IDLE
        self._supervisor: asyncio.Task[None] | None = None
        self._opened: asyncio.Future[None] | None = None
        self._ws: aiohttp.ClientWebSocketResponse[bool] | None = None
        self._protocol = ProtocolState()
        self._state_changed = asyncio.Event()
        self._reopen_requested = False
        self.error: ComfyError | None = None
        """Why the connection gave up, once it has."""
        self.connects = 0
        """Sockets opened so far (1 + reconnects)."""
        self.last_frame_at = 0.0
        """Monotonic time of the last frame received."""

    def __repr__(self) -> str:
        return f"<Connection {redact_url(self._url)} {self._state.value}>"

    @property
    def state(self) -> ConnectionState:
        """The current state of the socket."""
        return self._state

    @property
    def protocol(self) -> ProtocolState:
        """The protocol state of the current socket (sid, negotiated features)."""
        return self._protocol

    def _set_state(self, state: ConnectionState) -> None:
        if state is not self._state:
            logger.debug("websocket %s → %s", self._state.value, state.value)
            self._state = state
            self._state_changed.set()
            self._state_changed = asyncio.Event()

    async def wait_for_state(self, *states: ConnectionState) -> ConnectionState:
        """Wait until the state is one of ``states`` and return it."""
        while self._state not in states:
            await self._state_changed.wait()
        return self._state

    # ------------------------------------------------------------------ lifecycle

    async def ensure_open(self) -> None:
        """Open the socket if it is not open yet, and wait until the server has registered it.

        Returns at once while the supervisor is reconnecting (events of that gap are reconciled
        over HTTP). Cancelling the caller does not cancel the connection attempt.

        Raises:
            ClientClosedError: the connection was closed.
            AuthenticationError: the server refused the credentials.
            ConnectError: the first connection failed (nothing to reconnect to yet).
            ComfyError: the connection gave up earlier (the stored error).

        """
        if self._state is ConnectionState.CLOSED:
            raise ClientClosedError("the session is closed")
        if self._state is ConnectionState.FAILED:
            assert self.error is not None
            raise self.error
        if self._supervisor is None:
            self.error = None
            self._opened = asyncio.get_running_loop().create_future()
            self._supervisor = asyncio.create_task(self._supervise(), name="comfy_async:websocket")
        if self._opened is not None and not self._opened.done():
            await asyncio.shield(self._opened)

    def reopen(self) -> None:
        """Drop the current socket and open a new one (e.g. when it seems orphaned, §3.1)."""
        if self._ws is not None and not self._ws.closed:
            self._reopen_requested = True
            asyncio.get_running_loop().create_task(self._ws.close())

    async def aclose(self) -> None:
        """Close the socket and stop reconnecting; waits until both are done."""
        self._set_state(ConnectionState.CLOSED)
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        if self._opened is not None and not self._opened.done():
            self._opened.set_exception(ClientClosedError("the session is closed"))
            self._opened.exception()  # retrieved: nobody may be waiting

    # ------------------------------------------------------------------ supervisor

    async def _supervise(self) -> None:
        policy = self._options.reconnect
        delays = policy.backoff.delays()
        failures = 0
        lost_at: float | None = None
        reason = ""
        try:
            while True:
                first = self.connects == 0
                self._set_state(
                    ConnectionState.CONNECTING if first else ConnectionState.RECONNECTING
                )
                try:
                    ws = await self._connect()
                except ComfyError as error:
                    failures += 1
                    limit = policy.max_attempts
                    if first and not _is_fatal(error):
                        self._first_connect_failed(error)
                        return
                    if _is_fatal(error) or (limit is not None and failures >= limit):
                        self._give_up(error)
                        return
                    logger.info("websocket reconnect attempt %d failed: %s", failures, error)
                    await asyncio.sleep(next(delays))
                    continue
                opened_at = self._clock()
                if lost_at is not None:
                    info = ReconnectInfo(failures + 1, opened_at - lost_at, reason)
                    failures = 0
                    await self._reconnected(info)
                reason = await self._read(ws)
                lost_at = self._clock()
                if lost_at - opened_at >= policy.healthy_after:
                    delays = policy.backoff.delays()  # a healthy connection resets the backoff
                if self._state is ConnectionState.CLOSED:
                    return
                logger.info("websocket lost (%s); reconnecting", reason)
                if not self._reopen_requested:
                    await asyncio.sleep(next(delays))
                self._reopen_requested = False
        except asyncio.CancelledError:
            raise
        except ComfyError as error:  # raised by on_reconnect: the caller asked to stop
            self._give_up(error)
        except Exception as error:
            logger.exception("websocket supervisor failed")
            self._give_up(ConnectionLostError(f"websocket supervisor failed: {error!r}"))

    def _first_connect_failed(self, error: ComfyError) -> None:
        # Nothing to reconnect to yet: tell the caller now; the next ensure_open tries again.
        self._set_state(ConnectionState.IDLE)
        self._supervisor = None
        if self._opened is not None and not self._opened.done():
            self._opened.set_exception(error)
            self._opened.exception()

    def _give_up(self, error: ComfyError) -> None:
        self.error = error
        self._set_state(ConnectionState.FAILED)
        self._supervisor = None
        if self._opened is not None and not self._opened.done():
            self._opened.set_exception(error)
            self._opened.exception()  # marked retrieved: a later ensure_open raises it again
        logger.warning("websocket gave up: %s", error)

    async def _reconnected(self, info: ReconnectInfo) -> None:
        logger.info("websocket reconnected after %.2f s (%d attempts)", info.downtime, info.attempt)
        if self._on_reconnect is not None:
            await self._on_reconnect(info)

    async def _connect(self) -> aiohttp.ClientWebSocketResponse[bool]:
        timeouts = self._options.timeouts
        heartbeat = self._options.heartbeat.interval
        # Errors are raised after the except blocks: aiohttp's exceptions print the URL, which
        # holds the Cloud token, and must not even hang on the __context__ chain.
        failure: ComfyError
        try:
            ws = await self._http.ws_connect(
                self._url,
                headers=self._headers,
                heartbeat=heartbeat,
                max_msg_size=self._options.max_message_size,
                autoping=True,
                decode_text=False,  # text frames stay bytes: msgspec decodes them directly
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=timeouts.connect),
            )
        except aiohttp.WSServerHandshakeError as exc:
            failure = error_for_status(
                exc.status, method="GET", url=redact_url(self._url), body=exc.message
            )
        except (ssl.SSLError, aiohttp.ClientSSLError) as exc:
            failure = ConfigurationError(
                f"TLS failed for {redact_url(self._url)}: {type(exc).__name__}"
            )
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            failure = transport_error(exc, "GET", self._url, (), reading=False)
        else:
            return await self._opened_socket(ws)
        raise failure

    async def _opened_socket(
        self, ws: aiohttp.ClientWebSocketResponse[bool]
    ) -> aiohttp.ClientWebSocketResponse[bool]:
        self.connects += 1
        self._ws = ws
        self._protocol = ProtocolState()
        if self._options.preview_metadata:
            await ws.send_str(FEATURE_FLAGS_HELLO)  # must be the first JSON message (§3.1)
        return ws

    async def _read(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> str:
        """Feed frames to the dispatcher until the socket ends; return why it ended."""
        protocol = self._protocol
        dispatch = self._dispatch
        clock = self._clock
        text, binary = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
        try:
            # Until the server has registered the socket: a deadline, and a look at each event.
            waiting = self._loop_time() + _FIRST_FRAME_WAIT
            while True:
                try:
                    message = await ws.receive(max(waiting - self._loop_time(), 0.0))
                except TimeoutError:
                    self._mark_open()
                    break
                kind = message.type
                if kind is text:
                    event = protocol.receive_text(message.data)
                elif kind is binary:
                    event = protocol.receive_bytes(message.data)
                else:
                    return self._ending(ws, kind, message.data)
                self.last_frame_at = clock()
                dispatch(event)
                if type(event) is Status:
                    self._mark_open()
                    break
            # Then every frame: the loop of the hot path, with nothing else in it.
            receive, receive_text, receive_bytes = (
                ws.receive,
                protocol.receive_text,
                protocol.receive_bytes,
            )
            while True:
                kind, data, _ = await receive()
                if kind is text:
                    event = receive_text(data)
                elif kind is binary:
                    event = receive_bytes(data)
                else:
                    return self._ending(ws, kind, data)
                self.last_frame_at = clock()
                dispatch(event)
        finally:
            # Close the old socket completely before any new one is opened (§3.1).
            await ws.close()
            if self._ws is ws:
                self._ws = None

    def _mark_open(self) -> None:
        self._set_state(ConnectionState.OPEN)
        if self._opened is not None and not self._opened.done():
            self._opened.set_result(None)

    @staticmethod
    def _ending(
        ws: aiohttp.ClientWebSocketResponse[bool], kind: aiohttp.WSMsgType, data: object
    ) -> str:
        if kind is aiohttp.WSMsgType.ERROR:
            return f"error: {type(data).__name__}: {data}"
        return f"closed by the server (code {ws.close_code})"

    @staticmethod
    def _loop_time() -> float:
        return asyncio.get_running_loop().time()
