"""Every route of the route tables is served by the fake of that flavour, at the right paths."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
import pytest

from comfy_async._transport.routes import CLOUD, LOCAL, RouteTable

if TYPE_CHECKING:
    from comfy_async.testing import FakeComfyServer

PARAMS = {
    "prompt_id": "7f1b9f52-3b51-4f79-9d1e-1b7f7c1b2a3c",
    "job_id": "7f1b9f52-3b51-4f79-9d1e-1b7f7c1b2a3c",
    "node_class": "EmptyImage",
    "folder": "checkpoints",
    "path_index": "0",
    "filename": "x.safetensors",
    "subgraph_id": "unknown",
    "setting_id": "Comfy.Test",
    "file": "a.json",
    "dest": "b.json",
    "directory": "output",
}
BODIES: dict[str, object] = {
    "users.create": {"username": "someone"},
    "settings.update": {"Comfy.Test": 1},
    "settings.set": 1,
    "internal.logs_subscribe": {"clientId": "x", "enabled": False},
    "jobs.cancel_many": {"job_ids": []},
    "queue.update": {"clear": True},
    "history.update": {"clear": True},
}
# Handler answers that are the documented outcome of these dummy requests (not a missing route).
EXPECTED = {
    "prompt.submit": 400,  # no prompt
    "upload.image": 400,  # no image field
    "upload.mask": 400,
    "view": 404,  # no filename
    "view_metadata": 404,
    "experiment_models.preview": 404,
    "global_subgraphs.get": 404,
    "jobs.get": 404,
    "userdata.list": 400,  # no dir
    "userdata.get": 404,
    "userdata.delete": 404,
    "userdata.move": 404,
    "job_status": 404,
    "manager.queue_task": 400,  # no task
    "manager.queue_install_model": 400,  # no model
}
# Probed only to name a legacy (3.x) Manager: the Manager fake is version 4.
NOT_SERVED = {"manager.legacy_version"}
ORDER = ["userdata.put"]  # write a file first so later user-data routes see it


async def exercise(server: FakeComfyServer, table: RouteTable, *, manager: bool = False) -> None:
    served = [
        name
        for name in table.routes
        if name not in NOT_SERVED and (manager or not name.startswith("manager."))
    ]
    # The Manager's reboot restarts the server: last.
    names = sorted(served, key=lambda n: (n not in ORDER, n == "manager.reboot", n))
    async with aiohttp.ClientSession(headers=server.headers) as http:
        for name in names:
            route = table.route(name, **PARAMS)
            before = server.request_counts[f"{route.method} {table.routes[name].template}"]
            kwargs: dict[str, object] = {"json": BODIES[name]} if name in BODIES else {}
            if name == "userdata.put":
                kwargs = {"data": b"{}"}
            async with http.request(route.method, server.url + route.path, **kwargs) as answer:
                await answer.read()
                status = answer.status
            after = server.request_counts[f"{route.method} {table.routes[name].template}"]
            assert after == before + 1, f"{name}: no handler for {route.method} {route.path}"
            if name == "userdata.put":
                continue
            if name in {"userdata.get", "userdata.delete", "userdata.move"}:
                assert status in {200, 204, 404}, name  # depends on what ran before
            else:
                assert status == EXPECTED.get(name, 200), f"{name}: {status}"


async def test_every_local_route_is_served(comfy_server: FakeComfyServer) -> None:
    await exercise(comfy_server, LOCAL)


@pytest.mark.comfy_server(manager=True)
async def test_every_manager_route_is_served(comfy_server: FakeComfyServer) -> None:
    await exercise(comfy_server, LOCAL, manager=True)
    assert comfy_server.manager_reboots == 1


async def test_manager_routes_are_absent_without_the_manager(
    comfy_server: FakeComfyServer,
) -> None:
    async with aiohttp.ClientSession() as http:
        for name in ("manager.version", "manager.queue_status", "manager.installed"):
            route = LOCAL.route(name)
            async with http.get(comfy_server.url + route.path) as answer:
                assert answer.status == 404, name


async def test_every_cloud_route_is_served(comfy_cloud_server: FakeComfyServer) -> None:
    await exercise(comfy_cloud_server, CLOUD)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/queue", 200),
        ("/api/queue", 200),
        ("/api/jobs", 200),
        ("/api/api/jobs", 200),
        ("/jobs", 404),
        ("/internal/folder_paths", 200),
        ("/api/internal/folder_paths", 404),
        ("/api/assets", 503),
        ("/", 200),
        ("/ws", 400),
        ("/api/ws", 400),
        ("/no/such/route", 404),
    ],
)
async def test_local_prefix_rules(comfy_server: FakeComfyServer, path: str, status: int) -> None:
    async with aiohttp.ClientSession() as http, http.get(comfy_server.url + path) as answer:
        assert answer.status == status


@pytest.mark.parametrize(
    ("path", "status"),
    [("/api/queue", 200), ("/queue", 404), ("/api/models", 404), ("/api/experiment/models", 200),
     ("/internal/logs", 404), ("/api/history", 405), ("/api/history_v2", 200)],
)  # fmt: skip
async def test_cloud_prefix_rules(
    comfy_cloud_server: FakeComfyServer, path: str, status: int
) -> None:
    async with (
        aiohttp.ClientSession(headers=comfy_cloud_server.headers) as http,
        http.get(comfy_cloud_server.url + path) as answer,
    ):
        assert answer.status == status
