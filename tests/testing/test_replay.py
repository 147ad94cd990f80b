"""Replay the recorded scenarios (tests/data/real_comfyui) against the fake and compare.

Each test drives the fake with the recorded requests and asserts that every socket received the
same sequence of event types, data fields, node ids/states and binary types as the real server,
and that HTTP answers have the same status and body shape. Ids, timestamps, file names and the
number of throttled progress steps may differ.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from comfy_async.testing import FakeComfyServer
from tests.testing.replay import (
    UUID,
    Sock,
    exchange,
    json_shape,
    only,
    recorded_requests,
    recorded_shapes,
    same_shapes,
    without_steps,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

FLAGS = json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}})


@pytest.fixture
async def fake() -> AsyncIterator[FakeComfyServer]:
    # The recorded server held no model files: neither does this one.
    async with FakeComfyServer(time_scale=0.05, seed=1, models={}) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def bodies(filename: str, prefix: str = "POST /prompt") -> list[dict[str, Any]]:
    return [
        e["request"]["json"]
        for e in recorded_requests(filename)
        if e["label"].startswith(prefix) and e["request"]["method"] == "POST"
    ]


async def submit(http: aiohttp.ClientSession, server: FakeComfyServer, body: Any) -> Any:
    async with http.post(f"{server.url}/prompt", json=body) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def get(http: aiohttp.ClientSession, server: FakeComfyServer, path: str, **query: str) -> Any:
    async with http.get(f"{server.url}{path}", params=query) as response:
        body = await response.read()
        if response.content_type != "application/json":
            return response.status, body
        return response.status, json.loads(body) if body else None


async def test_s01_connect(fake: FakeComfyServer, http: aiohttp.ClientSession) -> None:
    cases = {
        "01_connect_with_feature_flags.jsonl": ("client-flags-01", [FLAGS]),
        "01_connect_without_flags.jsonl": ("client-noflags-01", []),
        "01_connect_flags_not_first_message.jsonl": (
            "client-lateflags-01",
            [json.dumps({"type": "hello", "data": {}}), FLAGS],
        ),
        "15_client_sends_junk_first.jsonl": ("client-junk-15", ["not json at all", FLAGS]),
    }
    for filename, (client_id, hello) in cases.items():
        sock = await Sock.open(http, fake.ws_url(client_id), hello)
        await asyncio.sleep(0.05)
        await sock.close()
        assert [sock.shapes()] == recorded_shapes(filename), filename
        assert sock.events()[0]["data"]["sid"] == client_id
    anonymous = await Sock.open(http, fake.ws_url(None))
    await asyncio.sleep(0.05)
    await anonymous.close()
    assert [anonymous.shapes()] == recorded_shapes("01_connect_without_clientId.jsonl")
    assert len(anonymous.events()[0]["data"]["sid"]) == 32
    _status, features = await get(http, fake, "/features")
    assert json_shape(features) == json_shape(
        exchange("01_connect.json", "GET /features")["response"]["json"]
    )


async def test_s02_save_preview_cached_reruns(
    fake: FakeComfyServer, http: aiohttp.ClientSession
) -> None:
    submitter = await Sock.open(http, fake.ws_url("client-basic-02"))
    observer = await Sock.open(http, fake.ws_url("client-observer-02"))
    ids = []
    for body in bodies("02_save_preview.json"):
        answer = await submit(http, fake, body)
        ids.append(answer["prompt_id"])
        await submitter.wait_finished(answer["prompt_id"])
    await fake.wait_idle()
    await submitter.close()
    await observer.close()
    assert [submitter.shapes()] == recorded_shapes("02_save_preview_x3_submitter.jsonl")
    assert [observer.shapes()] == recorded_shapes("02_save_preview_x3_other_client.jsonl")
    # Cached reruns point at the same files; the partly cached run saved a new one.
    executed = [e["data"] for e in submitter.events() if e["type"] == "executed"]
    names = [d["output"]["images"][0]["filename"] for d in executed]
    assert names[0] == names[2]
    assert names[1] == names[3] == names[5]
    assert names[4].startswith("probe_changed_")
    recorded = {e["label"]: e["response"] for e in recorded_requests("02_save_preview.json")}
    for pid, label in zip(
        ids,
        [
            "GET /history/{run1}",
            "GET /history/{run2 fully cached}",
            "GET /history/{run3 partially cached}",
        ],
        strict=True,
    ):
        status, body = await get(http, fake, f"/history/{pid}")
        assert status == 200
        assert json_shape(body) == json_shape(recorded[label]["json"])
    status, job = await get(http, fake, f"/api/jobs/{ids[0]}")
    assert json_shape(job) == json_shape(recorded["GET /api/jobs/{run1}"]["json"])
    # /view variants: status codes and headers as recorded.
    for item in recorded_requests("02_save_preview.json"):
        request, response = item["request"], item["response"]
        if "view" not in request["path"]:
            continue
        files = {"probe_00001_.png": names[0], "ComfyUI_temp_bdyhz_00001_.png": names[1]}
        query = replace_ids(dict(request["query"] or {}), files)
        async with http.get(f"{fake.url}{request['path']}", params=query) as answer:
            data = await answer.read()
            assert answer.status == response["status"], item["label"]
            if answer.status == 200:
                assert answer.headers["Content-Disposition"].startswith('filename="')
                assert data.startswith(b"\x89PNG")
            else:
                assert data == b""


def _comparable(body: Any) -> Any:
    """A validation body without what may differ: traceback file paths, new ids and numbers."""
    if isinstance(body, dict):
        return {
            key: _comparable(value)
            for key, value in body.items()
            if key not in {"prompt_id", "number", "traceback"}
        }
    if isinstance(body, list):
        return [_comparable(item) for item in body]
    return body


async def test_s03_validation(fake: FakeComfyServer, http: aiohttp.ClientSession) -> None:
    """Every recorded validation answer (400s and 200s with node_errors) is reproduced."""
    cases = 0
    for item in recorded_requests("03_validation_errors.json"):
        case = item["label"]
        request, response = item["request"], item["response"]
        kwargs: dict[str, Any] = (
            {"json": request["json"]} if "json" in request else {"data": request["raw_body"]}
        )
        async with http.post(f"{fake.url}/prompt", **kwargs) as answer:
            assert answer.status == response["status"], case
            if "json" in response:
                body = await answer.json()
                assert _comparable(body) == _comparable(response["json"]), case
            else:
                assert answer.headers["Content-Type"].startswith("text/plain")
                assert await answer.text() == response["text"]
        cases += 1
    assert cases == 17  # every POST /prompt of the recording


async def test_s04_progress_metadata_legacy_observer(
    fake: FakeComfyServer, http: aiohttp.ClientSession
) -> None:
    meta = await Sock.open(http, fake.ws_url("client-meta-04"), [FLAGS])
    legacy = await Sock.open(http, fake.ws_url("client-legacy-04"))
    observer = await Sock.open(http, fake.ws_url("client-observer-04"), [FLAGS])
    await meta.wait_for(lambda e: e["type"] == "feature_flags")
    await observer.wait_for(lambda e: e["type"] == "feature_flags")
    for body in bodies("04_progress.json"):
        answer = await submit(http, fake, body)
        if "client_id" in body:
            sock = meta if body["client_id"] == "client-meta-04" else legacy
            await sock.wait_finished(answer["prompt_id"])
        await fake.wait_idle()
    for sock, filename in [
        (meta, "04_progress_metadata_client.jsonl"),
        (legacy, "04_progress_legacy_client.jsonl"),
        (observer, "04_progress_observer_client.jsonl"),
    ]:
        await sock.close()
        assert [sock.shapes()] == recorded_shapes(filename), filename


async def test_s05_execution_error(fake: FakeComfyServer, http: aiohttp.ClientSession) -> None:
    submitter = await Sock.open(http, fake.ws_url("client-err-05"), [FLAGS])
    observer = await Sock.open(http, fake.ws_url("client-obs-05"))
    await submitter.wait_for(lambda e: e["type"] == "feature_flags")
    (body,) = bodies("05_execution_error.json")
    answer = await submit(http, fake, body)
    await submitter.wait_finished(answer["prompt_id"])
    await fake.wait_idle()
    await submitter.close()
    await observer.close()
    assert [submitter.shapes()] == recorded_shapes("05_execution_error_submitter.jsonl")
    assert [observer.shapes()] == recorded_shapes("05_execution_error_other_client.jsonl")
    error = next(e["data"] for e in submitter.events() if e["type"] == "execution_error")
    recorded = exchange("05_execution_error.json", "GET /api/jobs/{failed}")["response"]["json"]
    assert json_shape(error) == json_shape(recorded["execution_error"])
    assert error["exception_message"] == "deliberate failure\n"
    for path, label in [
        (f"/history/{answer['prompt_id']}", "GET /history/{failed}"),
        (f"/api/jobs/{answer['prompt_id']}", "GET /api/jobs/{failed}"),
    ]:
        status, got = await get(http, fake, path)
        want = exchange("05_execution_error.json", label)["response"]["json"]
        assert status == 200
        assert json_shape(got) == json_shape(want)


def replace_ids(value: Any, ids: dict[str, str]) -> Any:
    text = json.dumps(value)
    for recorded, ours in ids.items():
        text = text.replace(recorded, ours)
    return json.loads(text)


async def test_s06_interrupt_and_cancel(http: aiohttp.ClientSession) -> None:
    async with FakeComfyServer(time_scale=0.2) as fake:
        submitter = await Sock.open(http, fake.ws_url("client-int-06"), [FLAGS])
        observer = await Sock.open(http, fake.ws_url("client-obs-06"))
        await submitter.wait_for(lambda e: e["type"] == "feature_flags")
        ids: dict[str, str] = {}
        for item in recorded_requests("06_interrupt_cancel.json"):
            label, request, want = item["label"], item["request"], item["response"]
            if label.startswith("POST /prompt"):
                long = request["json"]["prompt"]["2"]["inputs"]["steps"] == 200
                if long:
                    await fake.wait_idle()
                ours = (await submit(http, fake, request["json"]))["prompt_id"]
                ids[want["json"]["prompt_id"]] = ours
                if long:
                    await submitter.wait_for(
                        lambda e, p=ours: e["type"] == "progress" and e["data"]["prompt_id"] == p
                    )
                continue
            if label.startswith("GET /history/"):
                await fake.wait_idle()
            async with http.request(
                request["method"],
                fake.url + replace_ids(request["path"], ids),
                json=replace_ids(request.get("json"), ids),
                params=request.get("query") or None,
            ) as answer:
                raw = await answer.read()
                assert answer.status == want["status"], label
                if "json" in want:
                    assert json_shape(json.loads(raw)) == json_shape(want["json"]), label
                else:
                    assert raw == b"", label
        await fake.wait_idle()
        await submitter.close()
        await observer.close()
    (recorded,) = recorded_shapes("06_interrupt_cancel_submitter.jsonl")
    same_shapes(without_steps(submitter.shapes()), without_steps(recorded), "submitter")
    assert [observer.shapes()] == recorded_shapes("06_interrupt_cancel_other_client.jsonl")


async def test_s07_two_clients(fake: FakeComfyServer, http: aiohttp.ClientSession) -> None:
    x = await Sock.open(http, fake.ws_url("client-x-07"), [FLAGS])
    y = await Sock.open(http, fake.ws_url("client-y-07"))
    await x.wait_for(lambda e: e["type"] == "feature_flags")
    for body in bodies("07_two_clients.json"):
        await submit(http, fake, body)
    _, queue = await get(http, fake, "/queue")
    want = exchange("07_two_clients.json", "GET /queue (X running, Y pending)")["response"]["json"]
    assert json_shape(queue) == json_shape(want)
    assert len(queue["queue_running"]) == 1
    assert len(queue["queue_pending"]) == 1
    _status, jobs = await get(http, fake, "/api/jobs")
    assert [j["status"] for j in jobs["jobs"]] == ["pending", "in_progress"]
    await fake.wait_idle()
    await x.close()
    await y.close()
    for sock, filename in [(x, "07_two_clients_X.jsonl"), (y, "07_two_clients_Y.jsonl")]:
        (recorded,) = recorded_shapes(filename)
        assert without_steps(sock.shapes()) == without_steps(recorded), filename


async def test_s08_reconnect_orphaning(http: aiohttp.ClientSession) -> None:
    async with FakeComfyServer(time_scale=0.3) as fake:
        first = await Sock.open(http, fake.ws_url("client-recon-08"))
        (body,) = bodies("08_reconnect.json")
        answer = await submit(http, fake, body)
        await first.wait_for(lambda e: e["type"] == "progress")
        second = await Sock.open(http, fake.ws_url("client-recon-08"))
        await second.wait_for(lambda e: e["type"] == "progress")
        await first.close()  # its cleanup orphans the second socket (§3.1)
        await asyncio.sleep(0.1)
        third = await Sock.open(http, fake.ws_url("client-recon-08"))
        await third.wait_finished(answer["prompt_id"])
        await fake.wait_idle()
        await second.close()
        await third.close()
    recorded = recorded_shapes("08_reconnect_first_socket.jsonl")
    assert without_steps(first.shapes()) == without_steps(recorded[0])
    (recorded_second,) = recorded_shapes("08_reconnect_second_socket_same_clientId.jsonl")
    assert without_steps(second.shapes()) == without_steps(recorded_second)
    (recorded_third,) = recorded_shapes("08_reconnect_third_socket_same_clientId.jsonl")
    assert without_steps(third.shapes()) == without_steps(recorded_third)
    assert second.events()[1] == {"type": "executing", "data": {"node": "2"}}


async def test_s09_uploads(fake: FakeComfyServer, http: aiohttp.ClientSession) -> None:
    from comfy_async.testing._images import solid_png

    red, blue = solid_png(4, 4, 0xFF0000), solid_png(4, 4, 0x0000FF)

    async def upload(data: bytes, path: str = "/upload/image", **fields: str) -> tuple[int, Any]:
        form = aiohttp.FormData()
        if data:
            form.add_field("image", data, filename=fields.pop("filename", "probe_upload.png"))
        for key, value in fields.items():
            form.add_field(key, value)
        async with http.post(f"{fake.url}{path}", data=form) as answer:
            raw = await answer.read()
            return answer.status, json.loads(raw) if raw else None

    results = [
        await upload(red),
        await upload(red),
        await upload(blue),
        await upload(blue, overwrite="true"),
        await upload(red, subfolder="probe_sub", type="input"),
        await upload(red, type="temp"),
        await upload(red, subfolder="../../escape"),
        await upload(b"", other="x"),
        await upload(
            solid_png(4, 4, 0),
            "/upload/mask",
            filename="probe_mask.png",
            original_ref=json.dumps({"filename": "probe_upload.png", "type": "input"}),
        ),
    ]
    recorded = recorded_requests("09_uploads.json")
    for (status, body), item in zip(results, recorded, strict=False):
        assert status == item["response"]["status"], item["label"]
        assert body == item["response"].get("json"), item["label"]
    for item in recorded[-2:]:
        status, _ = await get(http, fake, "/view", **item["request"]["query"])
        assert status == 200


# Answers that depend on what the recorded server had run before (its history, jobs and output
# folder): only the status and the top-level keys are compared, not the entries.
S10_STATEFUL = ("GET /api/jobs", "GET /api/api/jobs", "GET /history?", "GET /internal/files/output")
# Bodies recorded by size only (or truncated): their size depends on the machine.
S10_SIZE_ONLY = ("GET /object_info (saved", "GET /internal/logs/raw", "GET /i18n")


def _top_level(value: Any) -> Any:
    if isinstance(value, dict):
        if all(UUID.match(key) for key in value):
            return "entries by prompt id"  # history: {} on a fresh server
        return sorted(value)
    return type(value).__name__


async def test_s10_misc_routes(fake: FakeComfyServer, http: aiohttp.ClientSession) -> None:
    mismatches = []
    for item in recorded_requests("10_misc_routes.json"):
        request, want, label = item["request"], item["response"], item["label"]
        async with http.request(
            request["method"],
            f"{fake.url}{request['path']}",
            params=request.get("query") or None,
            json=request.get("json"),
        ) as answer:
            raw = await answer.read()
            status, content_type = answer.status, answer.content_type
        if status != want["status"]:
            mismatches.append(f"{label}: status {status}, recorded {want['status']}")
            continue
        if "text" in want:
            if raw.decode() != want["text"]:
                mismatches.append(f"{label}: text {raw[:80]!r}, recorded {want['text']!r}")
        elif "json" in want:
            got, recorded = json.loads(raw), want["json"]
            if label.startswith(S10_STATEFUL):
                if _top_level(got) != _top_level(recorded):
                    mismatches.append(f"{label}: keys {_top_level(got)}")
            elif label == "GET /global_subgraphs":  # the fake serves a few of the entries
                shapes = {json.dumps(json_shape(entry)) for entry in recorded.values()}
                if not got or any(json.dumps(json_shape(e)) not in shapes for e in got.values()):
                    mismatches.append(f"{label}: entries {got}")
            elif json_shape(got) != json_shape(recorded):
                mismatches.append(f"{label}: shape {json_shape(got)}")
        elif not label.startswith(S10_SIZE_ONLY) and want.get("body_len") == 0 and raw:
            mismatches.append(f"{label}: body {raw[:80]!r} ({content_type}), recorded empty")
    assert mismatches == []


async def test_s11_history_delete_clear(fake: FakeComfyServer, http: aiohttp.ClientSession) -> None:
    sock = await Sock.open(http, fake.ws_url("client-hist-11"))
    ids = []
    for recorded in bodies("12_duplicate_prompt_id.json")[2:]:
        body = {k: v for k, v in recorded.items() if k != "prompt_id"}
        ids.append((await submit(http, fake, {**body, "client_id": "client-hist-11"}))["prompt_id"])
    await fake.wait_idle()
    await sock.close()
    _, newest = await get(http, fake, "/history", max_items="1")
    _, oldest = await get(http, fake, "/history", max_items="1", offset="0")
    assert list(newest) == [ids[-1]]
    assert list(oldest) == [ids[0]]
    status, _ = await get(http, fake, "/history", max_items="x")
    assert status == 500
    for item in recorded_requests("11_history_delete_clear.json")[3:]:
        request, want = item["request"], item["response"]
        path = request["path"].replace("18f4ead6-e28e-4498-b2df-6657a62bb2dd", ids[0])
        body = request.get("json")
        if body and "delete" in body:
            body = {"delete": [ids[0]]}
        async with http.request(request["method"], f"{fake.url}{path}", json=body) as answer:
            raw = await answer.read()
            assert answer.status == want["status"], item["label"]
            assert (json.loads(raw) if raw else None) == want.get("json"), item["label"]


async def test_s12_duplicate_prompt_id(fake: FakeComfyServer, http: aiohttp.ClientSession) -> None:
    sock = await Sock.open(http, fake.ws_url("client-dup-12"))
    answers = []
    for body in bodies("12_duplicate_prompt_id.json"):
        answers.append(await submit(http, fake, body))
        await sock.wait_finished(answers[-1]["prompt_id"])
    await fake.wait_idle()
    await sock.close()
    assert [sock.shapes()] == recorded_shapes("12_duplicate_prompt_id.jsonl")
    assert (
        answers[0]["prompt_id"] == answers[1]["prompt_id"] == "5a37e805-0dd9-43db-9b0b-d97d52b67709"
    )
    assert answers[3]["number"] == 7.5
    _, history = await get(http, fake, f"/history/{answers[0]['prompt_id']}")
    assert history[answers[0]["prompt_id"]]["prompt"][0] == answers[1]["number"]  # last run wins
    _, jobs = await get(http, fake, "/api/jobs")
    assert [j["id"] for j in jobs["jobs"]].count(answers[0]["prompt_id"]) == 1
    _, by_workflow = await get(
        http, fake, "/api/jobs", workflow_id="11111111-2222-3333-4444-555555555555"
    )
    want = exchange("12_duplicate_prompt_id.json", "GET /api/jobs?workflow_id=...")["response"][
        "json"
    ]
    assert json_shape(by_workflow) == json_shape(want)
    assert fake.posts_for(answers[0]["prompt_id"]) == 2


async def test_s13_history_written_before_finish_marker(
    fake: FakeComfyServer, http: aiohttp.ClientSession
) -> None:
    sock = await Sock.open(http, fake.ws_url("client-race-13"))
    for body in bodies("13_history_race.json"):
        answer = await submit(http, fake, body)
        await sock.wait_for(
            lambda e, p=answer["prompt_id"]: (
                e["type"] == "execution_success" and e["data"]["prompt_id"] == p
            )
        )
        await sock.wait_finished(answer["prompt_id"])
        _, entry = await get(http, fake, f"/history/{answer['prompt_id']}")
        assert answer["prompt_id"] in entry
    await sock.close()
    (recorded,) = recorded_shapes("13_history_race.jsonl")
    assert sock.shapes() == recorded


async def test_s14_logs_subscription(fake: FakeComfyServer, http: aiohttp.ClientSession) -> None:
    sock = await Sock.open(http, fake.ws_url("client-logs-14"))
    items = recorded_requests("14_logs_subscription.json")
    async with http.patch(
        f"{fake.url}/internal/logs/subscribe", json=items[0]["request"]["json"]
    ) as answer:
        assert answer.status == 200
    answer_body = await submit(http, fake, items[1]["request"]["json"])
    await sock.wait_finished(answer_body["prompt_id"])
    await sock.close()
    logs = [e for e in sock.events() if e["type"] == "logs"]
    assert logs
    assert set(logs[0]["data"]) == {"entries", "size"}
    assert only(sock.shapes(), "logs")


async def test_s15_limits_origin_misc(http: aiohttp.ClientSession) -> None:
    async with FakeComfyServer(max_upload_size=1024) as fake:
        form = aiohttp.FormData()
        form.add_field("image", b"x" * 4096, filename="big.png")
        async with http.post(f"{fake.url}/upload/image", data=form) as answer:
            assert answer.status == 413
            assert await answer.text() == "Maximum request body size 1024 exceeded."
        cases = [
            ({"Origin": "http://evil.example"}, 403),
            ({"Origin": fake.url}, 200),
            ({"Sec-Fetch-Site": "cross-site"}, 403),
        ]
        for headers, status in cases:
            async with http.get(f"{fake.url}/queue", headers=headers) as answer:
                assert answer.status == status
        async with http.get(f"{fake.url}/ws") as answer:
            assert answer.status == 400
            want = exchange("15_limits_origin_misc.json", "GET /ws without Upgrade headers")
            assert await answer.text() == want["response"]["text"]
        async with http.options(f"{fake.url}/prompt") as answer:
            assert answer.status == 200
            assert await answer.read() == b""


async def test_s16_execution_blocker(fake: FakeComfyServer, http: aiohttp.ClientSession) -> None:
    sock = await Sock.open(http, fake.ws_url("client-block-16"))
    answers = []
    for body in bodies("16_execution_blocker.json"):
        answers.append(await submit(http, fake, body))
        await sock.wait_finished(answers[-1]["prompt_id"])
    await sock.close()
    assert [sock.shapes()] == recorded_shapes("16_execution_blocker.jsonl")
    blocked = next(e["data"] for e in sock.events() if e["type"] == "execution_error")
    assert "timestamp" not in blocked
    assert blocked["current_inputs"] == []
    _, job = await get(http, fake, f"/api/jobs/{answers[0]['prompt_id']}")
    assert job["status"] == "completed"
    assert [m[0] for m in job["execution_status"]["messages"]] == [
        "execution_start",
        "execution_cached",
        "execution_success",
    ]
