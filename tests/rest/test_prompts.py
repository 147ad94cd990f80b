"""``comfy.prompts``: the exact submit body, validation answers, reconciling ambiguous failures."""

from __future__ import annotations

import json
import logging
import uuid

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from comfy_async import ComfyClient, new_prompt_id
from comfy_async.errors import (
    BadRequestError,
    ConfigurationError,
    ConnectionLostError,
    PaymentRequiredError,
    PromptValidationError,
    ServerError,
)
from tests.http_mocks import CLOUD, FAST, LOCAL, calls, count, mocked_http
from tests.recordings import find, matching

PROMPT = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8}}}
PID = "6bd49b59-1fd6-4966-9986-7a686ccc95d6"


def body_of(call: dict[str, object]) -> dict[str, object]:
    data = call["data"]
    assert isinstance(data, bytes)
    return json.loads(data)  # type: ignore[no-any-return]


def test_new_prompt_ids_are_canonical_uuid4() -> None:
    pid = new_prompt_id()
    assert str(uuid.UUID(pid)) == pid
    assert uuid.UUID(pid).version == 4
    assert new_prompt_id() != pid


@pytest.mark.parametrize("base", [LOCAL, CLOUD])
async def test_submit_sends_every_field(base: str, mocked: mocked_http) -> None:
    comfy = ComfyClient(base, api_key="k" * 20 if base == CLOUD else None, options=FAST)
    url = f"{base}/api/prompt"
    mocked.post(url, payload={"prompt_id": PID, "number": 2.5, "node_errors": {}})
    answer = await comfy.prompts.submit(
        PROMPT,
        prompt_id=PID,
        client_id="client-1",
        number=2.5,
        front=True,
        extra_data={"extra_pnginfo": {"workflow": {"id": "w"}}},
        partial_execution_targets=["9"],
        preview_method="auto",
        api_key_comfy_org="partner-key",
    )
    (call,) = calls(mocked, "POST", url)
    assert body_of(call) == {
        "prompt": PROMPT,
        "prompt_id": PID,
        "client_id": "client-1",
        "number": 2.5,
        "front": True,
        "extra_data": {
            "extra_pnginfo": {"workflow": {"id": "w"}},
            "preview_method": "auto",
            "api_key_comfy_org": "partner-key",
        },
        "partial_execution_targets": ["9"],
    }
    assert call["headers"]["Content-Type"] == "application/json"
    assert answer.prompt_id == PID
    assert answer.number == 2.5
    await comfy.aclose()


async def test_minimal_submit_omits_unset_fields(local: ComfyClient, mocked: mocked_http) -> None:
    mocked.post(f"{LOCAL}/api/prompt", body=find("08", "POST /prompt (long, ~4s)").body)
    answer = await local.prompts.submit(PROMPT, prompt_id=PID)
    (call,) = calls(mocked, "POST", f"{LOCAL}/api/prompt")
    assert body_of(call) == {"prompt": PROMPT, "prompt_id": PID}
    assert (answer.prompt_id, answer.number, answer.partially_rejected) == (PID, 33, False)


@pytest.mark.parametrize("bad", ["not-a-uuid", PID.upper(), "", "{" + PID + "}"])
async def test_prompt_id_must_be_canonical(local: ComfyClient, bad: str) -> None:
    with pytest.raises(ConfigurationError):
        await local.prompts.submit(PROMPT, prompt_id=bad)


_REJECTIONS = matching("POST", "/prompt", status=400)


@pytest.mark.parametrize("ex", _REJECTIONS, ids=[ex.label[27:] for ex in _REJECTIONS])
async def test_recorded_400s_raise_validation_errors(
    local: ComfyClient, mocked: mocked_http, ex: object
) -> None:
    mocked.post(f"{LOCAL}/api/prompt", status=400, body=ex.body)  # type: ignore[attr-defined]
    with pytest.raises(PromptValidationError) as caught:
        await local.prompts.submit(PROMPT, prompt_id=PID)
    recorded = ex.json  # type: ignore[attr-defined]
    assert caught.value.error_type == recorded["error"]["type"]
    assert set(caught.value.node_errors) == set(recorded["node_errors"])
    assert count(mocked, "POST", f"{LOCAL}/api/prompt") == 1


