"""Fault scenarios beyond the basic ones: a blocked loop, an idle proxy, cancellation storms,
pruned history, and jobs nobody consumes beside another client.

Every duration is a multiple of ``UNIT`` (see ``tests/session/conftest.py``). Each scenario
records its figures with the ``figures`` fixture; they are printed after the run and quoted in
``tests/RELIABILITY.md``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from blockbuster import blockbuster_ctx

from comfy_async import ComfyClient
from comfy_async._live.connection import ReconnectInfo
from comfy_async.config import HeartbeatPolicy
from comfy_async.events import Event, ExecutionSuccess
from tests.session.conftest import UNIT, assert_clean, options
from tests.session.graphs import sleeper

_THIS_FILE = "/".join(Path(__file__).parts[-3:])

# --------------------------------------------------------------------------- a blocked loop


async def test_a_blocked_event_loop_delays_a_job_but_it_completes_once(
    server, figures, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A consumer and a reconnect callback that block the loop for 2 units, heartbeat 0.5 s.

    The whole scenario runs under blockbuster, watching every call made from the library's own
    code (the fake server is excluded: it is test scaffolding): any blocking call there (sleep,
    file or socket I/O, a lock acquired without a timeout...) raises ``BlockingError``. Only the
    two user functions of this test are allowed to block.
    """
    heartbeat, block = 0.5, 2 * UNIT
    reconnects: list[ReconnectInfo] = []

    async def on_reconnect(info: ReconnectInfo) -> None:
        reconnects.append(info)
        time.sleep(block)  # a careless user callback

    def careless_consumer_step(event: Event) -> None:
        time.sleep(block)

    caplog.set_level(logging.INFO, logger="comfy_async")
    opts = options(heartbeat=HeartbeatPolicy(interval=heartbeat))
    with blockbuster_ctx(["comfy_async"], excluded_modules=["comfy_async.testing"]) as watch:
        watch.functions["time.sleep"].can_block_in(_THIS_FILE, {"on_reconnect"})
        started = time.perf_counter()
        comfy = ComfyClient(server.url, options=opts, on_reconnect=on_reconnect)
        async with comfy:
            job = await comfy.submit(sleeper(steps=6, delay=UNIT, preview="JPEG"))
            events: list[Event] = []
            async for event in job:
                events.append(event)
                careless_consumer_step(event)
            result = await job.result()
            saved = await result.save(tmp_path)
            # A forced reconnect runs the blocking callback on the library's reconnect path.
            server.faults.drop_websocket()
            second = await comfy.submit(sleeper(steps=2, delay=UNIT))
            again = await asyncio.wait_for(second.result(), 100 * UNIT)
            connects = comfy._live.connection.connects
        elapsed = time.perf_counter() - started
    assert_clean(comfy)
    blocking = [r for r in caplog.records if "Blocking call" in r.getMessage() or r.exc_info]
    assert blocking == []
    assert result.prompt_id == job.prompt_id
    assert again.prompt_id == second.prompt_id
    assert sum(isinstance(e, ExecutionSuccess) for e in events) == 1
    assert server.posts_for(job.prompt_id) == 1
    assert server.posts_for(second.prompt_id) == 1
    assert [path.name for path in saved]
    assert reconnects  # the callback ran (and blocked) at least once
    figures(
        heartbeat_s=heartbeat,
        block_s=block,
        blocked_events=len(events),
        loop_blocked_s=round(block * (len(events) + len(reconnects)), 2),
        reconnects=connects - 1,
        seconds=round(elapsed, 2),
    )
