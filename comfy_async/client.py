"""``ComfyClient``: the session object users hold, for a local ComfyUI or for Comfy Cloud.

A session owns one :class:`~comfy_async._http.HttpClient` (base URL, route table, credentials,
the aiohttp session) and exposes the REST surface as namespaces: ``prompts``, ``queue``,
``history``, ``jobs``, ``files``, ``system``, ``models``, ``userdata``, ``settings``, ``users``.
The live side (the WebSocket, ``submit()`` and ``Job`` handles) builds on the same HTTP client
and ``client_id``. The session never shows a secret: not in ``repr()``, logs or errors.

This module does no I/O of its own and does not import aiohttp at runtime.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Final, Literal, Self

from yarl import URL

from comfy_async._http import HttpClient
from comfy_async._rest import (
    Files,
    History,
    Jobs,
    Models,
    Prompts,
    Queue,
    Settings,
    System,
    UserData,
    Users,
)
from comfy_async._routes import CLOUD, LOCAL
from comfy_async.errors import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

    import aiohttp

    from comfy_async._routes import RouteTable
    from comfy_async.config import ClientOptions

__all__ = ["CLOUD_BASE_URL", "DEFAULT_BASE_URL", "ComfyClient", "Flavour"]

DEFAULT_BASE_URL: Final = "http://127.0.0.1:8188"
"""Where a local ComfyUI listens by default."""
CLOUD_BASE_URL: Final = "https://cloud.comfy.org"
"""Comfy Cloud's API."""

Flavour = Literal["local", "cloud"]
_TABLES: Final[dict[str, RouteTable]] = {"local": LOCAL, "cloud": CLOUD}


def _infer_flavour(base_url: str | URL, api_key: str | None) -> Flavour:
    """Cloud for a ``*.comfy.org`` host or when an API key is given; local otherwise."""
    host = (URL(str(base_url)).host or "").lower()
    if host == "comfy.org" or host.endswith(".comfy.org"):
        return "cloud"
    return "cloud" if api_key else "local"


class ComfyClient:
    """A session with one ComfyUI server or Comfy Cloud.

    ::

        async with ComfyClient("http://127.0.0.1:8188") as comfy:
            stats = await comfy.system.stats()

        async with ComfyClient.cloud(api_key=key) as comfy:
            page = await comfy.jobs.list(limit=10)

    Args:
        base_url: the server, optionally with a path prefix (a reverse proxy at ``/comfy/``).
        api_key: the Comfy Cloud key, sent as ``X-API-Key`` to ``base_url``'s origin only.
        flavour: ``"local"`` or ``"cloud"``; inferred from the host and ``api_key`` if omitted.
        options: timeouts, retries and the other session options.
        session: an aiohttp session to borrow (it is never closed by this client).
        headers: extra headers for every request to the server (never ``Origin``).
        bearer_token: ``Authorization: Bearer`` for a proxy in front of the server.
        basic_auth: ``(login, password)`` for a proxy in front of the server.
        user: the user of a ``--multi-user`` server (sent as ``comfy-user``).
        client_id: the id of this session's WebSocket and submits (default: a fresh uuid4 hex).
        jobs_api: whether the server has the jobs API (``None``: detected at first use).

    """

    def __init__(
        self,
        base_url: str | URL = DEFAULT_BASE_URL,
        *,
        api_key: str | None = None,
        flavour: Flavour | None = None,
        options: ClientOptions | None = None,
        session: aiohttp.ClientSession | None = None,
        headers: Mapping[str, str] | None = None,
        bearer_token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        user: str | None = None,
        client_id: str | None = None,
        jobs_api: bool | None = None,
    ) -> None:
        chosen = flavour or _infer_flavour(base_url, api_key)
        if chosen not in _TABLES:
            raise ConfigurationError(f"flavour must be 'local' or 'cloud', got {chosen!r}")
        self.client_id: str = client_id or uuid.uuid4().hex
        """This session's client id (WebSocket ``clientId`` and the ``client_id`` of submits)."""
        self._http = HttpClient(
            base_url,
            routes=_TABLES[chosen],
            options=options,
            session=session,
            api_key=api_key,
            bearer_token=bearer_token,
            basic_auth=basic_auth,
            headers=headers,
            user=user,
        )
        # ------------------------------------------------------------ REST namespaces
        http = self._http
        self.queue = Queue(http)
        """The server's queue: get, delete, clear, interrupt."""
        self.history = History(http)
        """Finished prompts: list, get, delete, clear."""
        self.jobs = Jobs(http, available=jobs_api)
        """The jobs API: list, get, cancel (absent on older servers)."""
        self.prompts = Prompts(http, jobs=self.jobs, queue=self.queue, history=self.history)
        """Submitting prompts (with reconciliation of ambiguous failures) and the queue size."""
        self.files = Files(http)
        """Uploads, ``/view`` streams, downloads and saving outputs safely."""
        self.system = System(http)
        """Stats, features, node schemas and server upkeep."""
        self.models = Models(http)
        """Model folders, files and previews."""
        self.userdata = UserData(http)
        """The user's data files."""
        self.settings = Settings(http)
        """The user's frontend settings."""
        self.users = Users(http)
        """The server's users (``--multi-user``)."""

    @classmethod
    def cloud(
        cls,
        *,
        api_key: str,
        base_url: str | URL = CLOUD_BASE_URL,
        options: ClientOptions | None = None,
        session: aiohttp.ClientSession | None = None,
        headers: Mapping[str, str] | None = None,
        client_id: str | None = None,
        jobs_api: bool | None = None,
    ) -> Self:
        """A session with Comfy Cloud (the other options are the constructor's)."""
        if not api_key:
            raise ConfigurationError("Comfy Cloud needs an API key (platform.comfy.org)")
        return cls(
            base_url,
            api_key=api_key,
            flavour="cloud",
            options=options,
            session=session,
            headers=headers,
            client_id=client_id,
            jobs_api=jobs_api,
        )

    def __repr__(self) -> str:
        closed = " closed" if self._http.closed else ""
        return f"<ComfyClient {self.flavour} {self.base_url} client_id={self.client_id}{closed}>"

    # ------------------------------------------------------------------ identity

    @property
    def base_url(self) -> str:
        """The server's base URL (with its path prefix, if any)."""
        return str(self._http.base_url)

    @property
    def flavour(self) -> Flavour:
        """``"local"`` or ``"cloud"``."""
        return "cloud" if self._http.routes is CLOUD else "local"

    @property
    def routes(self) -> RouteTable:
        """The route table of this server flavour."""
        return self._http.routes

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._http.closed

    # ------------------------------------------------------------------ lifecycle

    async def aclose(self) -> None:
        """Close the session: its own aiohttp session (a borrowed one stays open). Idempotent.

        Requests in flight fail with :class:`~comfy_async.errors.ClientClosedError` or a
        transport error; later calls raise ``ClientClosedError``. Cancelling the close still
        leaves the session closed to new requests.
        """
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
