"""The Comfy API v2 backend behind the same Job, against the v2 fake, with faults injected.

The proof first: one job script, unchanged, runs against the native fake and the v2 fake and
sees the same lifecycle of events, the same previews (the contract's SSE ``preview`` events as
``PreviewImage``) and the same result. Then the scenarios the WebSocket backend
has where they apply: a stream cut mid-job, 5xx answers, slow polls, cancel by task
cancellation, timeouts, failures, re-attach by id, idempotent submission, bad credentials.
Durations are multiples of ``UNIT`` (env ``COMFY_ASYNC_TEST_UNIT``).
"""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from comfy_async import ComfyClient
from comfy_async.config import (
    Backoff,
    ClientOptions,
    ReconcilePolicy,
    ReconnectPolicy,
    RetryPolicy,
    Timeouts,
)
from comfy_async.errors import (
    AuthenticationError,
    ConflictError,
    ExecutionError,
    JobCancelled,
    JobLost,
    JobTimeout,
    PromptValidationError,
    UnsupportedOperationError,
)
from comfy_async.events import (
    Event,
    Executed,
    Executing,
    ExecutionFailed,
    ExecutionInterrupted,
    ExecutionStart,
    ExecutionSuccess,
    PreviewImage,
    Progress,
)
from comfy_async.testing import FakeComfyApiV2, FakeComfyServer
from tests.session.graphs import failing, sleeper

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

UNIT = float(os.environ.get("COMFY_ASYNC_TEST_UNIT", "0.1"))
LIFECYCLE = (ExecutionStart, Executing, Progress, Executed, ExecutionSuccess)
TERMINAL = (ExecutionSuccess, ExecutionFailed, ExecutionInterrupted)


def options() -> ClientOptions:
    """Quick retries, stream reconnects and polls, scaled to UNIT."""
    quick = Backoff(initial=UNIT / 10, maximum=UNIT, jitter=0.5)
    return ClientOptions(
        timeouts=Timeouts(connect=20 * UNIT, read=100 * UNIT),
        retry=RetryPolicy(max_retries=3, backoff=quick),
        reconnect=ReconnectPolicy(backoff=quick),
        reconcile=ReconcilePolicy(follow_every=UNIT / 2),
    )


@pytest.fixture
async def v2() -> AsyncIterator[FakeComfyApiV2]:
    async with FakeComfyApiV2(time_scale=1.0) as fake:
        yield fake


def client(fake: FakeComfyApiV2, **changes: Any) -> ComfyClient:
    return ComfyClient.v2(fake.url, api_key=fake.api_key, options=options(), **changes)


def steps_graph(steps: int = 4, preview: str = "none") -> dict[str, dict[str, object]]:
    return sleeper(steps=steps, delay=UNIT / 2, color=0x336699, prefix="same", preview=preview)


class Run(NamedTuple):
    """What the job script saw."""

    lifecycle: list[str]
    files: list[str]
    saved: bytes
    previews: list[tuple[str, str | None, bytes]]
    """Each preview's image type, node and bytes."""


async def job_script(comfy: ComfyClient, folder: Path) -> Run:
    """What a user writes: submit, follow the events (previews too), take the result, save."""
    job = await comfy.submit(steps_graph(preview="JPEG"))
    seen: list[Event] = [event async for event in job]
    result = await job.result(timeout=200 * UNIT)
    paths = await result.save(folder)
    lifecycle: list[str] = []
    for event in seen:
        if isinstance(event, LIFECYCLE) and not (
            isinstance(event, Executing) and event.node is None  # the native finish marker
        ):
            name = type(event).__name__
            if not lifecycle or lifecycle[-1] != name:
                lifecycle.append(name)
    previews = [
        (event.mime, event.node_id, bytes(event.image))
        for event in seen
        if isinstance(event, PreviewImage)
    ]
    return Run(lifecycle, [file.filename for file in result.files], paths[0].read_bytes(), previews)


