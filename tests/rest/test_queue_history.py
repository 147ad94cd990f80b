"""``comfy.queue`` and ``comfy.history``: requests sent (local and Cloud) and answers decoded."""

from __future__ import annotations

import json

import pytest

from comfy_async import ComfyClient
from comfy_async.errors import UnsupportedOperationError
from comfy_async.models import CloudHistoryListItem, HistoryEntry
from tests.http_mocks import CLOUD, LOCAL, calls, mocked_http
from tests.recordings import find, matching

CLOUD_LIST = {
    "history": [
        {
            "prompt_id": "c2",
            "create_time": 1760000000200,
            "prompt": {"priority": 2, "prompt_id": "c2", "extra_data": {}},
            "outputs": {
                "9": {"images": [{"filename": "o.png", "subfolder": "", "type": "output"}]}
            },
            "status": {"status_str": "success", "completed": True, "messages": []},
        },
        {"prompt_id": "c1", "prompt": {"priority": 1, "prompt_id": "c1"}},
    ]
}


def clients(local: ComfyClient, cloud: ComfyClient) -> list[tuple[ComfyClient, str]]:
    return [(local, LOCAL), (cloud, CLOUD)]


# --------------------------------------------------------------------------- queue


async def test_queue_get_decodes_the_recorded_bodies(
    local: ComfyClient, mocked: mocked_http
) -> None:
    bodies = matching("GET", "/queue")
    for ex in bodies:
        mocked.get(f"{LOCAL}/api/queue", body=ex.body)
    for ex in bodies:
        queue = await local.queue.get()
        assert len(queue.queue_running) == len(ex.json["queue_running"])
        assert len(queue.queue_pending) == len(ex.json["queue_pending"])


async def test_queue_writes(local: ComfyClient, cloud: ComfyClient, mocked: mocked_http) -> None:
    for comfy, base in clients(local, cloud):
        mocked.post(f"{base}/api/queue", repeat=True)
        mocked.post(f"{base}/api/interrupt", repeat=True)
        await comfy.queue.delete(["a", "b"])
        await comfy.queue.clear()
        await comfy.queue.interrupt("p-1")
        await comfy.queue.interrupt()
        queue_calls = calls(mocked, "POST", f"{base}/api/queue")
        assert [json.loads(call["data"]) for call in queue_calls] == [
            {"delete": ["a", "b"]},
            {"clear": True},
        ]
        targeted, global_ = calls(mocked, "POST", f"{base}/api/interrupt")
        assert json.loads(targeted["data"]) == {"prompt_id": "p-1"}
        assert global_["data"] is None  # no body: a global interrupt


# --------------------------------------------------------------------------- history


async def test_history_list_local(local: ComfyClient, mocked: mocked_http) -> None:
    recorded = find("10", "GET /history?max_items=2")
    mocked.get(f"{LOCAL}/api/history?max_items=2", body=recorded.body)
    mocked.get(f"{LOCAL}/api/history?max_items=1&offset=0", body=recorded.body)
    entries = await local.history.list(max_items=2)
    assert list(entries) == list(recorded.json)  # oldest first, as sent
    assert all(isinstance(entry, HistoryEntry) for entry in entries.values())
    await local.history.list(max_items=1, offset=0)


async def test_history_list_cloud_uses_history_v2(cloud: ComfyClient, mocked: mocked_http) -> None:
    mocked.get(f"{CLOUD}/api/history_v2?max_items=5", payload=CLOUD_LIST)
    entries = await cloud.history.list(max_items=5)
    assert list(entries) == ["c2", "c1"]
    assert isinstance(entries["c2"], CloudHistoryListItem)
    assert entries["c2"].files()[0].filename == "o.png"


async def test_history_get(local: ComfyClient, cloud: ComfyClient, mocked: mocked_http) -> None:
    done = find("08", "GET /history/{pid}")
    pid = next(iter(done.json))
    mocked.get(f"{LOCAL}/api/history/{pid}", body=done.body)
    mocked.get(f"{LOCAL}/api/history/unknown", body=b"{}")
    record = await local.history.get(pid)
    assert record is not None
    assert record.status_str == "success"
    assert await local.history.get("unknown") is None
    detail = {"c2": {"prompt": {"priority": 2, "prompt_id": "c2"}, "outputs": {}}}
    mocked.get(f"{CLOUD}/api/history_v2/c2", payload=detail)
    cloud_record = await cloud.history.get("c2")
    assert cloud_record is not None
    assert cloud_record.outputs == {}


async def test_history_writes(local: ComfyClient, cloud: ComfyClient, mocked: mocked_http) -> None:
    for comfy, base in clients(local, cloud):
        mocked.post(f"{base}/api/history", repeat=True)
        await comfy.history.delete(["x"])
        await comfy.history.clear()
        sent = [json.loads(c["data"]) for c in calls(mocked, "POST", f"{base}/api/history")]
        assert sent == [{"delete": ["x"]}, {"clear": True}]


async def test_internal_routes_do_not_exist_on_cloud(cloud: ComfyClient) -> None:
    with pytest.raises(UnsupportedOperationError):
        await cloud.system.logs()
