"""The v2 fake as a client sees it on the wire: auth, submission rules, SSE, links, hashes."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import aiohttp
import blake3
import orjson
import pytest

from comfy_async.models import decode_v2_asset, decode_v2_error, decode_v2_job
from comfy_async.testing import FakeComfyApiV2
from tests.session.graphs import sleeper


@pytest.fixture
async def fake() -> AsyncIterator[FakeComfyApiV2]:
    async with FakeComfyApiV2(time_scale=0.0) as server:
        yield server


def auth(fake: FakeComfyApiV2) -> dict[str, str]:
    return {"Authorization": f"Bearer {fake.api_key}"}


async def error_code(response: aiohttp.ClientResponse) -> str:
    envelope = decode_v2_error(await response.read())
    assert envelope is not None
    return envelope.error.code


async def test_every_route_needs_the_bearer_token(fake: FakeComfyApiV2) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{fake.url}/api/v2/jobs", json={"workflow": {}}) as answer:
            assert answer.status == 401
            assert await error_code(answer) == "unauthorized"
        async with http.get(
            f"{fake.url}/api/v2/jobs/x", headers={"Authorization": "Bearer no"}
        ) as answer:
            assert answer.status == 401


async def test_ui_workflows_are_refused_and_keys_are_single_use(fake: FakeComfyApiV2) -> None:
    jobs = f"{fake.url}/api/v2/jobs"
    async with aiohttp.ClientSession(headers=auth(fake)) as http:
        ui: dict[str, object] = {"workflow": {"nodes": [], "links": []}}
        async with http.post(jobs, json=ui, headers={"Idempotency-Key": "k"}) as answer:
            assert answer.status == 422
            assert await error_code(answer) == "workflow_format_ui"
        body = {"workflow": sleeper(steps=1)}
        async with http.post(jobs, json=body, headers={"Idempotency-Key": "k"}) as answer:
            assert answer.status == 201  # the refused request did not claim the key
            job = decode_v2_job(await answer.read())
        async with http.post(jobs, json=body, headers={"Idempotency-Key": "k"}) as answer:
            assert answer.status == 422
            assert await error_code(answer) == "idempotency_key_reuse"
    assert job.status == "queued"
    assert job.urls.self_ == f"/api/v2/jobs/{job.id}"
    assert len(fake.jobs) == 1


async def test_a_finished_job_streams_its_snapshot_and_ends(fake: FakeComfyApiV2) -> None:
    async with aiohttp.ClientSession(headers=auth(fake)) as http:
        body = {"workflow": sleeper(steps=2)}
        async with http.post(f"{fake.url}/api/v2/jobs", json=body) as answer:
            job = decode_v2_job(await answer.read())
        await fake.native.wait_idle()
        async with http.get(f"{fake.url}{job.urls.self_}") as answer:
            done = decode_v2_job(await answer.read())
        assert done.status == "succeeded"
        assert [output.name for output in done.outputs] == ["out_00001_.png"]
        async with http.get(f"{fake.url}{job.urls.events}") as answer:
            text = (await answer.read()).decode()
        assert text.startswith("event: status\ndata: ")
        assert '"succeeded"' in text
        async with http.get(done.outputs[0].url) as answer:
            assert (await answer.read()).startswith(b"\x89PNG")


async def test_an_upload_is_hashed_verified_and_deduplicated(fake: FakeComfyApiV2) -> None:
    data = b"some bytes"
    digest = "blake3:" + blake3.blake3(data).hexdigest()

    def form(expected: str) -> aiohttp.FormData:
        fields = aiohttp.FormData()
        fields.add_field("file", data, filename="a.bin")
        fields.add_field("content_type", "application/octet-stream")
        fields.add_field("file_path", "a.bin")
        fields.add_field("expected_hash", expected)
        return fields

    async with aiohttp.ClientSession(headers=auth(fake)) as http:
        async with http.post(f"{fake.url}/api/v2/assets", data=form("blake3:00")) as answer:
            assert answer.status == 409
            assert await error_code(answer) == "hash_mismatch"
        async with http.head(f"{fake.url}/api/v2/assets/by-hash/{digest}") as answer:
            assert answer.status == 404
        async with http.post(f"{fake.url}/api/v2/assets", data=form(digest)) as answer:
            assert answer.status == 201
            first = decode_v2_asset(await answer.read())
        async with http.post(f"{fake.url}/api/v2/assets", data=form(digest)) as answer:
            assert answer.status == 200
            second = decode_v2_asset(await answer.read())
        async with http.head(f"{fake.url}/api/v2/assets/by-hash/{digest}") as answer:
            assert answer.status == 200
        body = {"hash": "blake3:ff"}
        async with http.post(f"{fake.url}/api/v2/assets/from-hash", json=body) as answer:
            assert answer.status == 404
            assert await error_code(answer) == "blob_not_found"
    assert first.hash == second.hash == digest
    assert first.created_new is True
    assert second.created_new is False
    assert first.id != second.id


async def read_events(answer: aiohttp.ClientResponse) -> list[tuple[str, bytes]]:
    """The (name, data) pairs of a whole SSE answer."""
    events = []
    for block in (await answer.read()).split(b"\n\n"):
        lines = dict(line.split(b": ", 1) for line in block.splitlines() if b": " in line)
        if b"event" in lines:
            events.append((lines[b"event"].decode(), lines.get(b"data", b"")))
    return events


async def test_previews_stream_as_the_contract_has_them_the_newest_on_connect() -> None:
    async with (
        FakeComfyApiV2(time_scale=1.0) as fake,
        aiohttp.ClientSession(headers=auth(fake)) as http,
    ):
        body = {"workflow": sleeper(steps=6, delay=0.05, preview="JPEG")}
        async with http.post(f"{fake.url}/api/v2/jobs", json=body) as answer:
            job = decode_v2_job(await answer.read())
        async with http.get(f"{fake.url}{job.urls.events}") as answer:
            live = await read_events(answer)
        async with http.get(f"{fake.url}{job.urls.events}") as answer:
            after = await read_events(answer)
    previews = [orjson.loads(data) for name, data in live if name == "preview"]
    assert previews, "a workflow that makes previews streams them"
    for preview in previews:
        assert set(preview) == {"node_id", "content_type", "data_base64"}
        assert preview["node_id"] == "2"
        assert preview["content_type"] == "image/jpeg"
        assert base64.b64decode(preview["data_base64"]).startswith(b"\xff\xd8")  # a JPEG
    assert [name for name, _ in after] == ["status", "progress"]  # ended: no stale preview


async def test_a_stream_opened_mid_job_gets_the_newest_preview_and_previews_are_throttled() -> None:
    async with (
        FakeComfyApiV2(time_scale=1.0, preview_every=60.0) as fake,
        aiohttp.ClientSession(headers=auth(fake)) as http,
    ):
        body = {"workflow": sleeper(steps=8, delay=0.4, preview="JPEG")}
        async with http.post(f"{fake.url}/api/v2/jobs", json=body) as answer:
            job = decode_v2_job(await answer.read())
        while fake.jobs[job.id].preview is None:
            await asyncio.sleep(0.01)
        async with http.get(f"{fake.url}{job.urls.events}") as answer:
            events = await read_events(answer)
    names = [name for name, _ in events]
    assert names[:3] == ["status", "progress", "preview"]  # the snapshot on connect
    assert names.count("preview") == 1  # throttled: one a minute at most
    assert names[-1] == "status"


async def test_no_previews_for_a_workflow_that_makes_none(fake: FakeComfyApiV2) -> None:
    async with aiohttp.ClientSession(headers=auth(fake)) as http:
        body = {"workflow": sleeper(steps=3)}
        async with http.post(f"{fake.url}/api/v2/jobs", json=body) as answer:
            job = decode_v2_job(await answer.read())
        async with http.get(f"{fake.url}{job.urls.events}") as answer:
            events = await read_events(answer)
    assert "preview" not in {name for name, _ in events}
    assert fake.previews_sent == 0
