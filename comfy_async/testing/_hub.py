"""The fake server's WebSocket side: connections, routing by sid, and the one publisher task.

Like the real server (protocol doc §3), every outgoing frame goes through one queue and one
publisher task that sends to its recipients **one after another, awaiting each send**; a socket
whose peer stops reading therefore stalls delivery to everyone once its buffers are full. With
``sequential=False`` each socket gets its own bounded outbox and sender task instead, and frames
for a socket whose outbox is full are dropped (and counted).

Recipients are resolved when a frame is sent, from the sid → socket map (one socket per sid). A
reconnect with the same clientId replaces the entry without closing the old socket, and — with
``orphaning_bug`` on, as on a real server (§3.1) — the old socket's cleanup removes the entry
even though it now belongs to the new socket. The Cloud flavour keys connections individually
and routes a user's events to all of that user's sockets.

The hub also carries the socket fault knobs (drop after N frames, abort, clean close, stall with
reads paused, inject frames). It knows nothing about prompts; the executor tells it what to send.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson
from aiohttp import WSMsgType, web

from comfy_async.protocol.messages import encode_message

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["Connection", "Hub", "Target"]

#: Frames queued for a slow socket before further ones are dropped (``sequential=False``).
SLOW_SOCKET_BUFFER = 256


@dataclass(frozen=True, slots=True)
class Target:
    """Who gets a frame: one sid, one (Cloud) user's sockets, or everyone (both ``None``).

    ``metadata`` keeps only sockets that did (``True``) or did not (``False``) negotiate
    ``supports_preview_metadata``.
    """

    sid: str | None = None
    user: str | None = None
    metadata: bool | None = None


@dataclass(eq=False, slots=True)
class Connection:
    """One open WebSocket."""

    key: int
    sid: str
    user: str
    ws: web.WebSocketResponse
    transport: asyncio.BaseTransport | None
    flags: dict[str, object] = field(default_factory=dict)
    first_parsed: bool = False
    stalled: bool = False
    held: list[str | bytes] = field(default_factory=list)
    sent: int = 0
    dropped: int = 0
    outbox: asyncio.Queue[str | bytes] | None = None
    sender: asyncio.Task[None] | None = None

    @property
    def metadata(self) -> bool:
        """Whether the client negotiated type-4 previews."""
        return self.flags.get("supports_preview_metadata") is True


@dataclass(slots=True)
class _DropRule:
    after: int
    sid: str | None
    counts: dict[int, int] = field(default_factory=dict)


class Hub:
    """All sockets of one server instance and the publisher that writes to them."""

    def __init__(
        self,
        *,
        cloud: bool,
        orphaning_bug: bool,
        sequential: bool,
        features: dict[str, object],
        send_buffer: int | None,
    ) -> None:
        self.cloud = cloud
        self.orphaning_bug = orphaning_bug
        self.sequential = sequential
        self.features = features
        self.send_buffer = send_buffer
        self.sockets: dict[str, Connection] = {}  # sid → owner (local routing)
        self.connections: dict[int, Connection] = {}  # every open socket
        self.log_subscribers: set[str] = set()
        self.dropped = 0
        self._keys = itertools.count(1)
        self._outbox: asyncio.Queue[tuple[str | bytes, Target] | Connection] = asyncio.Queue()
        self._publisher: asyncio.Task[None] | None = None
        self._drop_rules: list[_DropRule] = []
        self._writing = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the publisher task."""
        self._publisher = asyncio.get_running_loop().create_task(self._publish())

    async def close(self, *, abort: bool) -> None:
        """Stop publishing and close (or abort, like a crashed server) every socket."""
        if self._publisher is not None:
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
        for conn in list(self.connections.values()):
            if conn.sender is not None:
                conn.sender.cancel()
            if abort or conn.stalled:
                self._abort(conn)
            else:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.ws.close(code=1001), 1.0)
                self._abort(conn)

    # ------------------------------------------------------------------ sending

    def send(self, type_: str, data: object, target: Target) -> None:
        """Queue a JSON event for ``target`` (never blocks)."""
        self._outbox.put_nowait((encode_message(type_, data).decode(), target))

    def send_binary(self, frame: bytes, target: Target) -> None:
        """Queue a binary frame for ``target`` (never blocks)."""
        self._outbox.put_nowait((frame, target))

    def send_raw(self, frame: str | bytes, target: Target) -> None:
        """Queue any frame as is (fault injection)."""
        self._outbox.put_nowait((frame, target))

    @property
    def backlog(self) -> int:
        """Frames queued or being written (0 once everything queued has been handed out)."""
        return self._outbox.qsize() + self._writing

    def recipients(self, target: Target) -> list[Connection]:
        """The sockets a frame for ``target`` reaches right now."""
        if target.user is not None:
            conns = [c for c in self.connections.values() if c.user == target.user]
        elif target.sid is not None:
            if self.cloud:
                conns = [c for c in self.connections.values() if c.sid == target.sid]
            else:
                owner = self.sockets.get(target.sid)
                conns = [owner] if owner is not None else []
        else:
            conns = list(self.connections.values() if self.cloud else self.sockets.values())
        if target.metadata is not None:
            conns = [c for c in conns if c.metadata is target.metadata]
        return conns

    async def _publish(self) -> None:
        while True:
            entry = await self._outbox.get()
            self._writing = 1
            try:
                await self._dispatch(entry)
            finally:
                self._writing = 0

    async def _dispatch(self, entry: tuple[str | bytes, Target] | Connection) -> None:
        if isinstance(entry, Connection):  # a released stall: flush what was held
            held, entry.held = entry.held, []
            for frame in held:
                await self._deliver(entry, frame)
            return
        frame, target = entry
        for conn in self.recipients(target):
            if self.sequential:
                await self._deliver(conn, frame)
            else:
                self._enqueue(conn, frame)

    def _enqueue(self, conn: Connection, frame: str | bytes) -> None:
        if conn.outbox is None:
            conn.outbox = asyncio.Queue(SLOW_SOCKET_BUFFER)
            conn.sender = asyncio.get_running_loop().create_task(self._drain(conn))
        try:
            conn.outbox.put_nowait(frame)
        except asyncio.QueueFull:
            conn.dropped += 1
            self.dropped += 1

    async def _drain(self, conn: Connection) -> None:
        assert conn.outbox is not None
        while True:
            await self._deliver(conn, await conn.outbox.get())

    async def _deliver(self, conn: Connection, frame: str | bytes) -> None:
        """Send one frame to one socket, awaiting the write (flow control included)."""
        if conn.key not in self.connections or conn.ws.closed:
            return
        if conn.stalled:
            conn.held.append(frame)
            return
        try:
            if isinstance(frame, str):
                await conn.ws.send_str(frame)
            else:
                await conn.ws.send_bytes(frame)
        except (ConnectionError, RuntimeError):
            return
        conn.sent += 1
        for rule in list(self._drop_rules):
            if rule.sid is not None and rule.sid != conn.sid:
                continue
            rule.counts[conn.key] = rule.counts.get(conn.key, 0) + 1
            if rule.counts[conn.key] >= rule.after:
                self._drop_rules.remove(rule)
                self._abort(conn)
                return

    # ------------------------------------------------------------------ the socket handler

    async def handle(
        self,
        request: web.Request,
        *,
        user: str,
        greeting: Callable[[str], list[tuple[str, object]]],
        on_close: Callable[[Connection], Awaitable[None]] | None = None,
    ) -> web.WebSocketResponse:
        """Serve one WebSocket: greet, negotiate feature flags, then read until it closes."""
        ws = web.WebSocketResponse(max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        transport = request.transport
        if transport is not None and self.send_buffer is not None:
            _limit_send_buffer(transport, self.send_buffer)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        conn = Connection(next(self._keys), sid, user, ws, transport)
        self.connections[conn.key] = conn
        if not self.cloud:
            self.sockets[sid] = conn  # replaces an older socket without closing it (§3.1)
        try:
            for type_, data in greeting(sid):
                await self._deliver(conn, encode_message(type_, data).decode())
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await self._on_text(conn, message.data)
        finally:
            self.connections.pop(conn.key, None)
            if not self.cloud and (self.orphaning_bug or self.sockets.get(sid) is conn):
                self.sockets.pop(sid, None)  # the bug: may remove a newer socket's entry
            if conn.sender is not None:
                conn.sender.cancel()
            if on_close is not None:
                await on_close(conn)
        return ws

    async def _on_text(self, conn: Connection, text: str) -> None:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            return  # invalid JSON does not use up the first-message slot (S15)
        first, conn.first_parsed = not conn.first_parsed, True
        if (
            first
            and isinstance(message, dict)
            and message.get("type") == "feature_flags"
            and isinstance(message.get("data"), dict)
        ):
            conn.flags = dict(message["data"])
            await self._deliver(conn, encode_message("feature_flags", self.features).decode())

    # ------------------------------------------------------------------ fault knobs

    def matching(self, client_id: str | None) -> list[Connection]:
        """Open sockets with this sid (every open socket for ``None``)."""
        return [c for c in self.connections.values() if client_id is None or c.sid == client_id]

    def arm_drop(self, after: int, client_id: str | None) -> None:
        """Abort the first matching socket that has been sent ``after`` more frames."""
        self._drop_rules.append(_DropRule(after=after, sid=client_id))

    def disarm(self) -> None:
        """Forget every armed drop rule."""
        self._drop_rules.clear()

    def abort(self, client_id: str | None) -> int:
        """Abort matching sockets now (no close frame); returns how many."""
        conns = self.matching(client_id)
        for conn in conns:
            self._abort(conn)
        return len(conns)

    def _abort(self, conn: Connection) -> None:
        if conn.transport is not None:
            conn.transport.abort()  # type: ignore[attr-defined]

    async def close_clean(self, client_id: str | None, code: int) -> int:
        """Close matching sockets with a close frame; returns how many."""
        conns = self.matching(client_id)
        for conn in conns:
            await conn.ws.close(code=code)
        return len(conns)

    def stall(self, client_id: str | None) -> int:
        """Hold every frame for matching sockets and stop reading from them (no pongs)."""
        conns = self.matching(client_id)
        for conn in conns:
            conn.stalled = True
            if conn.transport is not None:
                conn.transport.pause_reading()  # type: ignore[attr-defined]
        return len(conns)

    def release(self, client_id: str | None) -> int:
        """End a stall: resume reading and deliver the held frames in order."""
        conns = [c for c in self.matching(client_id) if c.stalled]
        for conn in conns:
            conn.stalled = False
            if conn.transport is not None and not conn.transport.is_closing():
                conn.transport.resume_reading()  # type: ignore[attr-defined]
            self._outbox.put_nowait(conn)
        return len(conns)


def _limit_send_buffer(transport: asyncio.BaseTransport, size: int) -> None:
    import socket  # noqa: PLC0415 - only needed for this knob

    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
    if isinstance(transport, asyncio.WriteTransport):
        transport.set_write_buffer_limits(high=size)
