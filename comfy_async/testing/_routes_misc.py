"""Handlers for files, introspection, users/settings/userdata and the internal routes (§2.2–2.7).

Introspection answers come from the node catalogue (``object_info``) and from a snapshot of a
real server's static answers (``data/server_info.json``: system stats, extensions, model
folders, node replacements, a few global subgraphs). Model folders are empty; their paths are
under the fake's base directory. User data lives in ``<base>/user/default``; settings and users
are kept in memory. The Cloud flavour answers the experiment-models routes in its own shapes and
has no ``/models`` and no ``/internal``.

Handlers only touch the :class:`~comfy_async.testing._context.ServerContext` they were built with.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from aiohttp import web

from comfy_async.testing._responses import empty, json_response, text
from comfy_async.testing._specs import RouteSpec

if TYPE_CHECKING:
    from comfy_async.testing._context import ServerContext

__all__ = ["misc_routes"]

_ASSETS_DISABLED = {
    "error": {
        "code": "SERVICE_DISABLED",
        "message": "Assets system is disabled. Start the server with --enable-assets to use "
        "this feature.",
        "details": {},
    }
}


def misc_routes(ctx: ServerContext) -> list[RouteSpec]:
    """The routes of this module bound to ``ctx``."""
    info = ctx.info
    folders: list[str] = info["model_folders"]
    extensions: dict[str, list[str]] = info["model_extensions"]
    models_dir = ctx.files.base / "models"
    user_dir = ctx.files.base / "user" / "default"

    def folder_paths(name: str) -> list[str]:
        return [str(models_dir / name)]

    async def upload_image(request: web.Request) -> web.Response:
        return await ctx.files.upload(request, mask=False, cloud=ctx.cloud)

    async def upload_mask(request: web.Request) -> web.Response:
        return await ctx.files.upload(request, mask=True, cloud=ctx.cloud)

    async def view(request: web.Request) -> web.StreamResponse:
        return ctx.files.view(request)

    async def view_metadata(_: web.Request) -> web.Response:
        return empty(404)  # no model files in the fake

    async def object_info(_: web.Request) -> web.Response:
        return web.Response(
            body=ctx.object_info_bytes, content_type="application/json", charset="utf-8"
        )

    async def object_info_one(request: web.Request) -> web.Response:
        name = request.match_info["node_class"]
        node = ctx.object_info.get(name)
        return json_response({name: node} if node is not None else {})

    async def system_stats(_: web.Request) -> web.Response:
        return json_response(info["system_stats"])

    async def features(_: web.Request) -> web.Response:
        return json_response(ctx.features)

    async def embeddings(_: web.Request) -> web.Response:
        return json_response([])

    async def extension_list(_: web.Request) -> web.Response:
        return json_response(info["extensions"])

    async def models(_: web.Request) -> web.Response:
        return json_response(folders)

    async def models_folder(request: web.Request) -> web.Response:
        folder = request.match_info["folder"]
        return json_response(list(ctx.models.get(folder, ()))) if folder in folders else empty(404)

    async def experiment_models(_: web.Request) -> web.Response:
        if ctx.cloud:
            return json_response([{"name": n, "folders": folder_paths(n)} for n in extensions])
        return json_response(
            [
                {"name": n, "folders": folder_paths(n), "extensions": e}
                for n, e in extensions.items()
            ]
        )

    async def experiment_models_folder(request: web.Request) -> web.Response:
        folder = request.match_info["folder"]
        if folder not in extensions:
            return empty(404)
        return json_response([{"name": n, "pathIndex": 0} for n in ctx.models.get(folder, ())])

    async def experiment_models_preview(request: web.Request) -> web.Response:
        if request.match_info["folder"] not in extensions:
            return empty(404)
        if not request.match_info["path_index"].isdigit():
            return empty(400)
        return empty(404)

    async def node_replacements(_: web.Request) -> web.Response:
        return json_response(info["node_replacements"])

    async def global_subgraphs(_: web.Request) -> web.Response:
        return json_response(info["global_subgraphs"])

    async def global_subgraph(request: web.Request) -> web.Response:
        entry = info["global_subgraphs"].get(request.match_info["subgraph_id"])
        return json_response({**entry, "data": "{}"}) if entry else empty(404)

    async def empty_dict(_: web.Request) -> web.Response:
        return json_response({})

    async def get_users(_: web.Request) -> web.Response:
        return json_response({"storage": "server", "migrated": False})

    async def post_users(request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
            name = body["username"]
        except (ValueError, KeyError, TypeError):
            return json_response({"error": "username not provided"}, 400)
        if not isinstance(name, str) or not name.strip() or name in ctx.users.values():
            return json_response({"error": "Duplicate or invalid username"}, 400)
        user_id = f"{name}_{uuid.uuid4()}"
        ctx.users[user_id] = name
        return json_response(user_id)

    async def get_settings(_: web.Request) -> web.Response:
        return json_response(ctx.settings)

    async def get_setting(request: web.Request) -> web.Response:
        return json_response(ctx.settings.get(request.match_info["setting_id"]))

    async def post_settings(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read() or b"{}")
        if isinstance(body, dict):
            ctx.settings.update(body)
        return empty()

    async def post_setting(request: web.Request) -> web.Response:
        ctx.settings[request.match_info["setting_id"]] = orjson.loads(
            await request.read() or b"null"
        )
        return empty()

    def user_path(relative: str) -> Path | None:
        path = Path(os.path.abspath(user_dir / relative))
        return path if os.path.commonpath((path, user_dir)) == str(user_dir) else None

    def file_info(path: Path) -> dict[str, object]:
        stat = path.stat()
        rel = path.relative_to(user_dir).as_posix()
        return {"path": rel, "size": stat.st_size, "modified": stat.st_mtime}

    async def list_userdata(request: web.Request) -> web.Response:
        directory = request.query.get("dir", "")
        if not directory:
            return text("Directory not provided", 400)
        path = user_path(directory)
        if path is None:
            return empty(403)
        if not path.is_dir():
            return text("Directory not found", 404)
        recurse = request.query.get("recurse", "").lower() == "true"
        files = sorted(p for p in (path.rglob("*") if recurse else path.iterdir()) if p.is_file())
        if request.query.get("full_info", "").lower() == "true":
            return json_response([file_info(p) for p in files])
        names = [p.relative_to(path).as_posix() for p in files]
        if request.query.get("split", "").lower() == "true":
            return json_response([[n, *n.split("/")] for n in names])
        return json_response(names)

    async def list_userdata_v2(request: web.Request) -> web.Response:
        path = user_path(request.query.get("path", ""))
        if path is None:
            return empty(403)
        if not path.is_dir():
            return empty(404)
        entries = sorted(path.iterdir(), key=lambda p: (not p.is_dir(), p.name))
        result: list[dict[str, object]] = []
        for entry in entries:
            item: dict[str, object] = {"name": entry.name,
                                       "path": entry.relative_to(user_dir).as_posix()}  # fmt: skip
            if entry.is_dir():
                item["type"] = "directory"
            else:
                item.update(type="file", size=entry.stat().st_size, modified=entry.stat().st_mtime)
            result.append(item)
        return json_response(result)

    async def get_userdata(request: web.Request) -> web.StreamResponse:
        path = user_path(request.match_info["file"])
        if path is None:
            return empty(403)
        if not path.is_file():
            return empty(404)
        return web.Response(body=path.read_bytes(), content_type="application/octet-stream")

    async def post_userdata(request: web.Request) -> web.Response:
        path = user_path(request.match_info["file"])
        if path is None:
            return empty(403)
        if path.exists() and request.query.get("overwrite", "true").lower() == "false":
            return text("File already exists", 409)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(await request.read())
        if request.query.get("full_info", "").lower() == "true":
            return json_response(file_info(path))
        return json_response(path.relative_to(user_dir).as_posix())

    async def delete_userdata(request: web.Request) -> web.Response:
        path = user_path(request.match_info["file"])
        if path is None:
            return empty(403)
        if not path.is_file():
            return empty(404)
        path.unlink()
        return empty(204)

    async def move_userdata(request: web.Request) -> web.Response:
        source = user_path(request.match_info["file"])
        dest = user_path(request.match_info["dest"])
        if source is None or dest is None:
            return empty(403)
        if not source.is_file():
            return empty(404)
        if dest.exists() and request.query.get("overwrite", "true").lower() == "false":
            return text("File already exists", 409)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, dest)
        if request.query.get("full_info", "").lower() == "true":
            return json_response(file_info(dest))
        return json_response(dest.relative_to(user_dir).as_posix())

    async def internal_logs(_: web.Request) -> web.Response:
        return json_response("".join(f"{e['t']} {e['m']}" for e in ctx.logs))

    async def internal_logs_raw(_: web.Request) -> web.Response:
        return json_response({"entries": ctx.logs, "size": {"cols": 80, "rows": 24}})

    async def internal_logs_subscribe(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read() or b"{}")
        client_id, enabled = body.get("clientId"), body.get("enabled")
        if isinstance(client_id, str):
            if enabled:
                ctx.hub.log_subscribers.add(client_id)
            else:
                ctx.hub.log_subscribers.discard(client_id)
        return empty()

    async def internal_folder_paths(_: web.Request) -> web.Response:
        return json_response({name: folder_paths(name) for name in folders})

    async def internal_files(request: web.Request) -> web.Response:
        directory = request.match_info["directory"]
        if ctx.files.directory(directory) is None:
            return json_response({"error": "Invalid directory type"}, 400)
        return json_response(ctx.files.listing(directory))

    async def assets_disabled(_: web.Request) -> web.Response:
        return json_response(_ASSETS_DISABLED, 503)

    async def index(_: web.Request) -> web.Response:
        html = "<!doctype html><title>ComfyUI (comfy_async fake server)</title>"
        return web.Response(
            text=html, content_type="text/html", headers={"Cache-Control": "no-store"}
        )

    specs = [
        RouteSpec("POST", "/upload/image", upload_image),
        RouteSpec("POST", "/upload/mask", upload_mask),
        RouteSpec("GET", "/view", view),
        RouteSpec("GET", "/view_metadata/{folder}", view_metadata),
        RouteSpec("GET", "/object_info", object_info),
        RouteSpec("GET", "/object_info/{node_class}", object_info_one),
        RouteSpec("GET", "/system_stats", system_stats),
        RouteSpec("GET", "/features", features),
        RouteSpec("GET", "/embeddings", embeddings),
        RouteSpec("GET", "/extensions", extension_list),
        RouteSpec("GET", "/experiment/models", experiment_models),
        RouteSpec("GET", "/experiment/models/{folder}", experiment_models_folder),
        RouteSpec(
            "GET",
            "/experiment/models/preview/{folder}/{path_index}/{filename}",
            experiment_models_preview,
        ),
        RouteSpec("GET", "/node_replacements", node_replacements),
        RouteSpec("GET", "/global_subgraphs", global_subgraphs),
        RouteSpec("GET", "/global_subgraphs/{subgraph_id}", global_subgraph),
        RouteSpec("GET", "/workflow_templates", empty_dict),
        RouteSpec("GET", "/i18n", empty_dict),
        RouteSpec("GET", "/users", get_users),
        RouteSpec("POST", "/users", post_users),
        RouteSpec("GET", "/settings", get_settings),
        RouteSpec("GET", "/settings/{setting_id}", get_setting),
        RouteSpec("POST", "/settings", post_settings),
        RouteSpec("POST", "/settings/{setting_id}", post_setting),
        RouteSpec("GET", "/userdata", list_userdata),
        RouteSpec("GET", "/v2/userdata", list_userdata_v2),
        RouteSpec("GET", "/userdata/{file}", get_userdata),
        RouteSpec("POST", "/userdata/{file}", post_userdata),
        RouteSpec("DELETE", "/userdata/{file}", delete_userdata),
        RouteSpec("POST", "/userdata/{file}/move/{dest}", move_userdata),
        RouteSpec("GET", "/assets", assets_disabled, scope="api"),
    ]
    if not ctx.cloud:
        specs += [
            RouteSpec("GET", "/models", models),
            RouteSpec("GET", "/models/{folder}", models_folder),
            RouteSpec("GET", "/", index, scope="root"),
            RouteSpec("GET", "/internal/logs", internal_logs, scope="root"),
            RouteSpec("GET", "/internal/logs/raw", internal_logs_raw, scope="root"),
            RouteSpec("PATCH", "/internal/logs/subscribe", internal_logs_subscribe, scope="root"),
            RouteSpec("GET", "/internal/folder_paths", internal_folder_paths, scope="root"),
            RouteSpec("GET", "/internal/files/{directory}", internal_files, scope="root"),
        ]
    return specs
