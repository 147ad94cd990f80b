"""Comfy Cloud specifics of the fake server: API-key checks and the signed-URL second origin.

On Cloud (protocol doc §8) every HTTP request carries ``X-API-Key``; the fake answers 401 when it
is missing and 403 when it is wrong (the experiment-models routes are public). ``/api/view``
answers **302** to a signed URL on a *second origin*: :class:`SignedOrigin` is another aiohttp
server on another loopback address (127.0.0.2 by default) that serves the file only with a valid
``signature`` query parameter and records the headers of every request it receives, so a test
can assert that no ``X-API-Key``, ``Authorization`` or cookie followed the redirect.

This module owns that second server and the auth middleware; it does not know about prompts.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from aiohttp import web

from comfy_async.testing._responses import empty, json_response

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from comfy_async.testing._files import FileStore

__all__ = ["SignedOrigin", "auth_middleware", "view_redirect"]

_PUBLIC = ("/api/experiment/models",)


def auth_middleware(api_key: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    """401 without ``X-API-Key``, 403 with a wrong one (the WebSocket checks ``token`` itself)."""

    @web.middleware
    async def check(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path in {"/ws", "/api/ws"} or request.path.startswith(_PUBLIC):
            return await handler(request)
        key = request.headers.get("X-API-Key")
        if key is None:
            return json_response(
                {"error": {"type": "unauthorized", "message": "X-API-Key header required"}}, 401
            )
        if not secrets.compare_digest(key, api_key):
            return json_response(
                {"error": {"type": "forbidden", "message": "invalid API key"}}, 403
            )
        return await handler(request)

    return check


class SignedOrigin:
    """The storage origin ``/api/view`` redirects to (a second aiohttp server)."""

    def __init__(self, files: FileStore, host: str) -> None:
        self.files = files
        self.host = host
        self.port = 0
        self.requests: list[dict[str, str]] = []
        self._secret = secrets.token_urlsafe(16)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind a free port on ``host`` and serve."""
        app = web.Application()
        app.router.add_get("/signed/{type}/{name}", self._serve)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def sign(self, type_: str, subfolder: str, filename: str) -> str:
        """A signed URL for one file (the ``signature`` parameter is a secret)."""
        query = urlencode(
            {"subfolder": subfolder, "expires": int(time.time()) + 3600, "signature": self._secret}
        )
        return f"http://{self.host}:{self.port}/signed/{quote(type_)}/{quote(filename)}?{query}"

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(dict(request.headers))
        if not secrets.compare_digest(request.query.get("signature", ""), self._secret):
            return empty(403)
        query = {
            "filename": request.match_info["name"],
            "type": request.match_info["type"],
            "subfolder": request.query.get("subfolder", ""),
        }
        path = self.files.resolve_view(query)
        if isinstance(path, int):
            return empty(path)
        return web.Response(body=path.read_bytes(), content_type="image/png")


def view_redirect(
    files: FileStore, origin: SignedOrigin
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """``GET /api/view`` on Cloud: 302 to the signed URL, or the same error codes as local."""

    async def view(request: web.Request) -> web.StreamResponse:
        path = files.resolve_view(request.query)
        if isinstance(path, int):
            return empty(path)
        type_ = path.parent.relative_to(files.base).parts[0]
        subfolder = path.parent.relative_to(files.base / type_).as_posix()
        location = origin.sign(type_, "" if subfolder == "." else subfolder, path.name)
        return web.Response(status=302, headers={"Location": location})

    return view
