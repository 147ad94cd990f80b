"""Routes as data: every endpoint of the server surface, and how local and Cloud servers differ.

A :class:`Route` is a method, a path template and whether repeating it is safe. A
:class:`RouteTable` maps endpoint names to routes for one server flavour and carries what else
differs between flavours (path prefix, authentication style, WebSocket path and credential,
``/view`` redirects, parallel execution). :data:`LOCAL` and :data:`CLOUD` are the two tables;
the REST namespaces look routes up by name and never branch on the flavour (design §5).

Facts behind the tables: protocol doc §1 (``/api`` prefix; ``/internal`` is not prefixed; the
jobs API is defined with ``/api`` already), §2 (routes), §8 (Cloud renames and omissions).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from comfy_async.errors import ConfigurationError, UnsupportedOperationError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["CLOUD", "LOCAL", "AuthStyle", "CompiledRoute", "Route", "RouteTable"]


class AuthStyle(enum.Enum):
    """How a server flavour authenticates requests."""

    NONE = "none"
    """Local ComfyUI: no credentials (a proxy may still want a token or basic auth)."""
    API_KEY = "api_key"
    """Comfy Cloud: ``X-API-Key`` on HTTP requests, ``token`` in the WebSocket query string."""


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    """A route with its parameters filled in: what the request path layer sends."""

    name: str
    method: str
    path: str
    idempotent: bool


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint: method, path template (``{name}`` placeholders), and retry safety.

    ``prefixed=False`` marks routes that are not served under ``/api`` (``/internal/*``).
    ``idempotent`` says whether repeating the request after an ambiguous failure is harmless;
    only such requests are retried by default.
    """

    method: str
    template: str
    idempotent: bool = True
    prefixed: bool = True

    def compile(self, name: str, prefix: str, params: Mapping[str, object]) -> CompiledRoute:
        """Fill the placeholders (each value URL-encoded as one path segment) and add ``prefix``."""
        try:
            path = self.template.format_map(
                {key: quote(str(value), safe="") for key, value in params.items()}
            )
        except KeyError as exc:
            raise ConfigurationError(f"route {name} needs the parameter {exc.args[0]!r}") from None
        if self.prefixed:
            path = prefix + path
        return CompiledRoute(name=name, method=self.method, path=path, idempotent=self.idempotent)


def _get(template: str, *, prefixed: bool = True) -> Route:
    return Route("GET", template, idempotent=True, prefixed=prefixed)


def _post(template: str, *, idempotent: bool) -> Route:
    return Route("POST", template, idempotent=idempotent)


# Every route of protocol doc §2.1–2.5, by endpoint name. Paths are written without the /api
# prefix; the table adds it.
_LOCAL_ROUTES: Final[dict[str, Route]] = {
    # §2.1 prompt, queue, execution
    "prompt.submit": _post("/prompt", idempotent=False),
    "prompt.info": _get("/prompt"),
    "queue.get": _get("/queue"),
    "queue.update": _post("/queue", idempotent=True),
    # A global interrupt repeated late could stop the next prompt: never retried.
    "interrupt": _post("/interrupt", idempotent=False),
    "history.list": _get("/history"),
    "history.get": _get("/history/{prompt_id}"),
    "history.update": _post("/history", idempotent=True),
    "free": _post("/free", idempotent=True),
    "jobs.list": _get("/jobs"),
    "jobs.get": _get("/jobs/{job_id}"),
    "jobs.cancel": _post("/jobs/{job_id}/cancel", idempotent=True),
    "jobs.cancel_many": _post("/jobs/cancel", idempotent=True),
    # §2.2 files (an identical re-upload returns the existing name, so retrying is harmless)
    "upload.image": _post("/upload/image", idempotent=True),
    "upload.mask": _post("/upload/mask", idempotent=True),
    "view": _get("/view"),
    "view_metadata": _get("/view_metadata/{folder}"),
    # §2.3 introspection
    "object_info.all": _get("/object_info"),
    "object_info.get": _get("/object_info/{node_class}"),
    "system_stats": _get("/system_stats"),
    "features": _get("/features"),
    "embeddings": _get("/embeddings"),
    "extensions": _get("/extensions"),
    "models.folders": _get("/models"),
    "models.files": _get("/models/{folder}"),
    "experiment_models.folders": _get("/experiment/models"),
    "experiment_models.files": _get("/experiment/models/{folder}"),
    "experiment_models.preview": _get(
        "/experiment/models/preview/{folder}/{path_index}/{filename}"
    ),
    "node_replacements": _get("/node_replacements"),
    "global_subgraphs.list": _get("/global_subgraphs"),
    "global_subgraphs.get": _get("/global_subgraphs/{subgraph_id}"),
    "workflow_templates": _get("/workflow_templates"),
    "i18n": _get("/i18n"),
    # §2.4 users, settings, user data
    "users.get": _get("/users"),
    "users.create": _post("/users", idempotent=False),
    "settings.all": _get("/settings"),
    "settings.get": _get("/settings/{setting_id}"),
    "settings.update": _post("/settings", idempotent=True),
    "settings.set": _post("/settings/{setting_id}", idempotent=True),
    "userdata.list": _get("/userdata"),
    "userdata.list_v2": _get("/v2/userdata"),
    "userdata.get": _get("/userdata/{file}"),
    "userdata.put": _post("/userdata/{file}", idempotent=True),
    "userdata.delete": Route("DELETE", "/userdata/{file}", idempotent=True),
    "userdata.move": _post("/userdata/{file}/move/{dest}", idempotent=False),
    # §2.5 internal (frontend-only, not under /api)
    "internal.logs": _get("/internal/logs", prefixed=False),
    "internal.logs_raw": _get("/internal/logs/raw", prefixed=False),
    "internal.logs_subscribe": Route(
        "PATCH", "/internal/logs/subscribe", idempotent=True, prefixed=False
    ),
    "internal.folder_paths": _get("/internal/folder_paths", prefixed=False),
    "internal.files": _get("/internal/files/{directory}", prefixed=False),
    # ComfyUI-Manager 4 (a separate package, `--enable-manager`), under /api like every route of
    # the server. Queueing a task is not idempotent (a resend installs twice); starting the
    # worker is (201 when it already runs). The legacy 3.x version route is probed only to say
    # why the v4 API is missing.
    "manager.version": _get("/v2/manager/version"),
    "manager.legacy_version": _get("/manager/version"),
    "manager.queue_task": _post("/v2/manager/queue/task", idempotent=False),
    "manager.queue_install_model": _post("/v2/manager/queue/install_model", idempotent=False),
    "manager.queue_start": _post("/v2/manager/queue/start", idempotent=True),
    "manager.queue_status": _get("/v2/manager/queue/status"),
    "manager.queue_history": _get("/v2/manager/queue/history"),
    "manager.installed": _get("/v2/customnode/installed"),
    "manager.reboot": _post("/v2/manager/reboot", idempotent=False),
}

