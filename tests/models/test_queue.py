from __future__ import annotations

import json

import msgspec
import pytest

from comfy_async.models import Queue, QueueItem, decode_prompt_info, decode_queue
from tests.recordings import find, matching

C, D, E, F = (
    "a690fabd-42a7-49c6-a1ff-3fb4c3d07bde",
    "31fa8aa3-14ea-4a6a-8ac0-5fd0d4afb65c",
    "df6fdb32-1b67-4c4f-8752-c45df21c79db",
    "ef5e846d-e618-4183-9cce-842cb650e9ce",
)


def test_recorded_queue_item_attributes() -> None:
    queue = decode_queue(find("06", "GET /queue (C running, D/E/F pending)").body)
    (running,) = queue.queue_running
    assert running.number == 25
    assert running.prompt_id == C
    assert running.extra_data == {"client_id": "client-int-06", "create_time": 1795344827503}
    assert running.client_id == "client-int-06"
    assert running.create_time == 1795344827503
    assert running.outputs_to_execute == ["3"]
    graph = msgspec.json.decode(running.prompt)
    assert graph["2"]["class_type"] == "ProbeSleepProgress"


def test_pending_comes_in_heap_order_and_sorts_into_run_order() -> None:
    queue = decode_queue(find("06", "GET /queue (C running, D/E/F pending)").body)
    # F was queued with front=true: a negative number, first to run (§4.1)
    assert [item.prompt_id for item in queue.queue_pending] == [F, E, D]
    assert [item.number for item in queue.queue_pending] == [-28, 27, 26]
    assert [item.prompt_id for item in queue.pending_in_run_order] == [F, D, E]


def test_equal_numbers_run_in_prompt_id_order() -> None:
    queue = Queue(
        queue_pending=[
            QueueItem(number=1, prompt_id="b", prompt=msgspec.Raw(b"{}")),
            QueueItem(number=0.5, prompt_id="z", prompt=msgspec.Raw(b"{}")),
            QueueItem(number=1, prompt_id="a", prompt=msgspec.Raw(b"{}")),
        ]
    )
    assert [item.prompt_id for item in queue.pending_in_run_order] == ["z", "a", "b"]


def test_find_and_membership() -> None:
    queue = decode_queue(find("07", "GET /queue (X running, Y pending)").body)
    running = "34754519-2136-4371-8dad-d5e7d51e1207"
    pending = "82576f21-9055-461c-82a3-bc7021168aa6"
    assert queue.is_running(running)
    assert not queue.is_pending(running)
    assert queue.is_pending(pending)
    found = queue.find(pending)
    assert found is not None
    assert found.client_id == "client-y-07"
    assert queue.find("not-queued") is None


def test_idle_queue_and_prompt_info() -> None:
    for ex in matching("GET", "/queue"):
        queue = decode_queue(ex.body)
        assert len(queue.queue_running) <= 1
    idle = decode_queue(find("10", "GET /queue idle").body)
    assert idle == Queue()
    assert decode_prompt_info(find("10", "GET /prompt GET /prompt").body).queue_remaining == 0
    busy = decode_prompt_info(find("07", "GET /prompt (queue_remaining)").body)
    assert busy.queue_remaining == 2


def test_sixth_element_is_ignored() -> None:
    body = json.dumps(
        {
            "queue_running": [[3, "p", {}, {"client_id": "c"}, ["9"], {"api_key_comfy_org": "x"}]],
            "queue_pending": [],
        }
    )
    (item,) = decode_queue(body).queue_running
    assert item.extra_data == {"client_id": "c"}
    assert item.outputs_to_execute == ["9"]


def test_cloud_items_have_the_last_two_slots_swapped() -> None:
    # openapi-cloud: [job_number, prompt_id, workflow, output_node_ids, metadata{create_time}] (§8)
    body = json.dumps(
        {
            "queue_running": [
                [1, "cloud-1", {"9": {"class_type": "SaveImage"}}, ["9"], {"create_time": 17}]
            ],
            "queue_pending": [[2, "cloud-2", {}, ["4", "5"], {"create_time": 18}]],
        }
    )
    queue = decode_queue(body)
    running, pending = queue.queue_running[0], queue.queue_pending[0]
    assert running.outputs_to_execute == ["9"]
    assert running.extra_data == {"create_time": 17}
    assert running.create_time == 17
    assert running.client_id is None
    assert pending.number == 2
    assert pending.outputs_to_execute == ["4", "5"]


def test_short_items_get_empty_slots() -> None:
    item = msgspec.json.decode(b'[1, "p", {}]', type=QueueItem)
    assert item.extra_data == {}
    assert item.outputs_to_execute == []
    assert item.create_time is None


def test_extra_pnginfo_stays_raw() -> None:
    body = b'[7.5, "p", {}, {"client_id": "c", "extra_pnginfo": {"workflow": {"id": "w"}}}, []]'
    item = msgspec.json.decode(body, type=QueueItem)
    assert item.number == 7.5
    pnginfo = item.extra_data["extra_pnginfo"]
    assert isinstance(pnginfo, msgspec.Raw)
    assert msgspec.json.decode(pnginfo) == {"workflow": {"id": "w"}}


@pytest.mark.parametrize(
    "body",
    [
        b'{"queue_running": [["1", "p", {}]], "queue_pending": []}',
        b'{"queue_running": [[1, 2, {}]], "queue_pending": []}',
        b'{"queue_running": [[1]], "queue_pending": []}',
        b'{"queue_running": [[1, "p", {}, 5, []]], "queue_pending": []}',
        b'{"queue_running": {}, "queue_pending": []}',
        b"[]",
    ],
)
def test_wrong_shapes_are_validation_errors(body: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_queue(body)


def test_prompt_info_wrong_type() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_prompt_info(b'{"exec_info": {"queue_remaining": "2"}}')
