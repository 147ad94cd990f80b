"""The fake server's ComfyUI-Manager 4: its routes, its install queue and worker, what it installed.

A :class:`FakeManager` lives as long as the :class:`~comfy_async.testing.FakeComfyServer`: what
it installed stays installed across restarts (it is on disk on a real box), while the queue and
the task history belong to one run (:class:`ManagerRun`, rebuilt at every start, as the real
Manager keeps them in memory). Installable packs are given as ``{git URL or registry id: node
class names}``; an installed pack's nodes join the server's ``/object_info`` (with schemas cloned
from the catalogue's ``ImageInvert``) as soon as its task finishes, and an installed model joins
the model inventory (``/models/{folder}`` and the loaders' combos). Shapes follow the real routes:
``queue/task`` takes ``{ui_id, client_id, kind, params}``, the worker starts only on
``queue/start``, ``queue/status`` counts per client when asked, ``queue/history?ui_id=`` answers
``{"history": {}}`` until the task is done, and the WebSocket gets ``cm-task-started``,
``cm-task-completed`` (to the task's client) and ``cm-queue-status`` ``all-done`` (to everyone).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from comfy_async.testing._hub import Target
from comfy_async.testing._responses import empty, json_response, text
from comfy_async.testing._specs import RouteSpec

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from aiohttp import web

    from comfy_async.testing._context import ServerContext

__all__ = [
    "EXAMPLE_PACK_NODES",
    "EXAMPLE_PACK_URL",
    "MANAGER_VERSION",
    "TEMPLATE_NODE",
    "FakeManager",
    "ManagerRun",
]

EXAMPLE_PACK_URL: Final = "https://github.com/comfy-async/comfyui-example-pack"
"""The pack a Manager fake offers when none are given."""
EXAMPLE_PACK_NODES: Final = ("ExamplePackInvert",)
"""The node classes of :data:`EXAMPLE_PACK_URL`."""
MANAGER_VERSION: Final = "V4.2.2"
"""What ``/v2/manager/version`` answers."""

_SIMPLE_FORMS: Final = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)
_KINDS: Final = frozenset(
    {"install", "uninstall", "update", "update-comfyui", "fix", "disable", "enable"}
)
TEMPLATE_NODE: Final = "ImageInvert"
"""The catalogue node whose schema a pack's nodes are cloned from."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _pack_key(source: str) -> str:
    """The Manager's key for a pack: a URL's last path segment, or the registry id itself."""
    if "://" not in source:
        return source
    return urlsplit(source).path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")


@dataclass
class _Task:
    ui_id: str
    client_id: str
    kind: str
    params: dict[str, Any]


@dataclass
class ManagerRun:
    """The queue, running task and history of one server run."""

    pending: list[_Task] = field(default_factory=list)
    running: _Task | None = None
    history: dict[str, dict[str, Any]] = field(default_factory=dict)
    worker: asyncio.Task[None] | None = None