async def test_the_same_job_script_runs_unchanged_on_the_native_and_the_v2_server(
    tmp_path: Path,
) -> None:
    async with FakeComfyServer(time_scale=1.0) as native:
        async with ComfyClient(native.url, options=options()) as comfy:
            on_native = await job_script(comfy, tmp_path / "native")
    async with FakeComfyApiV2(time_scale=1.0) as fake, client(fake) as comfy:
        on_v2 = await job_script(comfy, tmp_path / "v2")
    assert on_v2.lifecycle[0] == "ExecutionStart"
    assert on_v2.lifecycle[-1] == "ExecutionSuccess"
    assert on_native.lifecycle[-3:] == on_v2.lifecycle[-3:]
    assert on_v2.lifecycle[-3:] == ["Executing", "Executed", "ExecutionSuccess"]
    assert "Progress" in on_v2.lifecycle
    assert on_native.lifecycle == on_v2.lifecycle
    assert on_native.files == on_v2.files == ["same_00001_.png"]
    assert on_native.saved == on_v2.saved
    assert on_v2.saved.startswith(b"\x89PNG")
    # Previews: the contract's SSE ``preview`` event is live push (no replay), so a stream that
    # connects after the first steps gets only the newest one; each is the native one.
    assert len(on_native.previews) == 4
    assert 1 <= len(on_v2.previews) <= len(on_native.previews)
    assert set(on_v2.previews) == set(on_native.previews[-len(on_v2.previews) :])
    assert {(mime, node) for mime, node, _ in on_v2.previews} == {("image/jpeg", "2")}


async def test_previews_come_from_job_previews_and_a_cut_stream_repeats_none() -> None:
    async with FakeComfyApiV2(time_scale=1.0) as fake, client(fake) as comfy:
        fake.faults.cut_streams_after = 4  # the reopened stream's snapshot repeats a preview
        job = await comfy.submit(steps_graph(steps=6, preview="JPEG"))
        previews = [preview async for preview in job.previews()]
        await job.result()
    assert previews
    assert all(isinstance(preview, PreviewImage) for preview in previews)
    assert {(preview.mime, preview.node_id) for preview in previews} == {("image/jpeg", "2")}
    assert len(previews) <= 6  # never more than the native server made
    assert fake.streams_opened >= 2


async def test_progress_carries_the_node_and_its_steps(v2: FakeComfyApiV2) -> None:
    async with client(v2) as comfy:
        job = await comfy.submit(steps_graph(steps=4))
        steps = [(e.node, e.value, e.max) async for e in job if isinstance(e, Progress)]
        await job.result()
    assert steps[-1] == ("2", 4, 4)
    assert [value for _, value, _ in steps] == sorted(value for _, value, _ in steps)
    assert job.progress.fraction == 1.0


async def test_a_stream_cut_mid_job_still_ends_with_one_outcome(v2: FakeComfyApiV2) -> None:
    v2.faults.cut_streams_after = 2
    async with client(v2) as comfy:
        job = await comfy.submit(steps_graph(steps=4))
        events = [event async for event in job]
        result = await job.result()
    assert v2.streams_opened >= 2
    assert [type(e) for e in events if isinstance(e, TERMINAL)] == [ExecutionSuccess]
    assert [file.filename for file in result.files] == ["same_00001_.png"]


async def test_server_errors_are_retried_on_submit_and_on_polls(v2: FakeComfyApiV2) -> None:
    v2.faults.submit_errors = 1
    v2.faults.poll_errors = 2
    v2.faults.cut_streams_after = 1  # make the client read the job while the 500s are armed
    async with client(v2) as comfy:
        job = await comfy.submit(steps_graph())
        await job.result(timeout=200 * UNIT)
    assert v2.submissions == 2
    assert v2.faults.poll_errors == 0
    assert len(v2.jobs) == 1


async def test_slow_polls_and_no_streams_still_give_the_events_and_the_result(
    v2: FakeComfyApiV2,
) -> None:
    v2.faults.streams_unavailable = True
    v2.faults.poll_delay = UNIT / 2
    async with client(v2) as comfy:
        job = await comfy.submit(sleeper(steps=3, delay=UNIT))
        events = [event async for event in job]
        await job.result()
    assert v2.streams_opened == 0
    kinds = [type(e) for e in events]
    assert kinds[0] is ExecutionStart
    assert kinds[-1] is ExecutionSuccess
    assert Executed in kinds


async def test_cancelling_the_awaiting_task_cancels_the_job_on_the_server(
    v2: FakeComfyApiV2,
) -> None:
    async with client(v2) as comfy:
        job = await comfy.submit(sleeper(steps=50, delay=UNIT))
        waiter = asyncio.create_task(job.result())
        async for event in job:
            if isinstance(event, Progress):
                break
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert await job.wait(100 * UNIT)
        with pytest.raises(JobCancelled):
            await job.result()
    assert v2.jobs[job.prompt_id].status == "canceled"
    assert v2.native.finished[-1] == (job.prompt_id, "interrupted")


