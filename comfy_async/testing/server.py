"""``FakeComfyServer``: an in-process ComfyUI (or Comfy Cloud) for tests, on aiohttp's web server.

Usage::

    async with FakeComfyServer(time_scale=0.01) as server:
        async with aiohttp.ClientSession() as http:
            await http.post(f"{server.url}/api/prompt", json={"prompt": graph, "client_id": "me"})
        ...  # connect to server.ws_url("me") to see the events

The server binds a loopback address (port 0 picks a free port; :meth:`FakeComfyServer.restart`
reuses the port and, like a real in-memory server, loses the queue, history and cache). It
serves every route of protocol doc §2 with and without the ``/api`` prefix exactly as a real
server mounts them (``/api/jobs`` also as ``/api/api/jobs``; ``/internal`` unprefixed only), the
WebSocket at ``/ws`` and ``/api/ws``, and simulates execution (``comfy_async.testing.behaviours``).
``manager=True`` adds ComfyUI-Manager 4 (``comfy_async.testing._comfyui_manager``).
``flavour="cloud"`` serves the Comfy Cloud variant (``/api`` only, API key, signed ``/view``
redirects to a second origin, several jobs at once). Fault knobs live on :attr:`faults`.

This module owns the server's lifecycle and the wiring of routes, middlewares and state; the
behaviour of each route lives in the ``_routes_*`` modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ipaddress
import json
import random
import secrets
import shutil
import tempfile
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from comfy_async._graph.validation import CatalogueValidator
from comfy_async.errors import ConfigurationError
from comfy_async.testing._cloud import SignedOrigin, auth_middleware, view_redirect
from comfy_async.testing._comfyui_manager import (
    EXAMPLE_PACK_NODES,
    EXAMPLE_PACK_URL,
    TEMPLATE_NODE,
    FakeManager,
)
from comfy_async.testing._context import ServerContext
from comfy_async.testing._executor import Executor
from comfy_async.testing._files import FileStore
from comfy_async.testing._gpu import Gpu
from comfy_async.testing._hub import Hub
from comfy_async.testing._responses import empty, text
from comfy_async.testing._routes_misc import misc_routes
from comfy_async.testing._routes_prompt import prompt_routes
from comfy_async.testing._specs import Handler, PromptRecord, RouteSpec
from comfy_async.testing._store import History, PromptQueue
from comfy_async.testing.behaviours import BehaviourRegistry
from comfy_async.testing.faults import Faults
from comfy_async.testing.models import (
    DEFAULT_MODELS,
    ModelInventory,
    check_inventory,
    with_inventory,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from types import TracebackType

    from comfy_async.testing.behaviours import BehaviourSource
    from comfy_async.testing.validation import PromptValidator

__all__ = [
    "DEFAULT_MAX_UPLOAD_SIZE",
    "EXAMPLE_PACK_NODES",
    "EXAMPLE_PACK_URL",
    "FakeComfyServer",
    "PromptRecord",
    "RouteSpec",
]

DEFAULT_MAX_UPLOAD_SIZE = 100 * 1024 * 1024
_DEFAULT_OBJECT_INFO: tuple[bytes, dict[str, dict[str, object]]] | None = None


def _load_object_info(source: str | Path | Mapping[str, object] | None) -> tuple[bytes, Any]:
    global _DEFAULT_OBJECT_INFO  # noqa: PLW0603 - parsed once per process, read-only after
    if source is None:
        if _DEFAULT_OBJECT_INFO is None:
            data = resources.files("comfy_async.testing").joinpath("data/object_info.json.gz")
            raw = gzip.decompress(data.read_bytes())
            _DEFAULT_OBJECT_INFO = (raw, _parse_json(raw))
        return _DEFAULT_OBJECT_INFO
    if isinstance(source, (str, Path)):
        raw = Path(source).read_bytes()
        if str(source).endswith(".gz"):
            raw = gzip.decompress(raw)
        return raw, _parse_json(raw)
    # json, not orjson: custom nodes publish integer bounds beyond 64 bits (§4.6)
    return json.dumps(source).encode(), dict(source)


_DEFAULT_CATALOGUE: tuple[bytes, Any] | None = None


def _read_catalogue(source: str | Path | Mapping[str, object] | None) -> dict[str, Any]:
    try:
        _, parsed = _load_object_info(source)
    except OSError as error:
        raise ConfigurationError(f"cannot read the object_info file {source}: {error}") from None
    except ValueError as error:
        raise ConfigurationError(f"the object_info {source} is not JSON: {error}") from None
    if not isinstance(parsed, dict) or not all(isinstance(v, dict) for v in parsed.values()):
        where = f" {source}" if isinstance(source, (str, Path)) else ""
        raise ConfigurationError(
            f"the object_info{where} is not a mapping of node class names to their schemas"
        )
    return parsed


def _catalogue(
    source: str | Path | Mapping[str, object] | None,
    models: Mapping[str, tuple[str, ...]],
    extra: Sequence[str | Path | Mapping[str, object]] = (),
) -> tuple[bytes, Any]:
    """The ``/object_info`` a server serves: ``source`` plus ``extra``, loaders listing ``models``.

    Each ``extra`` catalogue (a custom node pack's dump, say) adds its classes, replacing a
    class of the same name.
    """
    global _DEFAULT_CATALOGUE  # noqa: PLW0603 - built once per process, read-only after
    default = source is None and not extra and models == dict(DEFAULT_MODELS)
    if default and _DEFAULT_CATALOGUE is not None:
        return _DEFAULT_CATALOGUE
    parsed = _read_catalogue(source)
    if extra:
        parsed = dict(parsed)
        for more in extra:
            parsed.update(_read_catalogue(more))
    listed = with_inventory(parsed, models)
    # json, not orjson: custom nodes publish integer bounds beyond 64 bits (§4.6)
    built = (json.dumps(listed).encode(), listed)
    if default:
        _DEFAULT_CATALOGUE = built
    return built


def _parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:  # integers beyond 64 bits: the standard library copes
        return json.loads(raw)


def _server_info() -> dict[str, Any]:
    data = resources.files("comfy_async.testing").joinpath("data/server_info.json")
    return orjson.loads(data.read_bytes())  # type: ignore[no-any-return]


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the fake server binds loopback addresses only, not {host!r}")


class FakeComfyServer:
    """A fake ComfyUI / Comfy Cloud server (see the module docstring).

    Args:
        flavour: ``"local"`` (self-hosted ComfyUI) or ``"cloud"`` (Comfy Cloud).
        host: a loopback address to bind.
        port: ``0`` for a free port (the real one is :attr:`port` after start).
        api_key: the Cloud key (required on Cloud; a random one when ``None``).
        object_info: the node catalogue: a path (``.json`` or ``.json.gz``), a mapping, or
            ``None`` for the recorded real-server catalogue (890 classes incl. probe nodes).
        extra_nodes: more catalogues (paths or mappings, e.g. a custom node pack's
            ``/object_info``) whose classes are added to ``object_info``, so a workflow using
            them runs; a class without a registered behaviour is simulated from its schema.
        models: the model inventory, folder → file names (default:
            :data:`~comfy_async.testing.models.DEFAULT_MODELS`); served by ``/models/{folder}``
            and listed by every loader's combo input, so validation accepts exactly these.
        speed: how fast this box is: every node takes ``duration / speed`` (a 2.0 server runs
            twice as fast), model loads included; a mixed fleet is a few servers of each.
        load_time: seconds a model not in VRAM takes to load (before ``time_scale``/``speed``).
        vram_budget: bytes of VRAM for warm models; the least recently used model is evicted to
            make room (``/free`` with ``unload_models`` unloads all). :attr:`warm_models` and
            :attr:`model_loads` show the state; ``/system_stats`` reports the VRAM in use.
        time_scale: multiplies every simulated duration (``0`` runs as fast as possible).
        behaviours: ``class_type`` → behaviour registrations (see ``behaviours``).
        node_durations: ``class_type`` → seconds, overriding only the duration.
        default_duration: seconds for nodes without a registered or derived behaviour.
        sampler_duration: seconds for nodes with a ``steps`` input.
        history_max_items: history cap (oldest evicted; a real server keeps 10,000).
        max_upload_size: request body limit (413 above it).
        validator: the graph validator (default: the library's own offline validator,
            :class:`~comfy_async._graph.validation.CatalogueValidator`, which answers every
            validation error as the real server does; :class:`~.validation.TopLevelValidator`
            checks only unknown classes and missing outputs).
        cloud_concurrency: prompts running at once on Cloud.
        orphaning_bug: reproduce the reconnect-orphaning bug (protocol doc §3.1).
        sequential_sends: send to sockets one after another (a stalled reader stalls everyone).
        ws_send_buffer: when set, the socket send buffer and write-buffer limit of every
            WebSocket in bytes (small values make flow control bite quickly).
        base_dir: where input/output/temp/user live (a temporary folder, removed on close,
            when ``None``).
        redirect_host: the loopback address of the Cloud signed-URL origin.
        seed: seeds the random parts (temp file prefix) for reproducible names.
        manager: serve ComfyUI-Manager 4 (``/v2/manager/*``): an install queue whose installed
            node packs join ``/object_info`` and whose models join the inventory when their task
            finishes; a reboot restarts the server (installed packs stay).
        manager_packs: the packs the Manager can install: git URL or registry id → node class
            names (default: :data:`EXAMPLE_PACK_URL` with ``ExamplePackInvert``); any other
            source fails as the real Manager fails on a pack its channel does not list.
        manager_task_duration: seconds one Manager task takes (times ``time_scale``).
        manager_load_at_start: installed packs' nodes join ``/object_info`` only at the next
            start (a Manager reboot or :meth:`restart`), as on a real server; by default they
            join as soon as their task finishes.
        manager_reboot_time: seconds a Manager reboot keeps the server down (times
            ``time_scale``), its port closed, before it serves again.

    """

    def __init__(
        self,
        *,
        flavour: Literal["local", "cloud"] = "local",
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        object_info: str | Path | Mapping[str, object] | None = None,
        extra_nodes: Sequence[str | Path | Mapping[str, object]] = (),
        models: ModelInventory | None = None,
        speed: float = 1.0,
        load_time: float = 0.0,
        vram_budget: int = 24 * 1024**3,
        time_scale: float = 1.0,
        behaviours: Mapping[str, BehaviourSource] | None = None,
        node_durations: Mapping[str, float] | None = None,
        default_duration: float = 0.0,
        sampler_duration: float = 1.0,
        history_max_items: int = 10_000,
        max_upload_size: int = DEFAULT_MAX_UPLOAD_SIZE,
        validator: PromptValidator | None = None,
        cloud_concurrency: int = 3,
        orphaning_bug: bool = True,
        sequential_sends: bool = True,
        ws_send_buffer: int | None = None,
        base_dir: str | Path | None = None,
        redirect_host: str = "127.0.0.2",
        seed: int | None = None,
        manager: bool = False,
        manager_packs: Mapping[str, Iterable[str]] | None = None,
        manager_task_duration: float = 1.0,
        manager_load_at_start: bool = False,
        manager_reboot_time: float = 0.0,
    ) -> None:
        _check_loopback(host)
        _check_loopback(redirect_host)
        if flavour not in {"local", "cloud"}:
            raise ValueError(f"flavour must be 'local' or 'cloud', not {flavour!r}")
        if manager and flavour == "cloud":
            raise ConfigurationError("Comfy Cloud has no ComfyUI-Manager")
        if manager_reboot_time < 0:
            raise ConfigurationError(
                f"manager_reboot_time must not be negative, got {manager_reboot_time!r}"
            )
        self.manager_reboot_time = manager_reboot_time
        if manager_task_duration < 0:
            raise ConfigurationError(
                f"manager_task_duration must not be negative, got {manager_task_duration!r}"
            )
        self.flavour = flavour
        self.host = host
        self._port = port
        self.api_key = api_key or ("fake-" + secrets.token_hex(8))
        self._info = _server_info()
        #: The model inventory: folder → file names (see :mod:`comfy_async.testing.models`).
        self.models = check_inventory(
            DEFAULT_MODELS if models is None else models, self._info["model_folders"]
        )
        self._object_info_bytes, self._object_info = _catalogue(
            object_info, self.models, extra_nodes
        )
        self.time_scale = time_scale
        if speed <= 0:
            raise ConfigurationError(f"speed must be positive, got {speed!r}")
        if load_time < 0:
            raise ConfigurationError(f"load_time must not be negative, got {load_time!r}")
        self.speed = speed
        self.load_time = load_time
        self._gpu = Gpu(vram_budget)
        self.behaviours = BehaviourRegistry(
            self._object_info, default_duration=default_duration, sampler_duration=sampler_duration
        )
        for class_type, behaviour in (behaviours or {}).items():
            self.behaviours.register(class_type, behaviour)
        for class_type, seconds in (node_durations or {}).items():
            self.behaviours.set_duration(class_type, seconds)
        self.history_max_items = history_max_items
        self.max_upload_size = max_upload_size
        self._validator: PromptValidator = validator or CatalogueValidator()
        self.cloud_concurrency = cloud_concurrency
        self.ws_send_buffer = ws_send_buffer
        self.redirect_host = redirect_host
        self._owns_base = base_dir is None
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="comfy-fake-")).resolve()
        self._rng = random.Random(seed)  # noqa: S311 - file names, not secrets
        self.faults = Faults(
            lambda: self._ctx.hub if self._ctx else None,
            orphaning_bug=orphaning_bug,
            sequential=sequential_sends,
        )
        #: ``"METHOD /template"`` → requests served (``/api`` prefix not part of the key).
        self.request_counts: Counter[str] = Counter()
        #: Every ``POST /prompt`` received, in order (accepted or not).
        self.prompt_posts: list[PromptRecord] = []
        #: Every prompt id a targeted cancel named, in order: the jobs cancel routes (one or a
        #: batch), a queue ``delete`` and an interrupt naming a ``prompt_id``.
        self.cancel_requests: list[str] = []
        #: The query of every ``GET /history`` listing (``{}`` for the whole, unbounded history).
        self.history_listings: list[dict[str, str]] = []
        #: Every prompt that ended here, in order, across restarts: ``(prompt_id, outcome)``
        #: with outcome ``"success"``, ``"error"`` or ``"interrupted"`` (a pool test checks
        #: that no prompt ran to success twice, on one server or on several).
        self.finished: list[tuple[str, str]] = []
        self._files = FileStore(self.base_dir, rng=self._rng)
        self._ctx: ServerContext | None = None
        self._runner: web.AppRunner | None = None
        self._origin: SignedOrigin | None = None
        self._reboot: asyncio.Task[None] | None = None
        self._manager: FakeManager | None = None
        if manager:
            packs = manager_packs
            if packs is None:
                packs = {EXAMPLE_PACK_URL: EXAMPLE_PACK_NODES}
            template = self._object_info.get(TEMPLATE_NODE)
            self._manager = FakeManager(
                packs,
                task_duration=manager_task_duration,
                on_change=self._extend_catalogue,
                on_reboot=self._schedule_reboot,
                models=self.models,
                model_folders=self._info["model_folders"],
                template=template if isinstance(template, dict) else None,
                load_at_start=manager_load_at_start,
            )

    # ------------------------------------------------------------------ public surface

    @property
    def warm_models(self) -> list[tuple[str, str]]:
        """The models in VRAM as ``(folder, name)``, least recently used first."""
        return self._gpu.warm

    @property
    def model_loads(self) -> int:
        """How many cold model loads this server has made."""
        return self._gpu.loads

    @property
    def object_info(self) -> Mapping[str, Any]:
        """The node catalogue this server serves, its loaders listing the model inventory."""
        catalogue: Mapping[str, Any] = self._object_info
        return catalogue

    @property
    def manager_installed(self) -> dict[str, dict[str, Any]]:
        """ComfyUI-Manager: the installed node packs, as ``/v2/customnode/installed`` lists them."""
        return dict(self._manager.installed) if self._manager is not None else {}

    @property
    def manager_tasks(self) -> list[dict[str, Any]]:
        """ComfyUI-Manager: every task body received, in order."""
        return list(self._manager.received) if self._manager is not None else []

    @property
    def manager_reboots(self) -> int:
        """ComfyUI-Manager: how many reboots were asked for."""
        return self._manager.reboots if self._manager is not None else 0

    @property
    def validator(self) -> PromptValidator:
        """The graph validator (settable at any time; see ``comfy_async.testing.validation``)."""
        return self._validator

    @validator.setter
    def validator(self, validator: PromptValidator) -> None:
        self._validator = validator
        if self._ctx is not None:
            self._ctx.validator = validator

    @property
    def cloud(self) -> bool:
        """Whether this is the Comfy Cloud flavour."""
        return self.flavour == "cloud"

    @property
    def port(self) -> int:
        """The bound port (the requested one before start)."""
        return self._port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8188``."""
        return f"http://{self.host}:{self._port}"

    def ws_url(self, client_id: str | None = None, *, path: str = "/ws") -> str:
        """The WebSocket URL for ``client_id`` (with the ``token`` on Cloud)."""
        params = []
        if client_id is not None:
            params.append(f"clientId={client_id}")
        if self.cloud:
            params.append(f"token={self.api_key}")
        query = "?" + "&".join(params) if params else ""
        return f"ws://{self.host}:{self._port}{path}{query}"

    @property
    def headers(self) -> dict[str, str]:
        """Headers a client needs on HTTP requests (the API key on Cloud)."""
        return {"X-API-Key": self.api_key} if self.cloud else {}

    @property
    def signed_url_requests(self) -> list[dict[str, str]]:
        """Cloud: the headers of every request the signed-URL origin received."""
        return self._origin.requests if self._origin is not None else []

    def posts_for(self, prompt_id: str) -> int:
        """How many ``POST /prompt`` requests were accepted with this prompt id."""
        return sum(1 for record in self.prompt_posts if record.prompt_id == prompt_id)

    @property
    def queue_remaining(self) -> int:
        """Pending plus running prompts."""
        return self._context.queue.remaining

    @property
    def slow_socket_drops(self) -> int:
        """Frames dropped for slow sockets (only with ``sequential_sends`` off)."""
        return self._context.hub.dropped

    @property
    def _context(self) -> ServerContext:
        if self._ctx is None:
            raise RuntimeError("the fake server is not running")
        return self._ctx

    async def wait_idle(self, limit: float = 10.0) -> None:
        """Wait until nothing is queued or running and every queued frame was handed out."""
        async with asyncio.timeout(limit):
            while True:
                ctx = self._context
                if ctx.queue.remaining == 0 and ctx.hub.backlog == 0:
                    return
                await asyncio.sleep(0.005)

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Bind and serve (the port chosen at the first start is kept for restarts)."""
        if self._runner is not None:
            raise RuntimeError("the fake server is already running")
        if self.cloud and self._origin is None:
            self._origin = SignedOrigin(self._files, self.redirect_host)
            await self._origin.start()
        ctx = self._build_context()
        await self._serve(ctx)
        ctx.hub.start()
        ctx.executor.start()

    async def _serve(self, ctx: ServerContext) -> None:
        app = web.Application(
            client_max_size=self.max_upload_size, middlewares=self._middlewares(ctx)
        )
        routes = [*prompt_routes(ctx, PromptRecord), *misc_routes(ctx)]
        if self._manager is not None:
            self._manager.new_run()
            routes += self._manager.routes(ctx, self.time_scale)
        for route in routes:
            spec = route
            if self.cloud and spec.template == "/view" and self._origin is not None:
                spec = RouteSpec("GET", "/view", view_redirect(self._files, self._origin))
            handler = self._counted(ctx, spec)
            for path in spec.paths(cloud=self.cloud):
                app.router.add_route(spec.method, path, handler)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port, reuse_address=True)
        await site.start()
        self._port = runner.addresses[0][1]
        self._runner, self._ctx = runner, ctx

    async def suspend(self) -> None:
        """Freeze the box, as a stopped VM or a partition: it serves nothing and runs nothing.

        The port is closed and every socket cut; the queue, the history and the prompt it was
        running are kept, frozen before their next node or step. :meth:`resume` thaws it.
        """
        ctx, runner = self._context, self._runner
        ctx.executor.pause()
        await ctx.hub.close(abort=True)
        self._runner = None
        if runner is not None:
            await runner.cleanup()

    async def resume(self, *, run_after: float = 0.0) -> None:
        """Serve again on the same port with the queue it had; run again after ``run_after`` s.

        A box whose HTTP comes back before its worker goes on: in between, a client can clear
        from its queue what it moved elsewhere.
        """
        ctx = self._context
        if self._runner is not None:
            raise RuntimeError("the fake server is not suspended")
        await self._serve(ctx)
        ctx.hub.start()
        if run_after > 0:
            asyncio.get_running_loop().call_later(run_after, ctx.executor.resume)
        else:
            ctx.executor.resume()

    async def close(self) -> None:
        """Stop serving (sockets get a close frame) and remove the temporary folder."""
        reboot, self._reboot = self._reboot, None
        if reboot is not None:
            await reboot
        await self._stop(abort=False)
        if self._origin is not None:
            await self._origin.close()
            self._origin = None
        if self._owns_base:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    async def restart(self, *, down_for: float = 0.0) -> None:
        """Die and come back on the same port: sockets are cut, queue/history/cache lost.

        ``down_for``: seconds the port stays closed in between.
        """
        await self._stop(abort=True)
        self._files.clear_temp()
        if down_for > 0:
            await asyncio.sleep(down_for)
        await self.start()

    async def _stop(self, *, abort: bool) -> None:
        ctx, runner = self._ctx, self._runner
        self._ctx, self._runner = None, None
        if self._manager is not None:
            await self._manager.close()
        if ctx is not None:
            await ctx.executor.close()
            await ctx.hub.close(abort=abort)
        if runner is not None:
            await runner.cleanup()

    # ------------------------------------------------------------------ wiring

    def _build_context(self) -> ServerContext:
        hub = Hub(
            cloud=self.cloud,
            orphaning_bug=self.faults.orphaning_bug,
            sequential=self.faults.sequential_sends,
            features=self._features(),
            send_buffer=self.ws_send_buffer,
        )
        queue = PromptQueue(on_change=lambda: None)
        history = History(self.history_max_items)
        holder: list[ServerContext] = []
        executor = Executor(
            queue=queue,
            history=history,
            hub=hub,
            files=self._files,
            behaviours=self.behaviours,
            time_scale=self.time_scale,
            cloud=self.cloud,
            concurrency=self.cloud_concurrency,
            log=lambda line: holder[0].log(line),  # noqa: PLW0108 - bound later
            gpu=self._gpu,
            speed=self.speed,
            load_time=self.load_time,
        )
        executor.finished = self.finished  # kept across restarts
        ctx = ServerContext(
            cloud=self.cloud,
            api_key=self.api_key,
            features=self._features(),
            object_info=self._object_info,
            object_info_bytes=self._object_info_bytes,
            info=self._info,
            max_upload_size=self.max_upload_size,
            queue=queue,
            history=history,
            hub=hub,
            executor=executor,
            files=self._files,
            faults=self.faults,
            validator=self._validator,
            behaviours=self.behaviours,
            prompt_posts=self.prompt_posts,
            cancel_requests=self.cancel_requests,
            history_listings=self.history_listings,
            request_counts=self.request_counts,
            models=self.models,
        )
        holder.append(ctx)

        def announce() -> None:
            from comfy_async.testing._hub import Target  # noqa: PLC0415

            hub.send("status", {"status": ctx.status()}, Target())

        queue.on_change = announce
        return ctx

    def _extend_catalogue(self, nodes: dict[str, Any], models: dict[str, tuple[str, ...]]) -> None:
        """Add installed nodes and models to ``/object_info`` and the model inventory."""
        self.models = models
        listed = with_inventory({**self._object_info, **nodes}, models)
        # json, not orjson: custom nodes publish integer bounds beyond 64 bits (§4.6)
        self._object_info, self._object_info_bytes = listed, json.dumps(listed).encode()
        if self._ctx is not None:
            self._ctx.object_info = listed
            self._ctx.object_info_bytes = self._object_info_bytes
            self._ctx.models = models

    def _schedule_reboot(self) -> None:
        """Restart as the Manager's reboot does (after the answer is on its way)."""
        if self._reboot is None or self._reboot.done():
            self._reboot = asyncio.get_running_loop().create_task(
                self.restart(down_for=self.manager_reboot_time * self.time_scale)
            )

    def _features(self) -> dict[str, object]:
        # ComfyUI always advertises supports_v4; the Manager 4.2.1+ adds supports_csrf_post.
        manager: dict[str, object] = {"supports_v4": True}
        if self._manager is not None:
            manager["supports_csrf_post"] = True
        return {
            "supports_preview_metadata": True,
            "supports_model_type_tags": True,
            "max_upload_size": self.max_upload_size,
            "extension": {"manager": manager},
            "node_replacements": True,
            "assets": False,
        }

    def _counted(self, ctx: ServerContext, spec: RouteSpec) -> Handler:
        key = f"{spec.method} {spec.template}"

        async def handler(request: web.Request) -> web.StreamResponse:
            ctx.request_counts[key] += 1
            fault = ctx.faults.take_route_fault(spec.method, spec.template)
            if fault is not None:
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.status is not None:
                    headers = {}
                    if fault.retry_after is not None:
                        headers["Retry-After"] = f"{fault.retry_after:g}"
                    return web.Response(status=fault.status, headers=headers)
            return await spec.handler(request)

        return handler

    def _middlewares(self, ctx: ServerContext) -> list[Any]:
        max_size = self.max_upload_size

        @web.middleware
        async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            if not ctx.cloud:
                if request.headers.get("Sec-Fetch-Site") == "cross-site":
                    return empty(403)
                host, origin = request.headers.get("Host"), request.headers.get("Origin")
                if host and origin and _is_loopback(host) and urlsplit(origin).netloc != host:
                    return empty(403)  # §1: a browser-style cross-site request
                if request.method == "OPTIONS":
                    return empty(200)
            try:
                return await handler(request)
            except web.HTTPRequestEntityTooLarge:
                return text(f"Maximum request body size {max_size} exceeded.", 413)
            except web.HTTPNotFound:
                return web.Response(status=404, content_type="application/octet-stream")

        middlewares: list[Any] = [guard]
        if self.cloud:
            middlewares.append(auth_middleware(self.api_key))
        return middlewares


def _is_loopback(host: str) -> bool:
    name = urlsplit(f"//{host}").hostname or ""
    if name == "localhost":
        return True
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(name).is_loopback
    return False