class FakeManager:
    """ComfyUI-Manager 4 on the fake server (see the module docstring).

    Args:
        packs: installable packs, git URL or registry id → node class names.
        task_duration: seconds one task takes (times the server's ``time_scale``).
        on_change: called with new node schemas and the new model inventory when a task adds
            them (the server rebuilds its catalogue).
        on_reboot: called when a client asks for a reboot (the server restarts).
        models: the server's model inventory at start.
        model_folders: the folders a model may be installed into.
        template: the catalogue's schema that pack nodes are cloned from.
        load_at_start: new packs' nodes join the catalogue only at the server's next start
            (as on a real server), not as soon as their task finishes.

    """

    def __init__(
        self,
        packs: Mapping[str, Iterable[str]],
        *,
        task_duration: float,
        on_change: Callable[[dict[str, Any], dict[str, tuple[str, ...]]], None],
        on_reboot: Callable[[], None],
        models: Mapping[str, tuple[str, ...]],
        model_folders: Iterable[str],
        template: Mapping[str, Any] | None,
        load_at_start: bool = False,
    ) -> None:
        self.packs = {source: tuple(nodes) for source, nodes in packs.items()}
        self.task_duration = task_duration
        self._on_change = on_change
        self._on_reboot = on_reboot
        self._template = template
        self._models = dict(models)
        self._folders = set(model_folders)
        #: Installed packs: key → ``{ver, cnr_id, aux_id, enabled}`` (kept across restarts).
        self.installed: dict[str, dict[str, Any]] = {}
        #: Every task queued, in order, as received (``queue/task`` and ``install_model``).
        self.received: list[dict[str, Any]] = []
        self.reboots = 0
        self.run = ManagerRun()
        self._load_at_start = load_at_start
        self._staged: dict[str, Any] = {}  # installed nodes waiting for the next start

    # ------------------------------------------------------------------ lifecycle

    def new_run(self) -> None:
        """Forget the queue and history (the server process was replaced)."""
        self.run = ManagerRun()

    async def close(self) -> None:
        """Stop the worker of the current run; nodes installed meanwhile load at the next start."""
        worker, self.run.worker = self.run.worker, None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        staged, self._staged = self._staged, {}
        if staged:
            self._on_change(staged, dict(self._models))

    # ------------------------------------------------------------------ the worker

    def _start(self, ctx: ServerContext, time_scale: float) -> bool:
        run = self.run
        if run.worker is not None and not run.worker.done():
            return False
        run.worker = asyncio.get_running_loop().create_task(self._work(ctx, run, time_scale))
        return True

    async def _work(self, ctx: ServerContext, run: ManagerRun, time_scale: float) -> None:
        while run.pending:
            task = run.running = run.pending.pop(0)
            ctx.hub.send(
                "cm-task-started",
                {"ui_id": task.ui_id, "kind": task.kind, "timestamp": _now()},
                Target(sid=task.client_id),
            )
            await asyncio.sleep(self.task_duration * time_scale)
            result = self._perform(task)
            status = (
                {"status_str": result, "completed": True, "messages": []}
                if result in {"success", "skip"}
                else {"status_str": "error", "completed": True, "messages": [result]}
            )
            record = {
                "ui_id": task.ui_id,
                "client_id": task.client_id,
                "kind": task.kind,
                "timestamp": _now(),
                "result": result,
                "status": status,
                "batch_id": "batch_fake",
                "end_time": _now(),
                "params": task.params,
            }
            run.history[task.ui_id] = record
            run.running = None
            ctx.hub.send(
                "cm-task-completed",
                {key: record[key] for key in ("ui_id", "kind", "result", "status", "timestamp")},
                Target(sid=task.client_id),
            )
        ctx.hub.send("cm-queue-status", {"status": "all-done"}, Target())

    def _perform(self, task: _Task) -> str:
        if task.kind == "install":
            return self._install(task.params)
        if task.kind == "install-model":
            return self._install_model(task.params)
        return f"Unexpected kind: {task.kind}"

    def _install(self, params: dict[str, Any]) -> str:
        node_id = str(params.get("id", ""))
        version = str(params.get("selected_version") or params.get("version") or "unknown")
        repository = params.get("repository")
        source = repository if version in {"unknown", "nightly"} and repository else node_id
        nodes = self.packs.get(str(source))
        if nodes is None:
            nodes = next(
                (found for key, found in self.packs.items() if _pack_key(key) == node_id), None
            )
        if nodes is None:
            return f"Node '{node_id}@{version}' not found in [default, cache]"
        key = _pack_key(str(source))
        if key in self.installed:
            return "skip"
        is_url = "://" in str(source)
        self.installed[key] = {
            "ver": hashlib.sha1(str(source).encode()).hexdigest()[:7] if is_url else version,  # noqa: S324
            "cnr_id": "" if is_url else node_id,
            "aux_id": urlsplit(str(source)).path.strip("/") if is_url else None,
            "enabled": True,
        }
        schemas = {name: self._schema(name, key) for name in nodes}
        if self._load_at_start:
            self._staged.update(schemas)
        else:
            self._on_change(schemas, dict(self._models))
        return "success"

    def _install_model(self, params: dict[str, Any]) -> str:
        filename, folder = str(params.get("filename", "")), str(params.get("save_path", ""))
        url = str(params.get("url", ""))
        if any(char in filename for char in "/\\:") or not filename or filename in {".", ".."}:
            return f"Model installation error: {url}"
        if folder not in self._folders or urlsplit(url).scheme not in {"http", "https"}:
            return f"Model installation error: {url}"
        self._models[folder] = tuple(sorted({*self._models.get(folder, ()), filename}))
        self._on_change({}, dict(self._models))
        return "success"

    def _schema(self, class_type: str, pack: str) -> dict[str, Any]:
        """The catalogue's template node renamed into ``pack`` (a minimal schema without one)."""
        schema: dict[str, Any] = (
            copy.deepcopy(dict(self._template))
            if self._template
            else {
                "input": {"required": {"image": ["IMAGE"]}},
                "input_order": {"required": ["image"]},
                "output": ["IMAGE"],
                "output_is_list": [False],
                "output_name": ["IMAGE"],
                "output_node": False,
                "description": "",
            }
        )
        schema.update(
            name=class_type,
            display_name=class_type,
            python_module=f"custom_nodes.{pack}",
            category=pack,
        )
        return schema

    # ------------------------------------------------------------------ routes

    def routes(self, ctx: ServerContext, time_scale: float) -> list[RouteSpec]:
        """The Manager's routes for this run."""
        run = self.run

        def mutation_refused(request: web.Request) -> web.Response | None:
            # The Manager refuses bodiless POSTs with a browser form's content type (CSRF).
            if request.content_type in _SIMPLE_FORMS:
                return text("Invalid Content-Type for this endpoint.", 400)
            return None

        async def version(_: web.Request) -> web.Response:
            return text(MANAGER_VERSION, 200)

        async def queue_task(request: web.Request) -> web.Response:
            try:
                body = await request.json()
            except ValueError:
                return text("Invalid task data: not JSON", 400)
            if not isinstance(body, dict):
                return text("Invalid task data: not an object", 400)
            missing = [key for key in ("ui_id", "client_id", "kind", "params") if key not in body]
            if missing or body["kind"] not in _KINDS or not isinstance(body["params"], dict):
                return text(f"Invalid task data: {missing or body.get('kind')}", 400)
            self.received.append(body)
            run.pending.append(
                _Task(str(body["ui_id"]), str(body["client_id"]), body["kind"], body["params"])
            )
            return empty(200)

        async def install_model(request: web.Request) -> web.Response:
            try:
                body = await request.json()
            except ValueError:
                return text("Invalid model data: not JSON", 400)
            if not isinstance(body, dict):
                return text("Invalid model data: not an object", 400)
            for key in ("client_id", "ui_id", "name", "type", "url", "filename"):
                if not isinstance(body.get(key), str):
                    return text(f"Missing required field: {key}", 400)
            self.received.append(body)
            run.pending.append(_Task(body["ui_id"], body["client_id"], "install-model", dict(body)))
            return empty(200)

        async def queue_start(request: web.Request) -> web.Response:
            refused = mutation_refused(request)
            if refused is not None:
                return refused
            return empty(200 if self._start(ctx, time_scale) else 201)

        async def queue_status(request: web.Request) -> web.Response:
            client_id = request.query.get("client_id")
            processing = run.worker is not None and not run.worker.done()
            if client_id is None:
                return json_response(
                    {
                        "total_count": len(run.pending) + (run.running is not None),
                        "done_count": len(run.history),
                        "in_progress_count": int(run.running is not None),
                        "pending_count": len(run.pending),
                        "is_processing": processing,
                    }
                )
            pending = [task for task in run.pending if task.client_id == client_id]
            running = 1 if run.running is not None and run.running.client_id == client_id else 0
            done = [item for item in run.history.values() if item["client_id"] == client_id]
            return json_response(
                {
                    "client_id": client_id,
                    "total_count": len(pending) + running,
                    "done_count": len(done),
                    "in_progress_count": running,
                    "pending_count": len(pending),
                    "is_processing": running > 0,
                }
            )

        async def queue_history(request: web.Request) -> web.Response:
            ui_id = request.query.get("ui_id")
            if ui_id is not None:
                return json_response({"history": run.history.get(ui_id, {})})
            return json_response({"history": run.history})

        async def installed(_: web.Request) -> web.Response:
            return json_response(self.installed)

        async def reboot(request: web.Request) -> web.Response:
            refused = mutation_refused(request)
            if refused is not None:
                return refused
            self.reboots += 1
            self._on_reboot()
            return empty(200)

        return [
            RouteSpec("GET", "/v2/manager/version", version),
            RouteSpec("POST", "/v2/manager/queue/task", queue_task),
            RouteSpec("POST", "/v2/manager/queue/install_model", install_model),
            RouteSpec("POST", "/v2/manager/queue/start", queue_start),
            RouteSpec("GET", "/v2/manager/queue/status", queue_status),
            RouteSpec("GET", "/v2/manager/queue/history", queue_history),
            RouteSpec("GET", "/v2/customnode/installed", installed),
            RouteSpec("POST", "/v2/manager/reboot", reboot),
        ]
