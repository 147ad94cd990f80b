"""The Job state machine: exactly one outcome, reconciliation, cancellation (scripted backend)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import TYPE_CHECKING

import pytest

from comfy_async._live.tasks import TaskSet
from comfy_async.config import StreamLimits
from comfy_async.errors import (
    ExecutionError,
    JobCancelled,
    JobInterrupted,
    JobLost,
    JobTimeout,
)
from comfy_async.events import (
    Event,
    Executed,
    Executing,
    ExecutionCached,
    ExecutionFailed,
    ExecutionInterrupted,
    ExecutionStart,
    ExecutionSuccess,
    JobReconciled,
    NodeProgress,
    Progress,
    ProgressState,
)
from comfy_async.job import Job, JobSnapshot, JobState

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine

P = "33333333-3333-4333-8333-333333333333"
IMAGE = {"images": [{"filename": "a_00001_.png", "subfolder": "", "type": "output"}]}


class ScriptedBackend:
    """Answers lookups from a list (last answer repeats) and records cancels."""

    def __init__(self, *answers: JobSnapshot | None, finish_marker: bool = True) -> None:
        self.answers = list(answers)
        self.finish_marker = finish_marker
        self.lookups = 0
        self.cancels: list[bool] = []

    async def lookup(self, prompt_id: str) -> JobSnapshot | None:
        self.lookups += 1
        if len(self.answers) > 1:
            return self.answers.pop(0)
        return self.answers[0] if self.answers else None

    async def cancel(self, prompt_id: str, *, running: bool) -> bool:
        self.cancels.append(running)
        await asyncio.sleep(0)
        return True


@pytest.fixture
async def tasks() -> AsyncIterator[TaskSet]:
    task_set = TaskSet("test")
    yield task_set
    await task_set.aclose()


def make_job(backend: ScriptedBackend, tasks: TaskSet, **kwargs: object) -> Job:
    job = Job(
        P,
        backend=backend,
        tasks=tasks,
        limits=StreamLimits(),
        finish_grace=0.2,
        **kwargs,  # type: ignore[arg-type]
    )
    job._accepted(1, {})
    return job


def run(job: Job, *events: Event) -> None:
    for event in events:
        job._feed(event)


START = ExecutionStart(prompt_id=P, timestamp=1_000_000)
SUCCESS = ExecutionSuccess(prompt_id=P, timestamp=1_002_500)
FINISHED = Executing(node=None, prompt_id=P)


async def test_success_merges_executed_outputs_with_history(tasks: TaskSet) -> None:
    history = JobSnapshot(status="success", outputs={"9": {"text": ["hi"]}}, queued_at=999.0)
    backend = ScriptedBackend(history)
    job = make_job(backend, tasks)
    run(
        job,
        START,
        ExecutionCached(prompt_id=P, nodes=["1"]),
        Executing(node="2", prompt_id=P),
        Executed(node="2", prompt_id=P, output=IMAGE),
        SUCCESS,
        FINISHED,
    )
    result = await asyncio.wait_for(job.result(), 2)
    assert result.outputs == {"2": IMAGE, "9": {"text": ["hi"]}}
    assert result.cached_nodes == ("1",)
    assert (result.started_at, result.finished_at, result.queued_at) == (1000.0, 1002.5, 999.0)
    assert result.duration == 2.5
    assert not result.reconciled
    assert job.state is JobState.DONE
    assert backend.lookups == 1


async def test_iteration_yields_every_event_and_ends_after_the_outcome(tasks: TaskSet) -> None:
    job = make_job(ScriptedBackend(JobSnapshot(status="success")), tasks)
    events = [START, Executing(node="2", prompt_id=P), SUCCESS, FINISHED]
    run(job, *events)
    seen = [event async for event in job]
    assert seen == events


async def test_fully_cached_run_has_outputs_from_replays(tasks: TaskSet) -> None:
    job = make_job(ScriptedBackend(JobSnapshot(status="success")), tasks)
    run(
        job,
        START,
        ExecutionCached(prompt_id=P, nodes=["1", "2"]),
        Executed(node="2", prompt_id=P, output=IMAGE),
        SUCCESS,
        FINISHED,
    )
    assert (await job.result()).outputs == {"2": IMAGE}


async def test_execution_error_raises_with_node_details(tasks: TaskSet) -> None:
    job = make_job(ScriptedBackend(), tasks)
    failure = ExecutionFailed(
        prompt_id=P,
        node_id="4",
        node_type="ProbeRaise",
        exception_type="ValueError",
        exception_message="boom",
        traceback=["File x"],
    )
    run(job, START, failure, FINISHED)
    with pytest.raises(ExecutionError) as caught:
        await asyncio.wait_for(job.result(), 2)
    assert (caught.value.node_id, caught.value.node_type) == ("4", "ProbeRaise")
    assert caught.value.traceback == ["File x"]


async def test_execution_blocked_is_not_terminal(tasks: TaskSet) -> None:
    job = make_job(ScriptedBackend(JobSnapshot(status="success")), tasks)
    blocked = ExecutionFailed(prompt_id=P, node_id="3", exception_type="ExecutionBlocked")
    run(job, START, blocked)
    await asyncio.sleep(0.05)
    assert not job.done()
    run(job, SUCCESS, FINISHED)
    await asyncio.wait_for(job.result(), 2)


async def test_interrupted(tasks: TaskSet) -> None:
    job = make_job(ScriptedBackend(), tasks)
    run(job, START, ExecutionInterrupted(prompt_id=P, node_id="2"), FINISHED)
    with pytest.raises(JobInterrupted) as caught:
        await job.result()
    assert not isinstance(caught.value, JobCancelled)
    assert caught.value.node_id == "2"


async def test_success_settles_after_the_grace_when_no_finish_marker(tasks: TaskSet) -> None:
    backend = ScriptedBackend(JobSnapshot(status="running"), JobSnapshot(status="success"))
    job = make_job(backend, tasks)
    run(job, START, SUCCESS)
    result = await asyncio.wait_for(job.result(), 3)
    assert backend.lookups == 2  # history trailed execution_success once
    assert result.prompt_id == P


async def test_cloud_settles_on_the_terminal_event_without_waiting(tasks: TaskSet) -> None:
    backend = ScriptedBackend(JobSnapshot(status="success"), finish_marker=False)
    job = Job(P, backend=backend, tasks=tasks, limits=StreamLimits(), finish_grace=60)
    run(job, START, SUCCESS)
    await asyncio.wait_for(job.result(), 1)


async def test_finish_marker_without_terminal_event_asks_the_server(tasks: TaskSet) -> None:
    job = make_job(ScriptedBackend(JobSnapshot(status="success", outputs={"2": IMAGE})), tasks)
    run(job, START, FINISHED)  # the terminal event was lost in a gap
    result = await asyncio.wait_for(job.result(), 2)
    assert result.reconciled
    assert result.outputs == {"2": IMAGE}
    assert any(isinstance(e, JobReconciled) for e in [e async for e in job])


async def test_found_nowhere_twice_is_lost_never_success(tasks: TaskSet) -> None:
    job = make_job(ScriptedBackend(), tasks)
    run(job, START)
    job._reconcile(None)
    assert not job.done()
    job._reconcile(None)
    with pytest.raises(JobLost):
        await job.result()
    events = [event async for event in job]
    assert events[-1] == JobReconciled(prompt_id=P, status="lost", source="http")


async def test_a_sighting_resets_the_missing_count(tasks: TaskSet) -> None:
    job = make_job(ScriptedBackend(), tasks)
    job._reconcile(None)
    job._reconcile(JobSnapshot(status="pending"))
    job._reconcile(None)
    assert not job.done()


async def test_not_lost_while_the_post_is_in_flight(tasks: TaskSet) -> None:
    job = Job(P, backend=ScriptedBackend(), tasks=tasks, limits=StreamLimits())
    for _ in range(5):
        job._reconcile(None)
    assert not job.done()


@pytest.mark.parametrize(
    ("snapshot", "error"),
    [
        (JobSnapshot(status="interrupted"), JobInterrupted),
        (JobSnapshot(status="cancelled"), JobInterrupted),
        (JobSnapshot(status="lost"), JobLost),
        (JobSnapshot(status="error"), ExecutionError),
        (
            JobSnapshot(
                status="error",
                error=ExecutionFailed(prompt_id=P, node_id="7", exception_type="KeyError"),
            ),
            ExecutionError,
        ),
    ],
)
async def test_reconciled_failures(
    tasks: TaskSet, snapshot: JobSnapshot, error: type[Exception]
) -> None:
    job = make_job(ScriptedBackend(), tasks)
    job._reconcile(snapshot)
    with pytest.raises(error):
        await job.result()


async def test_one_outcome_even_when_event_and_reconciliation_race(tasks: TaskSet) -> None:
    job = make_job(ScriptedBackend(JobSnapshot(status="success")), tasks)
    run(job, START, SUCCESS, FINISHED)
    job._reconcile(JobSnapshot(status="error"))  # late and contradictory: ignored
    job._reconcile(None)
    result = await job.result()
    assert not result.reconciled


async def test_timeout_cancels_on_the_server(tasks: TaskSet) -> None:
    backend = ScriptedBackend(JobSnapshot(status="running"))
    job = make_job(backend, tasks)
    run(job, START)
    with pytest.raises(JobTimeout):
        await job.result(timeout=0.05)
    await asyncio.sleep(0.05)
    assert backend.cancels == [True]


async def test_detached_timeout_leaves_the_server_job_alone(tasks: TaskSet) -> None:
    backend = ScriptedBackend(JobSnapshot(status="running"))
    job = make_job(backend, tasks, detach=True)
    with pytest.raises(JobTimeout):
        await job.result(timeout=0.05)
    await asyncio.sleep(0.05)
    assert backend.cancels == []
    assert not job.done()


async def all_events(job: Job) -> list[Event]:
    return [event async for event in job]


async def latest_previews(job: Job) -> None:
    async for _ in job.previews(latest_only=True):
        pass


async def cancel_while_waiting(consumer: Coroutine[object, object, object]) -> None:
    """Start ``consumer``, let it wait for the job, then cancel its task."""
    task = asyncio.create_task(consumer)
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    "consumer",
    [Job.result, all_events, latest_previews],
    ids=["awaiting", "iterating", "iterating-previews"],
)
async def test_cancelling_a_task_that_waits_for_the_job_cancels_it(
    tasks: TaskSet, consumer: Callable[[Job], Coroutine[object, object, object]]
) -> None:
    backend = ScriptedBackend(None)
    job = make_job(backend, tasks)
    await cancel_while_waiting(consumer(job))
    assert backend.cancels == [False]  # it was pending: deleted from the queue
    with pytest.raises(JobCancelled):
        await job.result()


async def test_cancelling_an_iterating_task_leaves_a_detached_job_alone(tasks: TaskSet) -> None:
    backend = ScriptedBackend(JobSnapshot(status="success"))
    job = make_job(backend, tasks, detach=True)
    await cancel_while_waiting(all_events(job))
    run(job, START, SUCCESS, FINISHED)
    await job.result()
    assert backend.cancels == []
    assert [type(e).__name__ async for e in job] == [
        "ExecutionStart",
        "ExecutionSuccess",
        "Executing",
    ]


async def test_leaving_the_scope_early_cancels_the_job(tasks: TaskSet) -> None:
    backend = ScriptedBackend(None)
    job = make_job(backend, tasks)
    run(job, START)
    async with job:
        async for _ in job:
            break  # the consumer leaves before the outcome
    # The cancel was awaited by the scope: the server was asked before the block ended.
    assert backend.cancels == [True]


async def test_an_exception_in_the_scope_cancels_the_job_and_propagates(tasks: TaskSet) -> None:
    backend = ScriptedBackend(None)
    job = make_job(backend, tasks)

    class BrowserLeft(Exception):
        pass

    with pytest.raises(BrowserLeft):
        async with job:
            raise BrowserLeft
    await asyncio.sleep(0.05)
    assert backend.cancels == [False]
    with pytest.raises(JobCancelled):
        await job.result()


async def test_the_scope_leaves_a_finished_or_detached_job_alone(tasks: TaskSet) -> None:
    backend = ScriptedBackend(JobSnapshot(status="success"))
    job = make_job(backend, tasks)
    async with job:
        run(job, START, SUCCESS, FINISHED)
        await job.result()
    detached = make_job(ScriptedBackend(None), tasks)
    detached.detach()
    async with detached:
        pass
    await asyncio.sleep(0.05)
    assert backend.cancels == []
    assert not detached.done()


async def test_cancel_is_idempotent_and_settles_a_deleted_pending_job(tasks: TaskSet) -> None:
    backend = ScriptedBackend(None)
    job = make_job(backend, tasks)
    first, second = await asyncio.gather(job.cancel(), job.cancel())
    assert (first, second) == (True, True)
    assert backend.cancels == [False]
    with pytest.raises(JobCancelled):
        await job.result()
    assert await job.cancel() is True  # asking again returns the same answer, no new request
    assert backend.cancels == [False]


async def test_cancel_of_a_running_job_ends_when_it_is_interrupted(tasks: TaskSet) -> None:
    backend = ScriptedBackend(JobSnapshot(status="running"))
    job = make_job(backend, tasks)
    run(job, START)
    assert await job.cancel() is True
    assert backend.cancels == [True]
    assert not job.done()
    run(job, ExecutionInterrupted(prompt_id=P), FINISHED)
    with pytest.raises(JobCancelled):
        await asyncio.wait_for(job.result(), 1)


async def test_deadline(tasks: TaskSet) -> None:
    backend = ScriptedBackend(JobSnapshot(status="running"))
    job = make_job(backend, tasks)
    job._set_deadline(0.02)
    with pytest.raises(JobTimeout):
        await asyncio.wait_for(job.result(), 1)
    await asyncio.sleep(0.02)
    assert backend.cancels == [False]


async def test_progress_is_node_and_step_weighted(tasks: TaskSet) -> None:
    job = make_job(ScriptedBackend(), tasks, node_count=5)
    run(job, START, ExecutionCached(prompt_id=P, nodes=["1"]))
    assert job.progress.fraction == 0.0
    assert job.progress.nodes_total == 4
    finished = NodeProgress(value=1, max=1, state="finished")
    running = NodeProgress(value=0, max=1, state="running")
    run(job, ProgressState(prompt_id=P, nodes={"2": finished, "3": running}))
    run(job, Progress(value=5, max=20, node="3", prompt_id=P))
    progress = job.progress
    assert progress.node == "3"
    assert progress.nodes_done == 1
    # 4 nodes to run, node 3 weighs its 20 steps: (1 done + 5 of 20 steps) / (3 + 20)
    assert progress.fraction == pytest.approx((1 + 5) / (3 + 20))
    run(job, SUCCESS)
    assert job.progress.fraction == 1.0


SD15 = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {}},
    "3": {"class_type": "KSampler", "inputs": {"steps": 20, "seed": 1}},
    "8": {"class_type": "VAEDecode", "inputs": {}},
    "9": {"class_type": "SaveImage", "inputs": {}},
}


def sd15_job(backend: ScriptedBackend, tasks: TaskSet) -> Job:
    from comfy_async._live.session import step_weights

    return make_job(backend, tasks, node_count=7, node_weights=step_weights(SD15))


def at_step(step: int) -> list[Event]:
    done = NodeProgress(value=1, max=1, state="finished")
    nodes = dict.fromkeys(("4", "6", "7", "5"), done)
    nodes["3"] = NodeProgress(value=step, max=20, state="running")
    return [
        ProgressState(prompt_id=P, nodes=nodes),
        Progress(value=step, max=20, node="3", prompt_id=P),
    ]


async def test_half_the_steps_of_the_one_sampler_is_about_half_the_job(tasks: TaskSet) -> None:
    job = sd15_job(ScriptedBackend(), tasks)
    run(job, START)
    before_sampler = job.progress.fraction
    run(job, *at_step(10))
    # Node-weighted this read (4 + 0.5) / 7 = 64 % and then jumped; step-weighted it is 14/26.
    assert job.progress.fraction == pytest.approx((4 + 10) / 26)
    run(job, *at_step(20))
    assert before_sampler <= (4 + 10) / 26 < job.progress.fraction < 1.0


async def test_progress_never_goes_back(tasks: TaskSet) -> None:
    job = sd15_job(ScriptedBackend(), tasks)
    run(job, START, *at_step(12))
    high = job.progress.fraction
    run(job, Progress(value=3, max=20, node="3", prompt_id=P))  # a late, older event
    assert job.progress.fraction == high


async def test_a_cancelled_job_keeps_its_progress_where_it_stopped(tasks: TaskSet) -> None:
    job = sd15_job(ScriptedBackend(None), tasks)
    run(job, START, *at_step(2))
    stopped = job.progress.fraction
    assert 0 < stopped < 0.5
    run(job, ExecutionInterrupted(prompt_id=P, node_id="3", node_type="KSampler", executed=[]))
    with pytest.raises(JobInterrupted):
        await job.result()
    assert job.progress.fraction == stopped


async def test_previews_latest_only(tasks: TaskSet) -> None:
    from comfy_async.events import PreviewImage

    job = make_job(ScriptedBackend(JobSnapshot(status="success")), tasks)
    for n in range(4):
        job._feed(PreviewImage(image=memoryview(bytes([n])), mime="image/png", prompt_id=P))
    run(job, SUCCESS, FINISHED)
    latest = [bytes(p.image) async for p in job.previews(latest_only=True)]
    assert latest == [b"\x03"]


async def test_a_finished_job_dropped_is_freed_without_the_cycle_collector(tasks: TaskSet) -> None:
    """No reference cycle: a finished job, its events and its result go when dropped."""
    job = make_job(ScriptedBackend(JobSnapshot(status="success", outputs={"2": IMAGE})), tasks)
    run(job, START, Executed(node="2", prompt_id=P, output=IMAGE), SUCCESS, FINISHED)
    seen = [event async for event in job]
    result = await asyncio.wait_for(job.result(), 2)
    assert len(seen) == 4
    assert result.outputs == {"2": IMAGE}
    await asyncio.sleep(0)  # the settling task has ended
    dropped = weakref.ref(job)
    collecting = gc.isenabled()
    gc.disable()
    try:
        del job, seen, result
        assert dropped() is None
    finally:
        if collecting:
            gc.enable()
