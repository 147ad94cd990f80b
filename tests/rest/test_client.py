"""``ComfyClient``: construction, flavours, lifecycle, and secrets kept out of every text."""

from __future__ import annotations

import logging

import aiohttp
import pytest

import comfy_async
from comfy_async import ClientOptions, ComfyClient
from comfy_async._transport.routes import CLOUD as CLOUD_ROUTES
from comfy_async._transport.routes import LOCAL as LOCAL_ROUTES
from comfy_async.errors import ClientClosedError, ComfyError, ConfigurationError
from tests.http_mocks import (
    CLOUD,
    FAST,
    KEY,
    LOCAL,
    PASSWORD,
    TOKEN,
    Sleeps,
    assert_no_secret,
    mocked_http,
)


def test_defaults() -> None:
    comfy = ComfyClient()
    assert comfy.base_url == "http://127.0.0.1:8188/"
    assert comfy.flavour == "local"
    assert comfy.routes is LOCAL_ROUTES
    assert len(comfy.client_id) == 32
    assert ComfyClient().client_id != comfy.client_id
    assert not comfy.closed


@pytest.mark.parametrize(
    ("kwargs", "flavour"),
    [
        ({"base_url": "https://cloud.comfy.org"}, "cloud"),
        ({"base_url": "https://staging.cloud.comfy.org/"}, "cloud"),
        ({"base_url": "http://127.0.0.1:8188", "api_key": KEY}, "cloud"),
        ({"base_url": "http://127.0.0.1:8188", "api_key": KEY, "flavour": "local"}, "local"),
        ({"base_url": "http://gpu-box:8188"}, "local"),
        ({"base_url": "https://notcomfy.org"}, "local"),
    ],
)
def test_flavour_inference(kwargs: dict[str, str], flavour: str) -> None:
    assert ComfyClient(**kwargs).flavour == flavour  # type: ignore[arg-type]


def test_cloud_constructor() -> None:
    comfy = ComfyClient.cloud(api_key=KEY, client_id="me")
    assert (comfy.flavour, comfy.base_url, comfy.client_id) == ("cloud", f"{CLOUD}/", "me")
    assert comfy.routes is CLOUD_ROUTES
    with pytest.raises(ConfigurationError):
        ComfyClient.cloud(api_key="")
    with pytest.raises(ConfigurationError):
        ComfyClient(flavour="mars")  # type: ignore[arg-type]


def test_the_namespaces_are_there() -> None:
    comfy = ComfyClient()
    for name in (
        "prompts", "queue", "history", "jobs", "files", "system", "models", "userdata",
        "settings", "users",
    ):  # fmt: skip
        assert getattr(comfy, name) is not None, name
    assert "HttpClient" in repr(comfy.queue)


def test_exports() -> None:
    assert comfy_async.ComfyClient is ComfyClient
    assert callable(comfy_async.new_prompt_id)


def test_repr_shows_no_secret() -> None:
    cloud = ComfyClient.cloud(api_key=KEY, headers={"X-Proxy-Token": TOKEN})
    local = ComfyClient(f"http://bob:{PASSWORD}@127.0.0.1:8188/comfy/", bearer_token=None)
    for text in (repr(cloud), repr(local), repr(cloud.files), repr(cloud.jobs)):
        for secret in (KEY, TOKEN, PASSWORD):
            assert secret not in text
    assert (
        repr(local)
        == f"<ComfyClient local http://127.0.0.1:8188/comfy/ client_id={local.client_id}>"
    )


async def test_aclose_is_idempotent_and_closes_only_its_own_session() -> None:
    async with aiohttp.ClientSession() as borrowed:
        async with ComfyClient(session=borrowed) as comfy:
            pass
        await comfy.aclose()
        assert comfy.closed
        assert "closed" in repr(comfy)
        assert not borrowed.closed
        with pytest.raises(ClientClosedError):
            await comfy.queue.get()


async def test_options_reach_the_request_path() -> None:
    options = ClientOptions(user_agent="bot/1.0")
    async with ComfyClient(options=options) as comfy:
        with mocked_http() as mocked:
            mocked.get(f"{LOCAL}/api/prompt", payload={"exec_info": {"queue_remaining": 2}})
            assert (await comfy.prompts.info()).queue_remaining == 2
            ((_, calls),) = mocked.requests.items()
        assert calls[0].kwargs["headers"]["User-Agent"] == "bot/1.0"


async def test_no_secret_in_errors_or_debug_logs_of_a_whole_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    comfy = ComfyClient.cloud(api_key=KEY, options=FAST)
    comfy._http._sleep = Sleeps()  # no real pauses between retries
    ws_url = comfy._http.ws_url(comfy.client_id)
    assert KEY in str(ws_url)  # the WS token is the key: it must not leak either
    errors: list[BaseException] = []
    with mocked_http() as mocked:
        mocked.get(f"{CLOUD}/api/queue", status=401, body=f"bad key {KEY}")
        mocked.get(f"{CLOUD}/api/jobs?limit=1", exception=aiohttp.ClientOSError(f"reset {ws_url}"))
        mocked.post(f"{CLOUD}/api/prompt", status=503, body=f"{KEY}", repeat=True)
        mocked.get(f"{CLOUD}/api/features", payload=["not", "a", "dict"])
        for call in (
            comfy.queue.get(),
            comfy.jobs.available(),
            comfy.prompts.submit({}, prompt_id=comfy_async.new_prompt_id()),
            comfy.system.features(),
        ):
            try:
                await call
            except ComfyError as error:
                errors.append(error)
    assert len(errors) == 4
    for error in errors:
        assert_no_secret(error, KEY)
    for record in caplog.records:
        assert KEY not in record.getMessage()
        assert KEY not in str(record.args)
    assert KEY not in repr(comfy)
    await comfy.aclose()