async def test_a_queued_job_cancelled_before_it_runs_never_runs(v2: FakeComfyApiV2) -> None:
    async with client(v2) as comfy:
        first = await comfy.submit(sleeper(steps=20, delay=UNIT))
        second = await comfy.submit(sleeper(steps=2))
        assert await second.cancel()
        with pytest.raises(JobCancelled):
            await second.result()
        await first.cancel()
    assert v2.jobs[second.prompt_id].status == "canceled"
    assert second.prompt_id not in {prompt_id for prompt_id, _ in v2.native.finished}


async def test_a_deadline_times_the_job_out_and_cancels_it(v2: FakeComfyApiV2) -> None:
    async with client(v2) as comfy:
        job = await comfy.submit(sleeper(steps=50, delay=UNIT), timeout=3 * UNIT)
        with pytest.raises(JobTimeout):
            await job.result()
        for _ in range(200):
            if v2.jobs[job.prompt_id].status == "canceled":
                break
            await asyncio.sleep(UNIT / 4)
    assert v2.jobs[job.prompt_id].status == "canceled"


async def test_a_failing_node_raises_execution_error(v2: FakeComfyApiV2) -> None:
    async with client(v2) as comfy:
        job = await comfy.submit(failing("boom"))
        events = [event async for event in job]
        with pytest.raises(ExecutionError) as caught:
            await job.result()
    assert caught.value.node_id == "2"
    assert "boom" in str(caught.value)
    assert [type(e) for e in events if isinstance(e, TERMINAL)] == [ExecutionFailed]


async def test_a_job_is_reattached_by_id_from_another_session(v2: FakeComfyApiV2) -> None:
    async with client(v2) as first:
        job = await first.submit(steps_graph(), detach=True)
        job_id = job.prompt_id
    async with client(v2) as second:
        again = await second.attach(job_id)
        result = await again.result(timeout=200 * UNIT)
        assert [file.filename for file in result.files] == ["same_00001_.png"]
        with pytest.raises(JobLost):
            await second.attach("00000000-0000-4000-8000-000000000000")


async def test_submission_is_idempotent_by_key(v2: FakeComfyApiV2) -> None:
    async with client(v2) as comfy:
        one = await comfy.submit_or_attach(steps_graph(), prompt_id="item-1")
        two = await comfy.submit_or_attach(steps_graph(), prompt_id="item-1")
        assert one is two
        await one.result()
    async with client(v2) as other:
        with pytest.raises(ConflictError, match="Idempotency-Key"):
            await other.submit_or_attach(steps_graph(), prompt_id="item-1")
    assert v2.submissions == 2
    assert len(v2.jobs) == 1


async def test_a_refused_workflow_raises_prompt_validation_error_and_frees_the_key(
    v2: FakeComfyApiV2,
) -> None:
    bad = {"1": {"class_type": "NoSuchNode", "inputs": {}}}
    async with client(v2) as comfy:
        with pytest.raises(PromptValidationError):
            await comfy.submit_or_attach(bad, prompt_id="key-a")
        job = await comfy.submit_or_attach(steps_graph(), prompt_id="key-a")
        await job.result()


async def test_a_wrong_key_is_an_authentication_error(v2: FakeComfyApiV2) -> None:
    async with ComfyClient.v2(v2.url, api_key="wrong", options=options()) as comfy:
        with pytest.raises(AuthenticationError):
            await comfy.submit(steps_graph())
        assert "wrong" not in repr(comfy)
        assert repr(comfy).startswith("<ComfyClient v2 ")


async def test_native_only_operations_are_refused_clearly(v2: FakeComfyApiV2) -> None:
    async with client(v2) as comfy:
        with pytest.raises(UnsupportedOperationError):
            comfy.events()
        with pytest.raises(Exception, match="number"):
            await comfy.submit(steps_graph(), front=True)


async def test_closing_ends_jobs_in_flight_and_leaves_no_task(v2: FakeComfyApiV2) -> None:
    comfy = client(v2)
    job = await comfy.submit(sleeper(steps=50, delay=UNIT))
    assert comfy.in_flight == {job.prompt_id: job}
    await comfy.aclose()
    assert job.done()
    leftover = [t for t in asyncio.all_tasks() if t.get_name().startswith("comfy_async")]
    assert leftover == []


