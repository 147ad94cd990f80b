"""Where a session's credentials go: the configured origin, and nowhere else.

:class:`Credentials` holds everything secret a session may send (the Comfy Cloud API key, a
bearer token or basic-auth pair for a proxy, custom headers, the ``comfy-user`` of multi-user
servers) and decides, per URL, which headers a request carries: all of them for the configured
origin (scheme, host and port), **none** for any other origin (design invariant 10). It also
lists the secret strings that logs and error texts must never show.

This module does no I/O and imports no HTTP library; ``_http`` asks it for headers.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Final

from comfy_async.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from yarl import URL

__all__ = ["Credentials", "origin_of"]

API_KEY_HEADER: Final = "X-API-Key"
USER_HEADER: Final = "comfy-user"
# Headers a caller may not set: Origin makes a local server answer 403 (protocol doc §1), and the
# others are ours to compute.
_FORBIDDEN_HEADERS: Final = frozenset({"origin", "host", "content-length", "x-api-key"})
_MIN_SECRET: Final = 8
_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def origin_of(url: URL) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``; default ports filled in, ``ws[s]`` read as http(s)."""
    scheme = {"ws": "http", "wss": "https"}.get(url.scheme, url.scheme)
    port = url.port if url.port is not None else _DEFAULT_PORTS.get(url.scheme)
    return scheme, (url.host or "").lower(), port


class Credentials:
    """The secrets of one session, scoped to one origin.

    ``api_key`` goes out as ``X-API-Key`` (Comfy Cloud); ``bearer_token`` and ``basic_auth`` as
    ``Authorization`` (a proxy in front of a self-hosted server); ``headers`` are added as given
    (``Origin`` is refused: a local server answers it with 403); ``user`` selects the user of a
    ``--multi-user`` server. ``repr()`` names which kinds are set, never a value.
    """

    __slots__ = ("_headers", "_origin", "_secrets", "api_key", "user")

    def __init__(
        self,
        origin: URL,
        *,
        api_key: str | None = None,
        bearer_token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        user: str | None = None,
    ) -> None:
        if bearer_token is not None and basic_auth is not None:
            raise ConfigurationError("pass either bearer_token or basic_auth, not both")
        extra = dict(headers or {})
        for name in extra:
            if name.lower() in _FORBIDDEN_HEADERS:
                raise ConfigurationError(f"the header {name!r} cannot be set (it is never sent)")
            if name.lower() == "authorization" and (bearer_token or basic_auth):
                raise ConfigurationError("Authorization is set twice (header and token/basic)")
        if bearer_token is not None:
            extra["Authorization"] = f"Bearer {bearer_token}"
        elif basic_auth is not None:
            login, secret = basic_auth
            if ":" in login:
                raise ConfigurationError("a basic-auth login cannot contain ':'")
            token = base64.b64encode(f"{login}:{secret}".encode()).decode("ascii")
            extra["Authorization"] = f"Basic {token}"
        if user is not None:
            extra[USER_HEADER] = user
        self._origin = origin_of(origin)
        self._headers = extra
        self.api_key = api_key or None
        self.user = user
        # Custom header values count as secrets (proxy tokens) unless too short to be one:
        # redacting "1" everywhere would garble messages and hide nothing.
        custom = [value for value in (headers or {}).values() if len(value) >= _MIN_SECRET]
        password = basic_auth[1] if basic_auth else None
        given = (api_key, bearer_token, password, extra.get("Authorization"))
        found = (*(value for value in given if value is not None and len(value) >= 4), *custom)
        # Sorted once (longest first, for redact_text): read on every request.
        self._secrets: tuple[str, ...] = tuple(sorted(set(found), key=len, reverse=True))

    def __repr__(self) -> str:
        kinds = [name for name, value in (("api_key", self.api_key),) if value]
        kinds += [name for name in self._headers if name != USER_HEADER]
        return f"<Credentials {', '.join(kinds) or 'none'}>"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret string, for :func:`~comfy_async.errors.redact_text` (longest first)."""
        return self._secrets

    def is_home(self, url: URL) -> bool:
        """Whether ``url`` is on the configured origin (the only place credentials go)."""
        return origin_of(url) == self._origin

    def headers_for(self, url: URL) -> dict[str, str]:
        """The credential headers a request to ``url`` carries: all at home, none elsewhere."""
        if not self.is_home(url):
            return {}
        headers = dict(self._headers)
        if self.api_key:
            headers[API_KEY_HEADER] = self.api_key
        return headers

    def ws_headers(self) -> dict[str, str]:
        """Headers for the WebSocket handshake: proxy credentials and the user, never ``Origin``.

        The Cloud key is not among them: Comfy Cloud takes it as the ``token`` query parameter.
        """
        return dict(self._headers)
