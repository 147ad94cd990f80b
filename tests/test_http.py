"""The request path: URLs, credentials and their scope, retries, redirects, error mapping, logs."""

from __future__ import annotations

import asyncio
import gzip
import logging
import time
from collections.abc import Iterator
from email.utils import formatdate

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from comfy_async._transport.auth import Credentials
from comfy_async._transport.http import HttpClient
from comfy_async._transport.retry import parse_retry_after, retry_delay, should_retry
from comfy_async._transport.routes import CLOUD, LOCAL
from comfy_async.config import Backoff, ClientOptions, RetryPolicy, Timeouts
from comfy_async.errors import (
    ClientClosedError,
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    DecodeError,
    DownloadTooLargeError,
    HTTPStatusError,
    NotFoundError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    ServiceUnavailableError,
    UnsafeRedirectError,
)
from comfy_async.models.queue import decode_queue
from tests.http_mocks import (
    CLOUD as CLOUD_URL,
)
from tests.http_mocks import (
    FAST,
    KEY,
    PASSWORD,
    TOKEN,
    Sleeps,
    assert_no_secret,
    base,
    calls,
    count,
    mocked_http,
    serve,
)
from tests.http_mocks import (
    LOCAL as LOCAL_URL,
)


def local(**kwargs: object) -> HttpClient:
    return HttpClient(LOCAL_URL, routes=LOCAL, options=FAST, **kwargs)  # type: ignore[arg-type]


def cloud(**kwargs: object) -> HttpClient:
    return HttpClient(CLOUD_URL, routes=CLOUD, options=FAST, api_key=KEY, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- URLs and identity


def test_urls_with_a_path_prefix() -> None:
    http = HttpClient("http://127.0.0.1:8188/comfy/", routes=LOCAL)
    assert str(http.url(LOCAL.route("queue.get"))) == "http://127.0.0.1:8188/comfy/api/queue"
    assert (
        str(http.url(LOCAL.route("internal.logs"))) == "http://127.0.0.1:8188/comfy/internal/logs"
    )
    assert str(http.ws_url("abc")) == "ws://127.0.0.1:8188/comfy/ws?clientId=abc"
    route = LOCAL.route("userdata.get", file="workflows/a b.json")
    assert str(http.url(route)) == "http://127.0.0.1:8188/comfy/api/userdata/workflows%2Fa%20b.json"


def test_query_values_drop_none_and_spell_booleans() -> None:
    http = local()
    url = http.url(
        LOCAL.route("userdata.list"), {"dir": "w", "recurse": True, "split": False, "x": None}
    )
    assert url.query == {"dir": "w", "recurse": "true", "split": "false"}


def test_ws_url_local_and_cloud() -> None:
    assert str(local().ws_url("c1")) == "ws://127.0.0.1:8188/ws?clientId=c1"
    url = cloud().ws_url("c1")
    assert url.scheme == "wss"
    assert url.host == "cloud.comfy.org"
    assert url.path == "/ws"
    assert url.query == {"clientId": "c1", "token": KEY}


def test_ws_headers_carry_proxy_credentials_never_origin_or_key() -> None:
    headers = cloud(bearer_token=TOKEN, user="alice").ws_headers()
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["comfy-user"] == "alice"
    assert "X-API-Key" not in headers
    assert not any(name.lower() == "origin" for name in headers)


@pytest.mark.parametrize("name", ["Origin", "origin", "X-API-Key", "Host"])
def test_reserved_headers_are_refused(name: str) -> None:
    with pytest.raises(ConfigurationError):
        local(headers={name: "x"})


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1/", "127.0.0.1:8188", "http:///x", "http://127.0.0.1/?a=1", "http://h/#f"],
)
def test_bad_base_urls(url: str) -> None:
    with pytest.raises(ConfigurationError):
        HttpClient(url, routes=LOCAL)


def test_user_info_in_the_base_url_becomes_basic_auth_and_is_not_shown() -> None:
    http = HttpClient(f"http://bob:{PASSWORD}@127.0.0.1:8188", routes=LOCAL)
    assert PASSWORD not in repr(http)
    assert PASSWORD not in str(http.base_url)
    assert http.credentials.headers_for(http.origin)["Authorization"].startswith("Basic ")


