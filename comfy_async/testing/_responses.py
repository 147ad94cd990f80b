"""Response builders shared by the fake server's handlers: JSON as the real server encodes it.

The real server answers JSON with ``application/json; charset=utf-8`` and most errors with an
empty body; these helpers keep every handler consistent. No state, no I/O beyond building
responses.
"""

from __future__ import annotations

import orjson
from aiohttp import web

__all__ = ["empty", "json_response", "text"]


def json_response(data: object, status: int = 200) -> web.Response:
    """A JSON response (``application/json; charset=utf-8``)."""
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", charset="utf-8"
    )


def empty(status: int = 200) -> web.Response:
    """A response without a body (what most legacy routes answer, successes and errors)."""
    return web.Response(status=status)


def text(message: str, status: int) -> web.Response:
    """A ``text/plain`` response."""
    return web.Response(text=message, status=status)
