"""LiveSession with a scripted backend and the in-test WebSocket server (no REST, no fake)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Mapping

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from comfy_async._live.connection import Connection, ConnectionState
from comfy_async._live.session import LiveSession, SubmitOptions
from comfy_async._transport.rest.prompts import new_prompt_id
from comfy_async.config import (
    Backoff,
    ClientOptions,
    HeartbeatPolicy,
    ReconcilePolicy,
    ReconnectPolicy,
    Timeouts,
)
from comfy_async.errors import (
    AuthenticationError,
    ClientClosedError,
    ConfigurationError,
    JobLost,
    ServerError,
)
from comfy_async.events import Event, ExecutionStart, JobReconciled, Reconnected
from comfy_async.job import JobSnapshot
from comfy_async.models.prompts import PromptResponse
from tests.session.conftest import MiniServer, send_event

UNIT = 0.05  # the one time unit of these tests


def options(*, silent: float = 4 * UNIT, enabled: bool = True) -> ClientOptions:
    return ClientOptions(
        timeouts=Timeouts(connect=2.0),
        reconnect=ReconnectPolicy(backoff=Backoff(initial=UNIT / 5, jitter=0)),
        heartbeat=HeartbeatPolicy(interval=None),
        reconcile=ReconcilePolicy(
            silent_after=silent, max_silent_after=silent * 4, enabled=enabled
        ),
    )


class Backend:
    """A scripted server: what the queue and the lookups say, and what submit does."""

    finish_marker = True

    def __init__(self) -> None:
        self.submitted: list[str] = []
        self.cancelled: list[str] = []
        self.queue: dict[str, str] = {}
        self.answers: dict[str, JobSnapshot | None] = {}
        self.during_submit: list[object] = []  # coroutine factories run inside submit
        self.fail_submit: BaseException | None = None
        self.submit_gate: asyncio.Event | None = None
        self.lookups = 0

    async def submit(
        self,
        prompt: Mapping[str, object],
        *,
        prompt_id: str,
        client_id: str,
        options: SubmitOptions,
    ) -> PromptResponse:
        self.submitted.append(prompt_id)
        for action in self.during_submit:
            await action(prompt_id)  # type: ignore[operator]
        if self.submit_gate is not None:
            await self.submit_gate.wait()
        if self.fail_submit is not None:
            raise self.fail_submit
        self.queue[prompt_id] = "pending"
        return PromptResponse(prompt_id=prompt_id, number=len(self.submitted))

    async def in_flight(self) -> dict[str, str] | None:
        return dict(self.queue)

    async def oldest_kept(self) -> float | None:
        return None

    async def lookup(self, prompt_id: str) -> JobSnapshot | None:
        self.lookups += 1
        if prompt_id in self.queue:
            return JobSnapshot(status=self.queue[prompt_id])
        return self.answers.get(prompt_id)

    async def cancel(self, prompt_id: str, *, running: bool) -> bool:
        self.cancelled.append(prompt_id)
        return self.queue.pop(prompt_id, None) is not None

    async def save(self, files: object, folder: object, *, overwrite: bool) -> list[object]:
        return []


@pytest.fixture
async def session(
    mini: tuple[MiniServer, TestServer], http: aiohttp.ClientSession
) -> AsyncIterator[tuple[LiveSession, Backend, MiniServer]]:
    script, server = mini
    backend = Backend()
    live = make_session(backend, server, http, options())
    yield live, backend, script
    await live.aclose()
    assert len(live.tasks) == 0
    assert live.dispatcher.registered == 0


def make_session(
    backend: Backend, server: TestServer, http: aiohttp.ClientSession, opts: ClientOptions
) -> LiveSession:
    url = URL(str(server.make_url("/ws"))).with_query(clientId="c-1")
    return LiveSession(
        backend,
        lambda dispatch, on_reconnect: Connection(
            http, url, options=opts, dispatch=dispatch, on_reconnect=on_reconnect
        ),
        client_id="c-1",
        options=opts,
    )


GRAPH = {"1": {"class_type": "EmptyImage", "inputs": {}}}


async def test_events_sent_before_the_post_returns_are_kept(session) -> None:
    live, backend, script = session

    async def finish_during_post(prompt_id: str) -> None:
        for type_ in ("execution_start", "execution_success"):
            await send_event(script, type_, {"prompt_id": prompt_id})
        await send_event(script, "executing", {"node": None, "prompt_id": prompt_id})
        await asyncio.sleep(UNIT)  # the events reach us while the POST is still "in flight"

    backend.during_submit.append(finish_during_post)
    job = await live.submit(GRAPH)
    backend.answers[job.prompt_id] = JobSnapshot(status="success")
    backend.queue.pop(job.prompt_id)
    result = await asyncio.wait_for(job.result(), 2)
    assert result.prompt_id == job.prompt_id
    assert [e.type async for e in job] == ["execution_start", "execution_success", "executing"]


async def test_the_socket_opens_before_the_post(session) -> None:
    live, backend, script = session
    seen: list[int] = []

    async def count_sockets(prompt_id: str) -> None:
        seen.append(len(script.sockets))

    backend.during_submit.append(count_sockets)
    await live.submit(GRAPH)
    assert seen == [1]
    assert live.connection.state is ConnectionState.OPEN


async def test_a_failed_post_removes_the_registration(session) -> None:
    live, backend, _ = session
    backend.fail_submit = ServerError(500)
    with pytest.raises(ServerError):
        await live.submit(GRAPH)
    assert live.dispatcher.registered == 0
    assert live.jobs == {}


async def test_cancelling_during_the_post_cancels_on_the_server(session) -> None:
    live, backend, _ = session
    backend.submit_gate = asyncio.Event()
    task = asyncio.create_task(live.submit(GRAPH))
    await asyncio.sleep(UNIT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(UNIT)
    assert backend.cancelled == backend.submitted
    assert live.dispatcher.registered == 0


@pytest.mark.parametrize("bad", ["not-a-uuid", new_prompt_id().upper()])
async def test_non_canonical_prompt_ids_are_refused_before_any_io(session, bad: str) -> None:
    live, backend, script = session
    with pytest.raises(ConfigurationError, match="canonical"):
        await live.submit(GRAPH, prompt_id=bad)
    assert backend.submitted == []
    assert script.sockets == []


async def test_a_prompt_id_in_flight_cannot_be_reused(session) -> None:
    live, _, _ = session
    job = await live.submit(GRAPH)
    with pytest.raises(ConfigurationError, match="already in flight"):
        await live.submit(GRAPH, prompt_id=job.prompt_id)


async def test_a_silent_job_is_settled_over_http_and_the_socket_replaced(session) -> None:
    live, backend, script = session
    job = await live.submit(GRAPH)
    # It ran and finished, but the socket said nothing (an orphaned socket, §3.1).
    backend.queue.pop(job.prompt_id)
    backend.answers[job.prompt_id] = JobSnapshot(status="success", outputs={"1": {"text": ["x"]}})
    result = await asyncio.wait_for(job.result(), 20 * UNIT)
    assert result.reconciled
    assert result.outputs == {"1": {"text": ["x"]}}
    await asyncio.wait_for(live.connection.wait_for_state(ConnectionState.RECONNECTING), 1)
    await asyncio.wait_for(live.connection.wait_for_state(ConnectionState.OPEN), 1)
    assert len(script.sockets) == 2


async def test_a_socket_still_delivering_frames_is_not_replaced(session) -> None:
    live, backend, script = session
    job = await live.submit(GRAPH)
    backend.queue.pop(job.prompt_id)
    backend.answers[job.prompt_id] = JobSnapshot(status="success")

    async def keep_talking() -> None:  # other traffic: the socket is behind, not orphaned
        while True:
            await send_event(script, "status", {"status": {}})
            await asyncio.sleep(UNIT)

    talker = asyncio.create_task(keep_talking())
    try:
        result = await asyncio.wait_for(job.result(), 20 * UNIT)
        await asyncio.sleep(5 * UNIT)
    finally:
        talker.cancel()
    assert result.reconciled
    assert len(script.sockets) == 1
    assert live.connection.state is ConnectionState.OPEN


async def test_alive_silent_jobs_are_checked_ever_less_often(session) -> None:
    live, backend, _ = session
    job = await live.submit(GRAPH)
    await asyncio.sleep(30 * UNIT)
    # one queue read per round answers for it; no individual lookups, and it backs off
    assert backend.lookups == 0
    interval = live._checks[job.prompt_id][0]
    assert interval == live._options.reconcile.max_silent_after
    assert not job.done()


async def test_without_reconciliation_a_silent_job_stays_unsettled(mini, http) -> None:
    _, server = mini
    backend = Backend()
    live = make_session(backend, server, http, options(enabled=False))
    job = await live.submit(GRAPH)
    backend.queue.pop(job.prompt_id)
    backend.answers[job.prompt_id] = JobSnapshot(status="success")
    assert not await job.wait(timeout=15 * UNIT)
    await live.aclose()


async def test_found_nowhere_twice_is_lost(session) -> None:
    live, backend, _ = session
    job = await live.submit(GRAPH)
    backend.queue.pop(job.prompt_id)  # vanished: e.g. a server restart
    with pytest.raises(JobLost):
        await asyncio.wait_for(job.result(), 30 * UNIT)


async def test_a_reconnect_marks_every_job_and_reconciles_at_once(session) -> None:
    live, backend, script = session
    tap = live.tap()
    job = await live.submit(GRAPH)
    await send_event(script, "execution_start", {"prompt_id": job.prompt_id})
    backend.queue[job.prompt_id] = "running"
    lookups_before = backend.lookups
    await script.sockets[0].close()
    await asyncio.wait_for(live.connection.wait_for_state(ConnectionState.RECONNECTING), 1)
    await asyncio.wait_for(live.connection.wait_for_state(ConnectionState.OPEN), 1)
    backend.queue.pop(job.prompt_id)
    backend.answers[job.prompt_id] = JobSnapshot(status="success")
    # the job ended during the gap: the next reconciliation settles it
    await asyncio.wait_for(job.result(), 20 * UNIT)
    events = [e async for e in job]
    assert isinstance(events[0], ExecutionStart)
    assert any(isinstance(e, Reconnected) for e in events)
    assert isinstance(events[-1], JobReconciled)
    tap.close()
    assert any(isinstance(e, Reconnected) for e in [e async for e in tap])
    assert backend.lookups > lookups_before


async def test_attach_follows_an_earlier_prompt(session) -> None:
    live, backend, _ = session
    prompt_id = new_prompt_id()
    backend.answers[prompt_id] = JobSnapshot(status="success", outputs={"9": {"text": ["t"]}})
    job = await live.attach(prompt_id)
    result = await asyncio.wait_for(job.result(), 1)
    assert result.outputs == {"9": {"text": ["t"]}}
    assert await live.attach(new_prompt_id()) is not None


async def test_an_attached_prompt_ending_silently_does_not_replace_the_socket(session) -> None:
    # Another client's prompt: its events go to that client's socket, never to this one.
    live, backend, script = session
    prompt_id = new_prompt_id()
    backend.queue[prompt_id] = "running"
    job = await live.attach(prompt_id)
    await asyncio.sleep(2 * UNIT)
    backend.queue.pop(prompt_id)
    backend.answers[prompt_id] = JobSnapshot(status="success")
    result = await asyncio.wait_for(job.result(), 20 * UNIT)
    assert result.reconciled
    await asyncio.sleep(2 * UNIT)
    assert live.connection.state is ConnectionState.OPEN
    assert len(script.sockets) == 1


async def test_close_fails_jobs_in_flight_and_leaves_nothing(session) -> None:
    live, _, _ = session
    job = await live.submit(GRAPH)
    await live.aclose()
    with pytest.raises(ClientClosedError):
        await job.result()
    with pytest.raises(ClientClosedError):
        await live.submit(GRAPH)


async def test_drain_waits_for_jobs_to_end(session) -> None:
    live, backend, script = session
    job = await live.submit(GRAPH)

    async def finish_later() -> None:
        await asyncio.sleep(2 * UNIT)
        backend.queue.pop(job.prompt_id)
        backend.answers[job.prompt_id] = JobSnapshot(status="success")
        await send_event(script, "execution_success", {"prompt_id": job.prompt_id})
        await send_event(script, "executing", {"node": None, "prompt_id": job.prompt_id})

    finisher = asyncio.create_task(finish_later())
    await live.aclose(drain=True, timeout=2)
    await finisher
    assert (await job.result()).prompt_id == job.prompt_id


async def test_a_fatal_connection_error_ends_every_waiter(mini, http) -> None:
    script, server = mini
    backend = Backend()
    live = make_session(backend, server, http, options())
    job = await live.submit(GRAPH)
    script.status = 401  # the credentials were revoked: the reconnect is refused
    await script.sockets[0].close()
    with pytest.raises(AuthenticationError):
        await asyncio.wait_for(job.result(), 20 * UNIT)
    await live.aclose()


async def test_events_of_unknown_prompts_reach_the_session_stream(session) -> None:
    live, _, script = session
    tap = live.tap()
    await live.connection.ensure_open()
    await send_event(script, "progress", {"value": 1, "max": 2, "prompt_id": new_prompt_id()})
    await asyncio.sleep(UNIT)
    tap.close()
    kinds: list[Event] = [e async for e in tap]
    assert [e.type for e in kinds] == ["status", "progress"]


async def test_closing_right_after_a_cancel_still_cancels_on_the_server(session) -> None:
    live, backend, _ = session
    slow_cancel = backend.cancel

    async def cancel_after_a_while(prompt_id: str, *, running: bool) -> bool:
        await asyncio.sleep(2 * UNIT)  # the request is still on its way when the session closes
        return await slow_cancel(prompt_id, running=running)

    backend.cancel = cancel_after_a_while  # type: ignore[method-assign]
    job = await live.submit(GRAPH, timeout=UNIT)
    await asyncio.sleep(1.5 * UNIT)  # the deadline passed: a cancel is on its way
    await live.aclose()
    assert backend.cancelled == [job.prompt_id]


async def test_a_consumer_holding_only_the_stream_still_cancels_the_job(session) -> None:
    """The stream reaches its job weakly; the session holds every job in flight meanwhile."""
    live, backend, _ = session
    stream = aiter(await live.submit(GRAPH))  # the program keeps the iterator, not the job
    collecting = gc.isenabled()
    gc.disable()  # nothing but reference counts decides what is still alive
    try:
        consumer = asyncio.create_task(anext(stream))
        await asyncio.sleep(UNIT)
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        await asyncio.sleep(UNIT)
    finally:
        if collecting:
            gc.enable()
    assert backend.cancelled == backend.submitted
    assert len(backend.submitted) == 1
