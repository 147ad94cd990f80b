"""``comfy.jobs``: detection of the jobs API, neutral sort names, requests and answers."""

from __future__ import annotations

import asyncio
import json

import pytest

from comfy_async import ComfyClient
from comfy_async.errors import (
    BadRequestError,
    ConfigurationError,
    NotFoundError,
    ServerError,
    UnsupportedOperationError,
)
from tests.http_mocks import CLOUD, FAST, LOCAL, calls, count, mocked_http
from tests.recordings import find, matching

JOBS = f"{LOCAL}/api/jobs"


async def test_detection_runs_once_and_is_cached(mocked: mocked_http) -> None:
    comfy = ComfyClient(LOCAL, options=FAST)
    mocked.get(f"{JOBS}?limit=1", body=find("11", "GET /api/jobs after clear").body)
    results = await asyncio.gather(*(comfy.jobs.available() for _ in range(5)))
    assert results == [True] * 5
    assert await comfy.jobs.available()
    assert count(mocked, "GET", f"{JOBS}?limit=1") == 1
    await comfy.aclose()


async def test_an_older_server_has_no_jobs_api(mocked: mocked_http) -> None:
    comfy = ComfyClient(LOCAL, options=FAST)
    mocked.get(f"{JOBS}?limit=1", status=404, repeat=True)
    assert not await comfy.jobs.available()
    assert not await comfy.jobs.available()
    assert count(mocked, "GET", f"{JOBS}?limit=1") == 1
    for call in (comfy.jobs.list(), comfy.jobs.get("x"), comfy.jobs.cancel("x")):
        with pytest.raises(UnsupportedOperationError):
            await call
    with pytest.raises(UnsupportedOperationError):
        await comfy.jobs.cancel_many(["x"])
    await comfy.aclose()


async def test_a_failed_detection_is_not_cached(mocked: mocked_http) -> None:
    comfy = ComfyClient(LOCAL, options=FAST.replace(retry=FAST.retry.never()))
    mocked.get(f"{JOBS}?limit=1", status=500)
    mocked.get(f"{JOBS}?limit=1", payload={"jobs": []})
    with pytest.raises(ServerError):
        await comfy.jobs.available()
    assert await comfy.jobs.available()
    await comfy.aclose()


async def test_the_override_skips_detection(mocked: mocked_http) -> None:
    comfy = ComfyClient(LOCAL, options=FAST, jobs_api=False)
    assert not await comfy.jobs.available()
    assert mocked.requests == {}
    await comfy.aclose()


@pytest.mark.parametrize(
    ("base", "created", "duration"),
    [(LOCAL, "created_at", "execution_duration"), (CLOUD, "create_time", "execution_time")],
)
async def test_list_maps_neutral_names_per_flavour(
    base: str, created: str, duration: str, mocked: mocked_http
) -> None:
    comfy = ComfyClient(
        base, api_key="k" * 20 if base == CLOUD else None, options=FAST, jobs_api=True
    )
    body = find("10", "GET /api/jobs default").body
    mocked.get(
        f"{base}/api/jobs?status=completed,failed&sort_by={created}&sort_order=asc&limit=2&offset=4",
        body=body,
    )
    mocked.get(f"{base}/api/jobs?sort_by={duration}&workflow_id=w&after=cur", body=body)
    page = await comfy.jobs.list(
        status=["completed", "failed"], sort_by="created", sort_order="asc", limit=2, offset=4
    )
    assert page.jobs
    await comfy.jobs.list(sort_by="duration", workflow_id="w", after="cur")
    with pytest.raises(ConfigurationError):
        await comfy.jobs.list(sort_by="create_time")  # type: ignore[arg-type]
    await comfy.aclose()


@pytest.mark.parametrize("ex", matching("GET", "/jobs"), ids=lambda ex: ex.label)
async def test_recorded_job_lists_decode(
    local: ComfyClient, mocked: mocked_http, ex: object
) -> None:
    mocked.get(JOBS, body=ex.body)  # type: ignore[attr-defined]
    page = await local.jobs.list()
    assert len(page.jobs) == len(ex.json["jobs"])  # type: ignore[attr-defined]


async def test_get_returns_none_on_404(local: ComfyClient, mocked: mocked_http) -> None:
    (detail,) = [ex for ex in matching("GET", "/jobs/[^/]+") if ex.json.get("outputs")][:1]
    job_id = detail.json["id"]
    mocked.get(f"{JOBS}/{job_id}", body=detail.body)
    missing = find("10", "GET /api/jobs/not-a-uuid 404")
    mocked.get(f"{JOBS}/not-a-uuid", status=404, body=missing.body)
    job = await local.jobs.get(job_id)
    assert job is not None
    assert job.id == job_id
    assert job.files()
    assert await local.jobs.get("not-a-uuid") is None


async def test_bad_filters_are_bad_requests(local: ComfyClient, mocked: mocked_http) -> None:
    recorded = find("10", "GET /api/jobs?status=bogus 400")
    mocked.get(f"{JOBS}?status=bogus", status=400, body=recorded.body)
    with pytest.raises(BadRequestError, match="Invalid status"):
        await local.jobs.list(status="bogus")


async def test_cancel_one_and_many(
    local: ComfyClient, cloud: ComfyClient, mocked: mocked_http
) -> None:
    mocked.post(f"{JOBS}/a/cancel", payload={"cancelled": True})
    mocked.post(f"{JOBS}/cancel", payload={"cancelled": False})
    assert await local.jobs.cancel("a")
    result = await local.jobs.cancel_many(["a", "b"])
    assert not result.any_cancelled
    (call,) = calls(mocked, "POST", f"{JOBS}/cancel")
    assert json.loads(call["data"]) == {"job_ids": ["a", "b"]}
    assert calls(mocked, "POST", f"{JOBS}/a/cancel")[0]["data"] is None
    mocked.get(f"{CLOUD}/api/jobs?limit=1", payload={"jobs": []})
    mocked.post(f"{CLOUD}/api/jobs/cancel", payload={"cancelled": ["a"]})
    mocked.post(f"{CLOUD}/api/jobs/cancel", status=404, payload={"error": "unknown"})
    assert (await cloud.jobs.cancel_many(["a"])).cancelled_ids == ["a"]
    with pytest.raises(NotFoundError):
        await cloud.jobs.cancel_many(["zzz"])


async def test_raw_status_is_cloud_only(
    local: ComfyClient, cloud: ComfyClient, mocked: mocked_http
) -> None:
    mocked.get(f"{CLOUD}/api/job/j/status", payload={"status": "executing", "id": "j"})
    assert (await cloud.jobs.raw_status("j")).phase == "running"
    with pytest.raises(UnsupportedOperationError):
        await local.jobs.raw_status("j")