async def test_a_400_without_the_documented_body_is_a_bad_request(
    local: ComfyClient, mocked: mocked_http
) -> None:
    mocked.post(f"{LOCAL}/api/prompt", status=400, body=b"")
    with pytest.raises(BadRequestError) as caught:
        await local.prompts.submit(PROMPT, prompt_id=PID)
    assert not isinstance(caught.value, PromptValidationError)


async def test_200_with_node_errors_is_returned_and_logged(
    local: ComfyClient, mocked: mocked_http, caplog: pytest.LogCaptureFixture
) -> None:
    partial = [ex for ex in matching("POST", "/prompt") if ex.json["node_errors"]]
    assert partial
    mocked.post(f"{LOCAL}/api/prompt", body=partial[0].body)
    with caplog.at_level(logging.WARNING, "comfy_async"):
        answer = await local.prompts.submit(PROMPT, prompt_id=PID)
    assert answer.partially_rejected
    assert any("rejected" in record.getMessage() for record in caplog.records)


async def test_cloud_payment_errors_are_typed(cloud: ComfyClient, mocked: mocked_http) -> None:
    mocked.post(f"{CLOUD}/api/prompt", status=402, payload={"error": {"type": "PAYMENT_REQUIRED"}})
    with pytest.raises(PaymentRequiredError):
        await cloud.prompts.submit(PROMPT, prompt_id=PID)
    assert count(mocked, "POST", f"{CLOUD}/api/prompt") == 1


async def test_info(local: ComfyClient, mocked: mocked_http) -> None:
    mocked.get(f"{LOCAL}/api/prompt", body=find("10", "GET /prompt GET /prompt").body)
    assert (await local.prompts.info()).queue_remaining == 0


# --------------------------------------------------------------------------- reconciliation

QUEUED_JOB = {"id": PID, "status": "pending", "priority": 7}


async def test_cut_response_after_queueing_is_found_through_the_jobs_api(
    local: ComfyClient, mocked: mocked_http
) -> None:
    mocked.post(f"{LOCAL}/api/prompt", exception=aiohttp.ServerDisconnectedError(), repeat=True)
    mocked.get(f"{LOCAL}/api/jobs/{PID}", payload=QUEUED_JOB)
    answer = await local.prompts.submit(PROMPT, prompt_id=PID)
    assert (answer.prompt_id, answer.number) == (PID, 7)
    assert count(mocked, "POST", f"{LOCAL}/api/prompt") == 1  # never sent twice


async def test_a_5xx_after_queueing_is_found_too(local: ComfyClient, mocked: mocked_http) -> None:
    mocked.post(f"{LOCAL}/api/prompt", status=502, repeat=True)
    mocked.get(f"{LOCAL}/api/jobs/{PID}", payload={**QUEUED_JOB, "status": "completed"})
    assert (await local.prompts.submit(PROMPT, prompt_id=PID)).prompt_id == PID
    assert count(mocked, "POST", f"{LOCAL}/api/prompt") == 1


async def test_not_found_is_sent_again_until_accepted(
    local: ComfyClient, mocked: mocked_http
) -> None:
    url = f"{LOCAL}/api/prompt"
    mocked.post(url, exception=aiohttp.ServerDisconnectedError())
    mocked.post(url, payload={"prompt_id": PID, "number": 3, "node_errors": {}})
    mocked.get(
        f"{LOCAL}/api/jobs/{PID}", status=404, payload={"error": "Job not found"}, repeat=True
    )
    answer = await local.prompts.submit(PROMPT, prompt_id=PID)
    assert answer.number == 3
    assert count(mocked, "POST", url) == 2
    assert count(mocked, "GET", f"{LOCAL}/api/jobs/{PID}") == 2  # "absent" is read twice
    first, second = calls(mocked, "POST", url)
    assert body_of(first) == body_of(second)  # the same prompt_id both times