def test_repr_never_shows_a_secret() -> None:
    http = cloud(headers={"X-Proxy-Token": TOKEN})
    for text in (repr(http), repr(http.credentials)):
        assert KEY not in text
        assert TOKEN not in text


def test_credentials_stay_on_their_origin() -> None:
    home = local().origin
    creds = Credentials(home, api_key=KEY, bearer_token=TOKEN, headers={"X-Proxy": TOKEN})
    assert creds.headers_for(home.with_path("/api/queue"))["X-API-Key"] == KEY
    for other in ("http://127.0.0.2:8188/", "https://127.0.0.1:8188/", "http://127.0.0.1:8189/"):
        assert creds.headers_for(URL(other)) == {}
    assert creds.headers_for(URL("ws://127.0.0.1:8188/ws"))["X-API-Key"] == KEY  # same origin


def test_retry_after_parsing() -> None:
    now = time.time()
    assert parse_retry_after("2", now=now) == 2.0
    assert parse_retry_after("0.5", now=now) == 0.5
    assert parse_retry_after("-3", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after("nan", now=now) is None
    assert parse_retry_after(None, now=now) is None
    in_ten = parse_retry_after(formatdate(now + 10, usegmt=True), now=now)
    assert in_ten is not None
    assert 8.0 <= in_ten <= 11.0
    assert parse_retry_after(formatdate(now - 10, usegmt=True), now=now) == 0.0


def test_retry_decisions() -> None:
    policy = RetryPolicy(max_retries=2)
    server = ServerError(500)
    assert should_retry(server, idempotent=True, policy=policy, attempt=2)
    assert not should_retry(server, idempotent=True, policy=policy, attempt=3)
    assert not should_retry(server, idempotent=False, policy=policy, attempt=1)
    assert not should_retry(NotFoundError(404), idempotent=True, policy=policy, attempt=1)
    refused = ConnectError("refused")
    assert should_retry(refused, idempotent=False, policy=policy, attempt=1)
    lost = ConnectionLostError("cut")
    assert not should_retry(lost, idempotent=False, policy=policy, attempt=1)
    assert retry_delay(120.0, 0.1, policy) == policy.max_retry_after
    assert retry_delay(None, 0.1, policy) == 0.1


# --------------------------------------------------------------------------- requests sent


async def test_cloud_request_carries_the_key_and_never_origin() -> None:
    http = cloud()
    with mocked_http() as mocked:
        mocked.get(f"{CLOUD_URL}/api/queue", payload={"queue_running": [], "queue_pending": []})
        queue = await http.fetch(CLOUD.route("queue.get"), decode_queue)
        assert queue.queue_running == []
        (sent,) = calls(mocked, "GET", f"{CLOUD_URL}/api/queue")
    assert sent["headers"]["X-API-Key"] == KEY
    assert sent["headers"]["User-Agent"] == "comfy-async"
    assert not any(name.lower() in ("origin", "cookie") for name in sent["headers"])
    assert sent["allow_redirects"] is False
    await http.aclose()


async def test_proxy_auth_and_user_headers() -> None:
    http = local(basic_auth=("bob", PASSWORD), user="alice", headers={"X-Trace": "t"})
    with mocked_http() as mocked:
        mocked.get(f"{LOCAL_URL}/api/users", payload={"storage": "server"})
        await http.request(LOCAL.route("users.get"))
        (sent,) = calls(mocked, "GET", f"{LOCAL_URL}/api/users")
    headers = sent["headers"]
    assert headers["Authorization"].startswith("Basic ")
    assert headers["comfy-user"] == "alice"
    assert headers["X-Trace"] == "t"
    assert "X-API-Key" not in headers
    await http.aclose()


async def test_json_bodies_are_encoded_with_orjson() -> None:
    http = local()
    with mocked_http() as mocked:
        mocked.post(f"{LOCAL_URL}/api/queue")
        await http.request(LOCAL.route("queue.update"), json={"delete": ["a"], 3: 1})
        (sent,) = calls(mocked, "POST", f"{LOCAL_URL}/api/queue")
    assert sent["data"] == b'{"delete":["a"],"3":1}'
    assert sent["headers"]["Content-Type"] == "application/json"
    with pytest.raises(ConfigurationError):
        await http.request(LOCAL.route("queue.update"), json={"x": object()})
    await http.aclose()


async def test_a_body_of_the_wrong_shape_is_a_decode_error() -> None:
    http = local()
    with mocked_http() as mocked:
        mocked.get(f"{LOCAL_URL}/api/queue", payload={"queue_running": "nope"})
        with pytest.raises(DecodeError, match="queue_running"):
            await http.fetch(LOCAL.route("queue.get"), decode_queue)
    await http.aclose()


# --------------------------------------------------------------------------- retries


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
async def test_idempotent_get_is_retried_per_policy(status: int) -> None:
    sleeps = Sleeps()
    http = local(sleep=sleeps)
    url = f"{LOCAL_URL}/api/queue"
    with mocked_http() as mocked:
        mocked.get(url, status=status, repeat=True)
        with pytest.raises((ServerError, RateLimitedError)) as caught:
            await http.request(LOCAL.route("queue.get"))
        assert count(mocked, "GET", url) == FAST.retry.max_retries + 1
    assert caught.value.status == status
    assert len(sleeps.pauses) == FAST.retry.max_retries
    await http.aclose()


async def test_a_retry_that_succeeds() -> None:
    http = local(sleep=Sleeps())
    url = f"{LOCAL_URL}/api/queue"
    with mocked_http() as mocked:
        mocked.get(url, status=503)
        mocked.get(url, status=502)
        mocked.get(url, payload={"queue_running": [], "queue_pending": []})
        response = await http.request(LOCAL.route("queue.get"))
        assert count(mocked, "GET", url) == 3
    assert response.status == 200
    await http.aclose()


async def test_post_prompt_is_never_retried_on_5xx() -> None:
    http = local(sleep=Sleeps())
    url = f"{LOCAL_URL}/api/prompt"
    with mocked_http() as mocked:
        mocked.post(url, status=500, body="boom", repeat=True)
        with pytest.raises(ServerError):
            await http.request(LOCAL.route("prompt.submit"), json={"prompt": {}})
        assert count(mocked, "POST", url) == 1
    await http.aclose()


async def test_retry_after_seconds_and_date_are_honoured_and_capped() -> None:
    sleeps = Sleeps()
    options = FAST.replace(retry=RetryPolicy(max_retries=3, max_retry_after=5.0))
    http = HttpClient(LOCAL_URL, routes=LOCAL, options=options, sleep=sleeps)
    url = f"{LOCAL_URL}/api/queue"
    with mocked_http() as mocked:
        mocked.get(url, status=429, headers={"Retry-After": "1.5"})
        mocked.get(url, status=503, headers={"Retry-After": "3600"})
        mocked.get(
            url, status=503, headers={"Retry-After": formatdate(time.time() + 3, usegmt=True)}
        )
        mocked.get(url, payload={})
        await http.request(LOCAL.route("queue.get"))
    assert sleeps.pauses[0] == 1.5
    assert sleeps.pauses[1] == 5.0  # capped by max_retry_after
    assert 1.0 <= sleeps.pauses[2] <= 3.5
    await http.aclose()


async def test_rate_limited_error_carries_retry_after() -> None:
    http = HttpClient(LOCAL_URL, routes=LOCAL, options=FAST.replace(retry=RetryPolicy.never()))
    with mocked_http() as mocked:
        mocked.get(f"{LOCAL_URL}/api/queue", status=429, headers={"Retry-After": "7"})
        with pytest.raises(RateLimitedError) as caught:
            await http.request(LOCAL.route("queue.get"))
    assert caught.value.retry_after == 7.0
    await http.aclose()


async def test_transport_errors_map_into_the_tree_and_retry_only_when_safe() -> None:
    http = local(sleep=Sleeps())
    queue, prompt = f"{LOCAL_URL}/api/queue", f"{LOCAL_URL}/api/prompt"
    with mocked_http() as mocked:
        mocked.get(queue, exception=aiohttp.ServerDisconnectedError(), repeat=True)
        mocked.post(prompt, exception=aiohttp.ServerDisconnectedError(), repeat=True)
        with pytest.raises(ConnectionLostError):
            await http.request(LOCAL.route("queue.get"))
        with pytest.raises(ConnectionLostError):
            await http.request(LOCAL.route("prompt.submit"), json={})
        assert count(mocked, "GET", queue) == 4
        assert count(mocked, "POST", prompt) == 1
    with mocked_http() as mocked:
        mocked.get(queue, exception=aiohttp.SocketTimeoutError(), repeat=True)
        with pytest.raises(RequestTimeoutError) as caught:
            await http.request(LOCAL.route("queue.get"))
        assert isinstance(caught.value, TimeoutError)
    await http.aclose()


async def test_connection_refused_is_a_connect_error() -> None:
    # port 9 on loopback (discard) is closed on any test machine
    http = HttpClient("http://127.0.0.1:9", routes=LOCAL, options=FAST, sleep=Sleeps())
    with pytest.raises(ConnectError) as caught:
        await http.request(LOCAL.route("queue.get"))
    assert caught.value.__context__ is None
    assert caught.value.__cause__ is None
    await http.aclose()


async def test_read_timeout_against_a_slow_server() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.json_response({})

    async with serve({("GET", "/api/queue"): slow}) as (server, recorder):
        options = ClientOptions(
            timeouts=Timeouts(read=0.05), retry=RetryPolicy(max_retries=1, backoff=Backoff(0.001))
        )
        http = HttpClient(base(server), routes=LOCAL, options=options)
        with pytest.raises(RequestTimeoutError):
            await http.request(LOCAL.route("queue.get"))
        assert len(recorder.requests) == 2
        await http.aclose()


async def test_read_timeout_when_the_body_stalls() -> None:
    stall = asyncio.Event()

    async def half(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = 100
        await response.prepare(request)
        await response.write(b'{"queue_running": [')
        await stall.wait()  # the rest of the body never comes
        return response

    async with serve({("GET", "/api/queue"): half}) as (server, recorder):
        options = ClientOptions(timeouts=Timeouts(read=0.05), retry=RetryPolicy.never())
        http = HttpClient(base(server), routes=LOCAL, options=options)
        with pytest.raises(RequestTimeoutError):
            await http.request(LOCAL.route("queue.get"))
        assert len(recorder.requests) == 1
        stall.set()
        await http.aclose()


async def test_total_timeout_against_a_slow_server() -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(100):  # every chunk in time for the read timeout, the whole not
            await response.write(b" ")
            await asyncio.sleep(0.01)
        return response

    async with serve({("GET", "/api/queue"): trickle}) as (server, recorder):
        options = ClientOptions(timeouts=Timeouts(read=0.5, total=0.1), retry=RetryPolicy.never())
        http = HttpClient(base(server), routes=LOCAL, options=options)
        with pytest.raises(RequestTimeoutError):
            await http.request(LOCAL.route("queue.get"))
        assert len(recorder.requests) == 1
        await http.aclose()


# --------------------------------------------------------------------------- redirects


def _redirect_to(target: str, status: int) -> web.StreamResponse:
    raise web.HTTPFound(target) if status == 302 else web.HTTPTemporaryRedirect(target)


@pytest.mark.parametrize("status", [302, 307])
async def test_credentials_and_cookies_never_reach_a_second_origin(status: int) -> None:
    async def storage(request: web.Request) -> web.Response:
        return web.Response(body=b"signed bytes")

    async with serve({("GET", "/bucket/file.png"): storage}, host="127.0.0.2") as (other, seen):
        signed = f"{base(other)}/bucket/file.png?X-Amz-Signature=sig-SECRET-123&X-Amz-Credential=c"

        async def view(request: web.Request) -> web.StreamResponse:
            return _redirect_to(signed, status)

        async with serve({("GET", "/api/view"): view}) as (home, home_seen):
            jar = aiohttp.CookieJar(unsafe=True)
            jar.update_cookies({"session": "cookie-SECRET"}, response_url=home.make_url("/"))
            jar.update_cookies({"session": "cookie-SECRET"}, response_url=other.make_url("/"))
            async with aiohttp.ClientSession(cookie_jar=jar) as borrowed:
                http = HttpClient(
                    base(home),
                    routes=CLOUD,
                    options=FAST,
                    session=borrowed,
                    api_key=KEY,
                    headers={"X-Proxy-Token": TOKEN},
                )
                response = await http.request(CLOUD.route("view"), query={"filename": "a.png"})
                await http.aclose()
                assert not borrowed.closed  # borrowed: never closed by us
    assert response.body == b"signed bytes"
    assert home_seen.headers[0]["X-API-Key"] == KEY
    assert "cookie-SECRET" in home_seen.headers[0]["Cookie"]
    (storage_headers,) = seen.headers
    lowered = {name.lower() for name in storage_headers}
    assert not lowered & {"x-api-key", "authorization", "cookie", "x-proxy-token", "origin"}
    assert KEY not in str(storage_headers)


@pytest.mark.parametrize(
    "location",
    ["http://storage.example/file.png?sig=1", "file:///etc/passwd", "javascript:alert(1)"],
)
async def test_refused_redirects(location: str) -> None:
    http = cloud()
    with mocked_http() as mocked:
        mocked.get(
            f"{CLOUD_URL}/api/view?filename=a.png", status=302, headers={"Location": location}
        )
        with pytest.raises(UnsafeRedirectError) as caught:
            await http.request(CLOUD.route("view"), query={"filename": "a.png"})
        assert count(mocked, "GET", "http://storage.example/file.png?sig=1") == 0
    assert "sig=1" not in str(caught.value)
    assert_no_secret(caught.value, KEY)
    await http.aclose()


async def test_same_origin_redirect_keeps_credentials() -> None:
    async def old(request: web.Request) -> web.StreamResponse:
        raise web.HTTPTemporaryRedirect("/api/queue")

    async def queue(request: web.Request) -> web.Response:
        return web.json_response({"queue_running": [], "queue_pending": []})

    async with serve({("GET", "/api/old"): old, ("GET", "/api/queue"): queue}) as (server, seen):
        http = HttpClient(base(server), routes=LOCAL, options=FAST, bearer_token=TOKEN)
        route = LOCAL.route("queue.get")
        moved = type(route)(name="x", method="GET", path="/api/old", idempotent=True)
        await http.request(moved)
        await http.aclose()
    assert [headers.get("Authorization") for headers in seen.headers] == [f"Bearer {TOKEN}"] * 2


# --------------------------------------------------------------------------- secrets


async def test_secrets_stay_out_of_errors_and_debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    http = cloud(bearer_token=None, sleep=Sleeps())
    signed = "https://storage.example/x.png?Signature=sig-SECRET-99"
    with mocked_http() as mocked:
        mocked.get(f"{CLOUD_URL}/api/view?filename=a.png", status=302, headers={"Location": signed})
        reordered = "https://storage.example/x.png?z=1&Signature=sig-SECRET-99"
        cut = aiohttp.ClientPayloadError(f"cut {signed} {KEY} {reordered}")
        mocked.get(signed, exception=cut, repeat=True)
        mocked.get(f"{CLOUD_URL}/api/queue", status=500, body=f"echo {KEY}", repeat=True)
        mocked.get(f"{CLOUD_URL}/api/system_stats", exception=aiohttp.ClientOSError(f"reset {KEY}"))
        errors: list[BaseException] = []
        for route, query in (
            (CLOUD.route("view"), {"filename": "a.png"}),
            (CLOUD.route("queue.get"), None),
            (CLOUD.route("system_stats"), None),
        ):
            with pytest.raises(Exception) as caught:
                await http.request(route, query=query)
            errors.append(caught.value)
    for error in errors:
        assert_no_secret(error, KEY, "sig-SECRET-99")
    assert isinstance(errors[0], ConnectionLostError)
    assert isinstance(errors[1], ServerError)
    assert errors[1].body == "echo REDACTED"
    debug = [record.getMessage() for record in caplog.records]
    assert any("/api/view" in line for line in debug)
    for line in debug:
        assert KEY not in line
        assert "sig-SECRET-99" not in line
    await http.aclose()


# --------------------------------------------------------------------------- streams


async def test_gzip_bomb_stops_at_the_cap() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)

    async def view(request: web.Request) -> web.Response:
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip"})

    async with serve({("GET", "/api/view"): view}) as (server, _):
        http = HttpClient(base(server), routes=LOCAL, options=FAST)
        received: list[int] = []

        async def drain() -> None:
            async with http.stream(LOCAL.route("view"), max_bytes=1024 * 1024) as body:
                received.extend([len(chunk) async for chunk in body])

        with pytest.raises(DownloadTooLargeError) as caught:
            await drain()
        await http.aclose()
    assert len(bomb) < 1024 * 1024  # the compressed body is under the cap …
    assert received == []  # nothing past the cap was handed out, and reading stopped at once:
    assert 1024 * 1024 < caught.value.received <= 2 * 1024 * 1024
    assert caught.value.limit == 1024 * 1024


async def test_content_length_over_the_cap_is_refused_before_reading() -> None:
    http = local()
    with mocked_http() as mocked:
        mocked.get(f"{LOCAL_URL}/api/view", body=b"x" * 100, headers={"Content-Length": "100"})
        with pytest.raises(DownloadTooLargeError, match="Content-Length"):
            async with http.stream(LOCAL.route("view"), max_bytes=10):
                pytest.fail("the stream must not open")
    await http.aclose()


async def test_stream_errors_are_raised_with_their_status() -> None:
    http = local(sleep=Sleeps())
    with mocked_http() as mocked:
        mocked.get(f"{LOCAL_URL}/api/view", status=404)
        with pytest.raises(NotFoundError):
            async with http.stream(LOCAL.route("view"), max_bytes=None):
                pass
        mocked.get(f"{LOCAL_URL}/api/view", status=503, repeat=True)
        with pytest.raises(ServiceUnavailableError):
            async with http.stream(LOCAL.route("view"), max_bytes=None):
                pass
    await http.aclose()


# ------------------------------------------------- streams: the inline first send and the loop

# A download's first send is made inline (debug logging off); with debug logging on, every send
# goes through the general loop. Each rule below is checked on both paths.


@pytest.fixture(params=["inline", "loop"])
def stream_path(request: pytest.FixtureRequest) -> Iterator[str]:
    logger = logging.getLogger("comfy_async.http")
    level = logger.level
    if request.param == "loop":
        logger.setLevel(logging.DEBUG)
    try:
        yield request.param
    finally:
        logger.setLevel(level)


async def read_all(http: HttpClient, max_bytes: int | None = None, **query: str) -> bytes:
    async with http.stream(http.routes.route("view"), query=query, max_bytes=max_bytes) as body:
        return b"".join([chunk async for chunk in body])


async def test_a_plain_download_is_sent_once_without_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_loop(*args: object, **kwargs: object) -> None:
        raise AssertionError("a plain download went through the general loop")

    http = local()
    monkeypatch.setattr(http, "_open", no_loop)
    with mocked_http() as mocked:
        mocked.get(f"{LOCAL_URL}/api/view?filename=a.png", body=b"png bytes")
        assert await read_all(http, filename="a.png") == b"png bytes"
        (sent_kwargs,) = calls(mocked, "GET", f"{LOCAL_URL}/api/view?filename=a.png")
    assert sent_kwargs["allow_redirects"] is False
    assert sent_kwargs["timeout"].total is None  # a body is bounded by the read timeout only
    assert sent_kwargs["timeout"].sock_read == FAST.timeouts.read
    assert sent_kwargs["timeout"].sock_connect == FAST.timeouts.connect
    await http.aclose()


@pytest.mark.parametrize("status", [302, 307])
async def test_a_download_redirected_to_another_origin_carries_no_credential(
    status: int, stream_path: str
) -> None:
    async def storage(request: web.Request) -> web.Response:
        return web.Response(body=b"signed bytes")

    async with serve({("GET", "/bucket/file.png"): storage}, host="127.0.0.2") as (other, seen):
        signed = f"{base(other)}/bucket/file.png?X-Amz-Signature=sig-SECRET-123"

        async def view(request: web.Request) -> web.StreamResponse:
            return _redirect_to(signed, status)

        async with serve({("GET", "/api/view"): view}) as (home, home_seen):
            http = HttpClient(
                base(home), routes=CLOUD, options=FAST, api_key=KEY, headers={"X-Proxy": TOKEN}
            )
            assert await read_all(http, filename="a.png") == b"signed bytes"
            await http.aclose()
    assert home_seen.headers[0]["X-API-Key"] == KEY
    assert home_seen.headers[0]["X-Proxy"] == TOKEN
    (storage_headers,) = seen.headers
    lowered = {name.lower() for name in storage_headers}
    assert not lowered & {"x-api-key", "authorization", "cookie", "x-proxy", "origin"}


@pytest.mark.parametrize(
    "location",
    ["http://storage.example/file.png?sig=1", "file:///etc/passwd", "javascript:alert(1)"],
)
async def test_a_download_refuses_unsafe_redirects(location: str, stream_path: str) -> None:
    http = cloud()
    with mocked_http() as mocked:
        mocked.get(
            f"{CLOUD_URL}/api/view?filename=a.png", status=302, headers={"Location": location}
        )
        with pytest.raises(UnsafeRedirectError) as caught:
            await read_all(http, filename="a.png")
        assert count(mocked, "GET", "http://storage.example/file.png?sig=1") == 0
    assert "sig=1" not in str(caught.value)
    assert_no_secret(caught.value, KEY)
    await http.aclose()


async def test_a_download_stops_after_too_many_redirects(stream_path: str) -> None:
    http = local()
    with mocked_http() as mocked:
        mocked.get(
            f"{LOCAL_URL}/api/view?filename=a.png",
            status=307,
            headers={"Location": f"{LOCAL_URL}/api/view?filename=a.png"},
            repeat=True,
        )
        with pytest.raises(HTTPStatusError, match="too many redirects"):
            await read_all(http, filename="a.png")
        assert count(mocked, "GET", f"{LOCAL_URL}/api/view?filename=a.png") == 6
    await http.aclose()


async def test_a_download_error_status_is_raised_with_its_body_not_retried(
    stream_path: str,
) -> None:
    sleeps = Sleeps()
    http = local(sleep=sleeps)
    with mocked_http() as mocked:
        mocked.get(f"{LOCAL_URL}/api/view?filename=a.png", status=404, body="no such file")
        with pytest.raises(NotFoundError) as caught:
            await read_all(http, filename="a.png")
        assert count(mocked, "GET", f"{LOCAL_URL}/api/view?filename=a.png") == 1
    assert caught.value.body == "no such file"
    assert sleeps.pauses == []
    await http.aclose()


async def test_a_download_is_retried_per_the_policy(stream_path: str) -> None:
    sleeps = Sleeps()
    http = local(sleep=sleeps)
    view = f"{LOCAL_URL}/api/view?filename=a.png"
    with mocked_http() as mocked:
        mocked.get(view, status=503, headers={"Retry-After": "0"})
        mocked.get(view, exception=aiohttp.ServerDisconnectedError())
        mocked.get(view, body=b"at last")
        assert await read_all(http, filename="a.png") == b"at last"
        assert count(mocked, "GET", view) == 3
    assert len(sleeps.pauses) == 2
    with mocked_http() as mocked:
        mocked.get(view, status=503, repeat=True)
        with pytest.raises(ServiceUnavailableError):
            await read_all(http, filename="a.png")
        assert count(mocked, "GET", view) == 1 + FAST.retry.max_retries
    with mocked_http() as mocked:
        mocked.get(view, exception=aiohttp.ServerDisconnectedError(), repeat=True)
        with pytest.raises(ConnectionLostError):
            await read_all(http, filename="a.png")
        assert count(mocked, "GET", view) == 1 + FAST.retry.max_retries
    await http.aclose()


async def test_a_download_cannot_connect_is_a_connect_error(stream_path: str) -> None:
    # port 9 on loopback (discard) is closed on any test machine
    options = ClientOptions(retry=RetryPolicy.never())
    http = HttpClient("http://127.0.0.1:9", routes=LOCAL, options=options, sleep=Sleeps())
    with pytest.raises(ConnectError) as caught:
        await read_all(http, filename="a.png")
    assert caught.value.__context__ is None
    await http.aclose()


async def test_a_download_over_its_cap_or_short_of_its_length_is_refused(
    stream_path: str,
) -> None:
    http = local()
    view = f"{LOCAL_URL}/api/view?filename=a.png"
    with mocked_http() as mocked:
        mocked.get(view, body=b"x" * 100, headers={"Content-Length": "100"})
        with pytest.raises(DownloadTooLargeError, match="Content-Length"):
            await read_all(http, max_bytes=10, filename="a.png")
    with mocked_http() as mocked:
        mocked.get(view, body=b"x" * 100)
        with pytest.raises(DownloadTooLargeError) as caught:
            await read_all(http, max_bytes=10, filename="a.png")
        assert caught.value.limit == 10
    await http.aclose()

    async def short(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = 100
        await response.prepare(request)
        await response.write(b"x" * 40)
        request.transport.close()  # type: ignore[union-attr] - the body ends short
        return response

    async with serve({("GET", "/api/view"): short}) as (server, _):
        http = HttpClient(base(server), routes=LOCAL, options=FAST)
        with pytest.raises((DownloadTooLargeError, ConnectionLostError)):
            await read_all(http, filename="a.png")
        await http.aclose()


async def test_a_download_keeps_its_read_timeout_and_has_no_total_one(stream_path: str) -> None:
    stall = asyncio.Event()

    async def stalled(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = 100
        await response.prepare(request)
        await response.write(b"x" * 10)
        await stall.wait()  # the rest of the body never comes
        return response

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(20):  # every chunk in time for the read timeout, the whole over total
            await response.write(b" ")
            await asyncio.sleep(0.01)
        return response

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.Response(body=b"late")

    routes = {("GET", "/api/view"): stalled, ("GET", "/api/trickle"): trickle}
    routes[("GET", "/api/slow")] = slow
    async with serve(routes) as (server, recorder):
        options = ClientOptions(
            timeouts=Timeouts(read=0.1, total=0.05),
            retry=RetryPolicy(max_retries=1, backoff=Backoff(0.001)),
        )
        http = HttpClient(base(server), routes=LOCAL, options=options)
        with pytest.raises(RequestTimeoutError):
            await read_all(http, filename="a.png")  # the body stalls: not retried
        assert len(recorder.requests) == 1
        view = LOCAL.route("view")
        trickled = type(view)(name="x", method="GET", path="/api/trickle", idempotent=True)
        async with http.stream(trickled, max_bytes=None) as body:
            assert b"".join([chunk async for chunk in body]) == b" " * 20
        late = type(view)(name="x", method="GET", path="/api/slow", idempotent=True)
        with pytest.raises(RequestTimeoutError):
            async with http.stream(late, max_bytes=None):
                pytest.fail("the stream must not open")
        assert len(recorder.requests) == 1 + 1 + 2  # no answer in time: retried per the policy
        stall.set()
        await http.aclose()


async def test_a_download_on_a_closed_client_is_refused(stream_path: str) -> None:
    http = local()
    await http.aclose()
    with pytest.raises(ClientClosedError):
        await read_all(http, filename="a.png")


# --------------------------------------------------------------------------- lifecycle


async def test_owned_session_is_closed_borrowed_one_is_not() -> None:
    http = local()
    owned = http.session
    await http.aclose()
    await http.aclose()  # idempotent
    assert owned.closed
    with pytest.raises(ClientClosedError):
        await http.request(LOCAL.route("queue.get"))
    async with aiohttp.ClientSession() as borrowed:
        lent = local(session=borrowed)
        assert lent.session is borrowed
        await lent.aclose()
        assert not borrowed.closed