# Comfy Cloud (§8): history is listed through history_v2, there is no /models (the experiment
# routes replace it), a deprecated raw job-status route exists, and neither /internal nor
# ComfyUI-Manager is served.
_CLOUD_ROUTES: Final[dict[str, Route]] = {
    **{
        name: route
        for name, route in _LOCAL_ROUTES.items()
        if not name.startswith(("internal.", "manager."))
    },
    "history.list": _get("/history_v2"),
    "history.get": _get("/history_v2/{prompt_id}"),
    "models.folders": _get("/experiment/models"),
    "models.files": _get("/experiment/models/{folder}"),
    "job_status": _get("/job/{job_id}/status"),
}


# Routes without path parameters, compiled once per table (read on every request).
_PLAIN: dict[tuple[int, str], tuple[RouteTable, CompiledRoute]] = {}


@dataclass(frozen=True, slots=True)
class RouteTable:
    """The routes and conventions of one server flavour.

    Attributes:
        flavour: ``"local"`` or ``"cloud"``, for messages.
        prefix: prepended to every prefixed route (``/api``).
        auth: how requests authenticate.
        ws_path: the WebSocket path (not prefixed: Cloud documents ``/ws``, local serves both).
        view_redirects: ``/view`` answers with a redirect to a signed URL on another origin.
        parallel_jobs: several prompts of one client may run at once (events interleave).
        finish_marker: the server sends ``executing{node: null}`` after writing history; where it
            does not (Cloud documents only ``execution_success``/``execution_error``), a job
            settles on its terminal event.
        jobs_sort_fields: the ``sort_by`` names the jobs list accepts (they differ, §2.1/§8).
        routes: endpoint name → route.

    """

    flavour: str
    prefix: str
    auth: AuthStyle
    ws_path: str
    view_redirects: bool
    parallel_jobs: bool
    finish_marker: bool
    jobs_sort_fields: Mapping[str, str]
    routes: Mapping[str, Route] = field(repr=False)

    def route(self, name: str, /, **params: object) -> CompiledRoute:
        """Return the endpoint ``name`` with its path parameters filled in.

        Raises:
            UnsupportedOperationError: this flavour has no such endpoint.
            ConfigurationError: a path parameter is missing.

        """
        if not params:
            cached = _PLAIN.get((id(self), name))
            if cached is not None and cached[0] is self:
                return cached[1]
        try:
            route = self.routes[name]
        except KeyError:
            raise UnsupportedOperationError(name, self.flavour) from None
        compiled = route.compile(name, self.prefix, params)
        if not params:
            _PLAIN[id(self), name] = (self, compiled)
        return compiled

    def has(self, name: str) -> bool:
        """Whether this flavour serves the endpoint ``name``."""
        return name in self.routes


LOCAL: Final = RouteTable(
    flavour="local",
    prefix="/api",
    auth=AuthStyle.NONE,
    ws_path="/ws",
    view_redirects=False,
    parallel_jobs=False,
    finish_marker=True,
    jobs_sort_fields=MappingProxyType({"created": "created_at", "duration": "execution_duration"}),
    routes=MappingProxyType(_LOCAL_ROUTES),
)
"""A self-hosted ComfyUI (every route also answers under ``/api``, which the frontend uses)."""

CLOUD: Final = RouteTable(
    flavour="cloud",
    prefix="/api",
    auth=AuthStyle.API_KEY,
    ws_path="/ws",
    view_redirects=True,
    parallel_jobs=True,
    finish_marker=False,
    jobs_sort_fields=MappingProxyType({"created": "create_time", "duration": "execution_time"}),
    routes=MappingProxyType(_CLOUD_ROUTES),
)
"""Comfy Cloud (``https://cloud.comfy.org``): ``/api`` only, API key, redirects on ``/view``."""