async def test_the_resends_are_bounded_by_the_retry_policy(
    local: ComfyClient, mocked: mocked_http
) -> None:
    url = f"{LOCAL}/api/prompt"
    mocked.post(url, status=500, body="nope", repeat=True)
    mocked.get(f"{LOCAL}/api/jobs/{PID}", status=404, repeat=True)
    with pytest.raises(ServerError):
        await local.prompts.submit(PROMPT, prompt_id=PID)
    assert count(mocked, "POST", url) == FAST.retry.max_retries + 1


async def test_a_refused_connection_is_sent_again_without_a_lookup(mocked: mocked_http) -> None:
    comfy = ComfyClient(LOCAL, options=FAST, jobs_api=True)
    url = f"{LOCAL}/api/prompt"
    key = ConnectionKey("127.0.0.1", 8188, False, True, None, None, None)
    mocked.post(url, exception=aiohttp.ClientConnectorError(key, OSError(111, "refused")))
    mocked.post(url, payload={"prompt_id": PID, "number": 1, "node_errors": {}})
    assert (await comfy.prompts.submit(PROMPT, prompt_id=PID)).number == 1
    assert count(mocked, "POST", url) == 2
    assert count(mocked, "GET", f"{LOCAL}/api/jobs/{PID}") == 0
    await comfy.aclose()


async def test_without_the_jobs_api_the_queue_then_history_are_read(mocked: mocked_http) -> None:
    comfy = ComfyClient(LOCAL, options=FAST)  # detects the jobs API
    mocked.get(f"{LOCAL}/api/jobs?limit=1", status=404, repeat=True)
    mocked.post(f"{LOCAL}/api/prompt", exception=aiohttp.ServerDisconnectedError(), repeat=True)
    mocked.get(f"{LOCAL}/api/queue", payload={"queue_running": [], "queue_pending": []})
    history = find("08", "GET /history/{pid}")
    mocked.get(f"{LOCAL}/api/history/{PID}", body=history.body)
    answer = await comfy.prompts.submit(PROMPT, prompt_id=PID)
    assert (answer.prompt_id, answer.number) == (PID, 33)
    assert count(mocked, "POST", f"{LOCAL}/api/prompt") == 1
    await comfy.aclose()


async def test_a_pending_prompt_is_found_in_the_queue(mocked: mocked_http) -> None:
    comfy = ComfyClient(LOCAL, options=FAST, jobs_api=False)
    mocked.post(f"{LOCAL}/api/prompt", exception=aiohttp.SocketTimeoutError(), repeat=True)
    item = [4.5, PID, {}, {"client_id": "c"}, ["2"]]
    mocked.get(f"{LOCAL}/api/queue", payload={"queue_running": [], "queue_pending": [item]})
    answer = await comfy.prompts.submit(PROMPT, prompt_id=PID)
    assert answer.number == 4.5
    assert count(mocked, "GET", f"{LOCAL}/api/history/{PID}") == 0
    await comfy.aclose()


async def test_when_the_lookup_fails_the_submit_failure_is_raised(mocked: mocked_http) -> None:
    comfy = ComfyClient(LOCAL, options=FAST, jobs_api=True)
    mocked.post(f"{LOCAL}/api/prompt", exception=aiohttp.ServerDisconnectedError(), repeat=True)
    mocked.get(f"{LOCAL}/api/jobs/{PID}", status=500, repeat=True)
    with pytest.raises(ConnectionLostError) as caught:
        await comfy.prompts.submit(PROMPT, prompt_id=PID)
    assert isinstance(caught.value.__cause__, ServerError)
    assert count(mocked, "POST", f"{LOCAL}/api/prompt") == 1  # unknown: never risk a duplicate
    await comfy.aclose()
