"""Fault knobs of the fake server: make it fail the ways a real server or network does.

Every :class:`~comfy_async.testing.FakeComfyServer` has one :class:`Faults` object,
``server.faults``, that survives :meth:`~comfy_async.testing.FakeComfyServer.restart`:

HTTP
    :meth:`Faults.fail_route` (5xx or 429 with ``Retry-After`` for the next N requests),
    :meth:`Faults.delay_route`, :meth:`Faults.cut_prompt_response` (the job is queued, then the
    connection is dropped before the response), :meth:`Faults.delay_prompt_response` (the job is
    queued and may finish, events included, before the response is written).
WebSocket
    :meth:`Faults.drop_websocket` (abort: no close frame), :meth:`Faults.drop_websocket_after`
    (abort after N more frames), :meth:`Faults.close_websocket` (clean close frame),
    :meth:`Faults.stall_websocket` / :meth:`Faults.release_websocket` (open but silent: frames are
    held and reads are paused, so pings go unanswered), :meth:`Faults.inject` (any frame, e.g.
    from :func:`oversize_frame`, :func:`malformed_binary_frame`, :func:`unknown_binary_frame`,
    :func:`malformed_text_frame`, :func:`unknown_text_frame`), and the switches
    :attr:`Faults.orphaning_bug` (protocol doc §3.1; on by default like the real server) and
    :attr:`Faults.sequential_sends` (off: each socket gets its own bounded outbox and frames for a
    slow socket are dropped instead of stalling everyone).

Routes are named by method and template without the ``/api`` prefix, as in
``comfy_async._transport.routes`` (``"POST", "/prompt"``; ``"GET", "/jobs/{job_id}"``). This
module holds the knobs; the server applies them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from comfy_async.testing._hub import Hub

__all__ = [
    "Faults",
    "RouteFault",
    "malformed_binary_frame",
    "malformed_text_frame",
    "oversize_frame",
    "unknown_binary_frame",
    "unknown_text_frame",
]


@dataclass(slots=True)
class RouteFault:
    """One armed HTTP fault: answer ``status`` (or just wait ``delay`` seconds) ``times`` times."""

    method: str
    template: str
    times: int
    status: int | None = None
    delay: float = 0.0
    retry_after: float | None = None


class Faults:
    """The knobs of one fake server (see the module docstring)."""

    def __init__(self, hub: Callable[[], Hub | None], *, orphaning_bug: bool, sequential: bool):
        self._hub = hub
        self._routes: list[RouteFault] = []
        self._cut_prompt = 0
        self._prompt_delays: list[float] = []
        self._orphaning_bug = orphaning_bug
        self._sequential = sequential

    # ------------------------------------------------------------------ HTTP

    def fail_route(
        self,
        method: str,
        template: str,
        *,
        status: int = 503,
        times: int = 1,
        retry_after: float | None = None,
    ) -> None:
        """Answer the next ``times`` requests to the route with ``status`` (empty body).

        ``retry_after`` adds a ``Retry-After`` header (seconds), as a 429 usually carries.
        """
        self._routes.append(RouteFault(method.upper(), template, times, status, 0.0, retry_after))

    def delay_route(self, method: str, template: str, seconds: float, *, times: int = 1) -> None:
        """Hold the next ``times`` requests to the route for ``seconds`` before serving them."""
        self._routes.append(RouteFault(method.upper(), template, times, None, seconds))

    def cut_prompt_response(self, *, times: int = 1) -> None:
        """Queue the next ``times`` valid prompts, then drop the connection without answering."""
        self._cut_prompt += times

    def delay_prompt_response(self, seconds: float, *, times: int = 1) -> None:
        """Queue the next ``times`` valid prompts, then wait ``seconds`` before answering."""
        self._prompt_delays.extend([seconds] * times)

    def clear(self) -> None:
        """Disarm every HTTP fault and WebSocket drop rule."""
        self._routes.clear()
        self._cut_prompt = 0
        self._prompt_delays.clear()
        hub = self._hub()
        if hub is not None:
            hub.disarm()

    def take_route_fault(self, method: str, template: str) -> RouteFault | None:
        """Consume one use of the first fault armed for this route (server side)."""
        for fault in self._routes:
            if fault.method == method and fault.template == template:
                fault.times -= 1
                if fault.times <= 0:
                    self._routes.remove(fault)
                return fault
        return None

    def take_prompt_cut(self) -> bool:
        """Consume one armed response cut (server side)."""
        if self._cut_prompt <= 0:
            return False
        self._cut_prompt -= 1
        return True

    def take_prompt_delay(self) -> float:
        """Consume one armed response delay (server side)."""
        return self._prompt_delays.pop(0) if self._prompt_delays else 0.0

    # ------------------------------------------------------------------ WebSocket

    def _require_hub(self) -> Hub:
        hub = self._hub()
        if hub is None:
            raise RuntimeError("the fake server is not running")
        return hub

    def drop_websocket(self, client_id: str | None = None) -> int:
        """Abort the sockets of ``client_id`` (all sockets for ``None``) now: no close frame.

        Returns how many sockets were dropped.
        """
        return self._require_hub().abort(client_id)

    def drop_websocket_after(self, frames: int, client_id: str | None = None) -> None:
        """Abort the first socket of ``client_id`` (any for ``None``) to be sent ``frames`` more.

        New sockets count from their first frame (the greeting ``status``). Fires once.
        """
        self._require_hub().arm_drop(frames, client_id)

    async def close_websocket(self, client_id: str | None = None, *, code: int = 1000) -> int:
        """Close the sockets of ``client_id`` cleanly (close frame with ``code``)."""
        return await self._require_hub().close_clean(client_id, code)

    def stall_websocket(self, client_id: str | None = None) -> int:
        """Keep the sockets open but silent: hold their frames, stop reading (pings unanswered)."""
        return self._require_hub().stall(client_id)

    def release_websocket(self, client_id: str | None = None) -> int:
        """End a stall: resume reading and deliver the held frames in order."""
        return self._require_hub().release(client_id)

    def inject(self, frame: str | bytes, client_id: str | None = None) -> None:
        """Send ``frame`` as is (text for ``str``) to ``client_id``'s socket or to every socket.

        It is queued behind the events already queued, like any other frame.
        """
        from comfy_async.testing._hub import Target  # noqa: PLC0415 - avoids an import cycle

        self._require_hub().send_raw(frame, Target(sid=client_id))

    @property
    def orphaning_bug(self) -> bool:
        """Reproduce the reconnect-orphaning bug of protocol doc §3.1 (default on)."""
        return self._orphaning_bug

    @orphaning_bug.setter
    def orphaning_bug(self, value: bool) -> None:
        self._orphaning_bug = value
        hub = self._hub()
        if hub is not None:
            hub.orphaning_bug = value

    @property
    def sequential_sends(self) -> bool:
        """Send to sockets one after another, awaiting each (default, like the real server)."""
        return self._sequential

    @sequential_sends.setter
    def sequential_sends(self, value: bool) -> None:
        self._sequential = value
        hub = self._hub()
        if hub is not None:
            hub.sequential = value


# ---------------------------------------------------------------------- frames to inject


def oversize_frame(size: int) -> bytes:
    """A type-1 PNG preview frame of ``size`` bytes in total (a valid header, then padding)."""
    header = struct.pack(">II", 1, 2) + b"\x89PNG\r\n\x1a\n"
    return header + b"\x00" * max(0, size - len(header))


def malformed_binary_frame() -> bytes:
    """A type-4 frame whose metadata length runs past the end of the frame."""
    return struct.pack(">II", 4, 1000) + b'{"prompt_id": '


def unknown_binary_frame() -> bytes:
    """A binary frame of an event type no server sends (99)."""
    return struct.pack(">I", 99) + b"payload"


def malformed_text_frame() -> str:
    """A text frame that is not JSON."""
    return '{"type": "progress", "data": '


def unknown_text_frame() -> str:
    """A well-formed event of a type the library does not know."""
    return '{"type": "fake_custom_event", "data": {"value": 1, "prompt_id": null}}'
