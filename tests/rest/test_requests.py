"""The exact request of every public namespace method, on a local server and on Comfy Cloud.

One table: the call, the method, the path and query it must send to each flavour (``None``:
the flavour has no such route and the call raises ``UnsupportedOperationError`` before any I/O),
the body it must carry, and a valid answer. Headers are checked for every row: the Cloud key on
Cloud only, the user agent always, ``Origin`` never.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aioresponses.core import normalize_url
from yarl import URL

from comfy_async import ComfyClient
from comfy_async.errors import UnsupportedOperationError
from comfy_async.models import FileRef
from tests.http_mocks import CLOUD, FAST, KEY, LOCAL, mocked_http

Call = Callable[[ComfyClient], Awaitable[object]]
NO_BODY = object()
SAME = "same as local"


@dataclass(frozen=True)
class Row:
    name: str
    call: Call
    method: str
    local: str | None
    cloud: str | None
    answer: bytes = b"{}"
    body: object = NO_BODY


def _read(comfy: ComfyClient) -> Awaitable[bytes]:
    return comfy.files.read(FileRef(filename="a b.png", subfolder="s", type="temp"))


ROWS = [
    Row("prompts.info", lambda c: c.prompts.info(), "GET", "/api/prompt", SAME),
    Row("queue.get", lambda c: c.queue.get(), "GET", "/api/queue", SAME),
    Row(
        "queue.delete",
        lambda c: c.queue.delete(["p"]),
        "POST",
        "/api/queue",
        SAME,
        b"",
        {"delete": ["p"]},
    ),
    Row("queue.clear", lambda c: c.queue.clear(), "POST", "/api/queue", SAME, b"", {"clear": True}),
    Row(
        "queue.interrupt",
        lambda c: c.queue.interrupt("p"),
        "POST",
        "/api/interrupt",
        SAME,
        b"",
        {"prompt_id": "p"},
    ),
    Row(
        "history.list",
        lambda c: c.history.list(max_items=3, offset=1),
        "GET",
        "/api/history?max_items=3&offset=1",
        "/api/history_v2?max_items=3&offset=1",
    ),
    Row("history.get", lambda c: c.history.get("p"), "GET", "/api/history/p", "/api/history_v2/p"),
    Row(
        "history.delete",
        lambda c: c.history.delete(["p"]),
        "POST",
        "/api/history",
        SAME,
        b"",
        {"delete": ["p"]},
    ),
    Row(
        "history.clear",
        lambda c: c.history.clear(),
        "POST",
        "/api/history",
        SAME,
        b"",
        {"clear": True},
    ),
    Row(
        "jobs.list",
        lambda c: c.jobs.list(status="pending", limit=5),
        "GET",
        "/api/jobs?status=pending&limit=5",
        SAME,
    ),
    Row(
        "jobs.get",
        lambda c: c.jobs.get("j"),
        "GET",
        "/api/jobs/j",
        SAME,
        b'{"id": "j", "status": "pending"}',
    ),
    Row(
        "jobs.cancel",
        lambda c: c.jobs.cancel("j"),
        "POST",
        "/api/jobs/j/cancel",
        SAME,
        b'{"cancelled": true}',
    ),
    Row(
        "jobs.cancel_many",
        lambda c: c.jobs.cancel_many(["j"]),
        "POST",
        "/api/jobs/cancel",
        SAME,
        b'{"cancelled": true}',
        {"job_ids": ["j"]},
    ),
    Row(
        "jobs.raw_status",
        lambda c: c.jobs.raw_status("j"),
        "GET",
        None,
        "/api/job/j/status",
        b'{"status": "queued_waiting"}',
    ),
    Row(
        "files.read",
        _read,
        "GET",
        "/api/view?filename=a+b.png&type=temp&subfolder=s",
        SAME,
        b"bytes",
    ),
    Row(
        "files.view_metadata",
        lambda c: c.files.view_metadata("loras", "m.safetensors"),
        "GET",
        "/api/view_metadata/loras?filename=m.safetensors",
        SAME,
    ),
    Row("system.stats", lambda c: c.system.stats(), "GET", "/api/system_stats", SAME),
    Row("system.features", lambda c: c.system.features(), "GET", "/api/features", SAME),
    Row("system.object_info", lambda c: c.system.object_info(), "GET", "/api/object_info", SAME),
    Row(
        "system.object_info(class)",
        lambda c: c.system.object_info("Save Image"),
        "GET",
        "/api/object_info/Save%20Image",
        SAME,
    ),
    Row(
        "system.object_info_bytes",
        lambda c: c.system.object_info_bytes(),
        "GET",
        "/api/object_info",
        SAME,
    ),
    Row(
        "system.embeddings", lambda c: c.system.embeddings(), "GET", "/api/embeddings", SAME, b"[]"
    ),
    Row(
        "system.extensions", lambda c: c.system.extensions(), "GET", "/api/extensions", SAME, b"[]"
    ),
    Row(
        "system.free",
        lambda c: c.system.free(unload_models=True),
        "POST",
        "/api/free",
        SAME,
        b"",
        {"unload_models": True, "free_memory": False},
    ),
    Row(
        "system.node_replacements",
        lambda c: c.system.node_replacements(),
        "GET",
        "/api/node_replacements",
        SAME,
    ),
    Row(
        "system.global_subgraphs",
        lambda c: c.system.global_subgraphs(),
        "GET",
        "/api/global_subgraphs",
        SAME,
    ),
    Row(
        "system.global_subgraph",
        lambda c: c.system.global_subgraph("g1"),
        "GET",
        "/api/global_subgraphs/g1",
        SAME,
    ),
    Row(
        "system.workflow_templates",
        lambda c: c.system.workflow_templates(),
        "GET",
        "/api/workflow_templates",
        SAME,
    ),
    Row("system.i18n", lambda c: c.system.i18n(), "GET", "/api/i18n", SAME),
    Row("system.logs", lambda c: c.system.logs(), "GET", "/internal/logs", None, b'"log"'),
    Row("system.logs_raw", lambda c: c.system.logs_raw(), "GET", "/internal/logs/raw", None),
    Row(
        "system.subscribe_logs",
        lambda c: c.system.subscribe_logs("c1", enabled=False),
        "PATCH",
        "/internal/logs/subscribe",
        None,
        b"",
        {"clientId": "c1", "enabled": False},
    ),
    Row(
        "system.folder_paths",
        lambda c: c.system.folder_paths(),
        "GET",
        "/internal/folder_paths",
        None,
    ),
    Row(
        "system.internal_files",
        lambda c: c.system.internal_files("output"),
        "GET",
        "/internal/files/output",
        None,
        b"[]",
    ),
    Row(
        "models.folders",
        lambda c: c.models.folders(),
        "GET",
        "/api/models",
        "/api/experiment/models",
        b"[]",
    ),
    Row(
        "models.files",
        lambda c: c.models.files("loras"),
        "GET",
        "/api/models/loras",
        "/api/experiment/models/loras",
        b"[]",
    ),
    Row(
        "models.experiment_folders",
        lambda c: c.models.experiment_folders(),
        "GET",
        "/api/experiment/models",
        SAME,
        b"[]",
    ),
    Row(
        "models.experiment_files",
        lambda c: c.models.experiment_files("loras"),
        "GET",
        "/api/experiment/models/loras",
        SAME,
        b"[]",
    ),
    Row(
        "models.preview",
        lambda c: c.models.preview("loras", 0, "a.safetensors"),
        "GET",
        "/api/experiment/models/preview/loras/0/a.safetensors",
        SAME,
        b"RIFF",
    ),
    Row(
        "userdata.list",
        lambda c: c.userdata.list("workflows"),
        "GET",
        "/api/userdata?dir=workflows&recurse=false&full_info=false&split=false",
        SAME,
        b"[]",
    ),
    Row(
        "userdata.list_v2",
        lambda c: c.userdata.list_v2("w"),
        "GET",
        "/api/v2/userdata?path=w",
        SAME,
        b"[]",
    ),
    Row(
        "userdata.get",
        lambda c: c.userdata.get("w/a.json"),
        "GET",
        "/api/userdata/w%2Fa.json",
        SAME,
    ),
    Row(
        "userdata.put",
        lambda c: c.userdata.put("w/a.json", b"{}"),
        "POST",
        "/api/userdata/w%2Fa.json?overwrite=true&full_info=false",
        SAME,
        b'"w/a.json"',
    ),
    Row(
        "userdata.delete",
        lambda c: c.userdata.delete("w/a.json"),
        "DELETE",
        "/api/userdata/w%2Fa.json",
        SAME,
        b"",
    ),
    Row(
        "userdata.move",
        lambda c: c.userdata.move("a", "b"),
        "POST",
        "/api/userdata/a/move/b?overwrite=false",
        SAME,
        b'"b"',
    ),
    Row("settings.all", lambda c: c.settings.all(), "GET", "/api/settings", SAME),
    Row(
        "settings.get",
        lambda c: c.settings.get("Comfy.A"),
        "GET",
        "/api/settings/Comfy.A",
        SAME,
        b"null",
    ),
    Row(
        "settings.update",
        lambda c: c.settings.update({"Comfy.A": 1}),
        "POST",
        "/api/settings",
        SAME,
        b"",
        {"Comfy.A": 1},
    ),
    Row(
        "settings.set",
        lambda c: c.settings.set("Comfy.A", 2),
        "POST",
        "/api/settings/Comfy.A",
        SAME,
        b"",
        2,
    ),
    Row("users.get", lambda c: c.users.get(), "GET", "/api/users", SAME),
    Row(
        "users.create",
        lambda c: c.users.create("bob"),
        "POST",
        "/api/users",
        SAME,
        b'"u1"',
        {"username": "bob"},
    ),
]

CASES = [(row, flavour) for row in ROWS for flavour in ("local", "cloud")]


def client(flavour: str) -> ComfyClient:
    if flavour == "cloud":
        return ComfyClient.cloud(api_key=KEY, base_url=CLOUD, options=FAST, jobs_api=True)
    return ComfyClient(LOCAL, options=FAST, jobs_api=True)


@pytest.mark.parametrize(("row", "flavour"), CASES, ids=[f"{r.name}-{f}" for r, f in CASES])
async def test_request(row: Row, flavour: str, mocked: mocked_http) -> None:
    cloud_path = row.local if row.cloud == SAME else row.cloud
    base, path = (LOCAL, row.local) if flavour == "local" else (CLOUD, cloud_path)
    async with client(flavour) as comfy:
        if path is None:
            with pytest.raises(UnsupportedOperationError):
                await row.call(comfy)
            assert mocked.requests == {}
            return
        mocked.add(f"{base}{path}", row.method, body=row.answer)
        await row.call(comfy)
    ((method, url), calls), *others = mocked.requests.items()
    assert others == []
    assert (method, url) == (row.method, normalize_url(URL(f"{base}{path}")))
    assert len(calls) == 1
    sent: dict[str, Any] = calls[0].kwargs
    headers = sent["headers"]
    assert headers["User-Agent"] == "comfy-async"
    assert not any(name.lower() == "origin" for name in headers)
    assert (headers.get("X-API-Key") == KEY) == (flavour == "cloud")
    assert sent["allow_redirects"] is False
    if row.body is NO_BODY:
        assert sent.get("data") in (None, b"{}")  # userdata.put sends its raw bytes
    else:
        assert json.loads(sent["data"]) == row.body
        assert headers["Content-Type"] == "application/json"


def test_every_namespace_method_is_in_the_table() -> None:
    comfy = ComfyClient()
    covered = {row.name.split("(")[0] for row in ROWS}
    covered |= {"prompts.submit", "prompts.locate", "jobs.available"}  # test_prompts, test_jobs
    covered |= {"files.upload_image", "files.upload_mask", "files.view", "files.download"}
    covered |= {"files.save"}  # test_files
    public = {
        f"{area}.{name}"
        for area in (
            "prompts",
            "queue",
            "history",
            "jobs",
            "files",
            "system",
            "models",
            "userdata",
            "settings",
            "users",
        )
        for name in dir(getattr(comfy, area))
        if not name.startswith("_")
    }
    assert public - covered == set()