def png(color: tuple[int, int, int]) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_assets_are_uploaded_once_per_content_and_used_by_reference(
    v2: FakeComfyApiV2, tmp_path: Path
) -> None:
    picture = tmp_path / "photo.png"
    picture.write_bytes(png((200, 10, 10)))
    async with client(v2) as comfy:
        first = await comfy.upload_asset(picture)
        again = await comfy.upload_asset(png((200, 10, 10)), file_path="copy.png")
        assert again == first
        assert first.hash is not None
        assert first.hash.startswith("blake3:")
        graph = {
            "1": {"class_type": "LoadImage", "inputs": {"image": first.reference()}},
            "2": {
                "class_type": "SaveImage",
                "inputs": {"images": ["1", 0], "filename_prefix": "in"},
            },
        }
        result = await (await comfy.submit(graph)).result(timeout=200 * UNIT)
        assert [file.filename for file in result.files] == ["in_00001_.png"]
    async with client(v2) as other:
        minted = await other.upload_asset(picture)  # the server has the bytes: no upload
        assert minted.id != first.id
        assert minted.hash == first.hash
        await other.upload_asset(png((0, 0, 0)), file_path="black.png")
    assert v2.byte_uploads == 2
    assert len(v2.blobs) == 2


async def test_a_workflow_naming_an_unknown_asset_is_refused(v2: FakeComfyApiV2) -> None:
    ghost = {"__type": "core/ASSET", "info": {"id": "nope"}}
    graph = {"1": {"class_type": "LoadImage", "inputs": {"image": ghost}}}
    async with client(v2) as comfy:
        with pytest.raises(PromptValidationError) as caught:
            await comfy.submit(graph)
    assert caught.value.error.type == "missing_asset"


async def test_assets_need_a_v2_session() -> None:
    async with ComfyClient("http://127.0.0.1:9") as comfy:
        with pytest.raises(UnsupportedOperationError):
            await comfy.upload_asset(b"x", file_path="x.bin")


async def test_a_detached_job_that_times_out_runs_on_and_is_no_longer_followed(
    v2: FakeComfyApiV2,
) -> None:
    async with client(v2) as comfy:
        job = await comfy.submit(sleeper(steps=50, delay=UNIT), timeout=3 * UNIT, detach=True)
        with pytest.raises(JobTimeout):
            await job.result()
        await asyncio.sleep(UNIT)
        following = [t for t in asyncio.all_tasks() if "follow" in t.get_name()]
        assert following == []
        assert v2.jobs[job.prompt_id].status == "running"
        assert comfy.in_flight == {}
        await (await comfy.attach(job.prompt_id)).cancel()


async def test_a_signed_url_redirect_gets_the_bytes_but_never_the_token(
    v2: FakeComfyApiV2, tmp_path: Path
) -> None:
    seen: list[str | None] = []

    async def signed(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.Response(body=b"signed bytes")

    app = web.Application()
    app.router.add_get("/signed/{id}", signed)
    other = TestServer(app, host="127.0.0.1")
    await other.start_server()
    try:
        v2.redirect_content_to = str(other.make_url("/signed"))
        async with client(v2) as comfy:
            result = await (await comfy.submit(steps_graph(steps=1))).result()
            [path] = await result.save(tmp_path)
    finally:
        await other.close()
    assert path.read_bytes() == b"signed bytes"
    assert seen == [None]


async def test_a_silent_stream_is_given_up_and_the_job_read_instead(v2: FakeComfyApiV2) -> None:
    v2.faults.stall_streams = 5
    settings = options()
    settings = settings.replace(reconcile=ReconcilePolicy(silent_after=UNIT, follow_every=UNIT))
    async with ComfyClient.v2(v2.url, api_key=v2.api_key, options=settings) as comfy:
        job = await comfy.submit(sleeper(steps=3, delay=UNIT))
        async with asyncio.timeout(50 * UNIT):  # well under the read timeout (100 units)
            events = [event async for event in job]
            await job.result()
    assert type(events[-1]) is ExecutionSuccess
    assert v2.streams_opened >= 2


async def test_credentials_revoked_mid_job_end_it_with_the_error(v2: FakeComfyApiV2) -> None:
    async with client(v2) as comfy:
        job = await comfy.submit(sleeper(steps=50, delay=UNIT))
        v2.api_key = "rotated"
        v2.faults.cut_streams_after = 0
        async with asyncio.timeout(50 * UNIT):
            with pytest.raises(AuthenticationError):
                await job.result()
