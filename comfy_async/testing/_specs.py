"""What the fake server's parts share: a route and where it is mounted, a received prompt.

Kept apart from :mod:`comfy_async.testing.server` so that the route modules and the server
context depend on these two records, not on the server that assembles them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from aiohttp import web

__all__ = ["Handler", "PromptRecord", "RouteSpec"]

Handler: TypeAlias = "Callable[[web.Request], Awaitable[web.StreamResponse]]"


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One handler and where it is mounted.

    ``template`` is written as in ``comfy_async._transport.routes`` (no ``/api``). ``scope``:
    ``both`` (with and without ``/api``), ``jobs`` (``/api`` and ``/api/api``), ``api`` (``/api``
    only), ``root`` (unprefixed only, not on Cloud), ``ws`` (``/ws`` and ``/api/ws``).
    """

    method: str
    template: str
    handler: Handler
    scope: Literal["both", "jobs", "api", "root", "ws"] = "both"

    def paths(self, *, cloud: bool) -> list[str]:
        """The paths this route answers on."""
        if self.scope == "ws":
            return ["/ws", "/api/ws"]
        if cloud:
            return [] if self.scope == "root" else ["/api" + self.template]
        api = "/api" + self.template
        return {
            "both": [self.template, api],
            "jobs": [api, "/api" + api],
            "api": [api],
            "root": [self.template],
        }[self.scope]


@dataclass(frozen=True, slots=True)
class PromptRecord:
    """One ``POST /prompt`` as received: the id sent (if any), the id queued, the status."""

    sent_prompt_id: str | None
    prompt_id: str | None
    status: int
    client_id: object
    body: dict[str, Any] | None
