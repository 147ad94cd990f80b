"""Batches: many prompts through one session, a bounded number in flight, results as they end.

:func:`run_batch` keeps at most ``concurrency`` jobs submitted and unfinished, submits the next
workflow as soon as one ends, and yields a :class:`BatchOutcome` per workflow in completion
order. Workflows are read lazily, so an iterator of ten thousand graphs is never held in memory.
A workflow that fails to submit (refused by validation, say) yields an outcome with its error and
the batch goes on. Leaving the loop early (``break``, an exception, cancellation) cancels the
jobs still in flight on the server, unless they were submitted detached.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
)
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from comfy_async.errors import ComfyError, ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from comfy_async.job import Job, JobResult

__all__ = ["BatchOutcome", "run_batch", "run_one"]

W = TypeVar("W")


@dataclass(frozen=True, slots=True)
class BatchOutcome(Generic[W]):
    """The outcome of one workflow of a batch: its position, its job, and a result or an error."""

    index: int
    """Position of the workflow in the input."""
    workflow: W
    """The workflow as it was given."""
    prompt_id: str | None
    """The job's prompt id (``None`` when the submission itself failed)."""
    result: JobResult | None = None
    error: ComfyError | None = None

    @property
    def ok(self) -> bool:
        """Whether the job succeeded."""
        return self.result is not None

    def unwrap(self) -> JobResult:
        """Return the result, or raise the error."""
        if self.result is None:
            assert self.error is not None
            raise self.error
        return self.result


async def _items(workflows: Iterable[W] | AsyncIterable[W]) -> AsyncGenerator[W, None]:
    if isinstance(workflows, AsyncIterable):
        async for workflow in workflows:
            yield workflow
    else:
        for workflow in workflows:
            yield workflow


async def run_batch(
    workflows: Iterable[W] | AsyncIterable[W],
    submit: Callable[[W], Awaitable[Job]],
    *,
    concurrency: int,
) -> AsyncIterator[BatchOutcome[W]]:
    """Yield one :class:`BatchOutcome` per workflow, in completion order (see the module doc)."""
    if concurrency < 1:
        raise ConfigurationError(f"concurrency must be at least 1, got {concurrency!r}")
    source = _items(workflows)
    running: set[asyncio.Task[BatchOutcome[W]]] = set()
    exhausted = False
    index = 0

    async def settle(position: int, workflow: W) -> BatchOutcome[W]:
        try:
            job = await submit(workflow)
        except ComfyError as error:
            return BatchOutcome(position, workflow, None, error=error)
        try:
            return BatchOutcome(position, workflow, job.prompt_id, result=await job.result())
        except ComfyError as error:
            return BatchOutcome(position, workflow, job.prompt_id, error=error)

    try:
        while True:
            while not exhausted and len(running) < concurrency:
                try:
                    workflow = await anext(source)
                except StopAsyncIteration:
                    exhausted = True
                    break
                running.add(asyncio.create_task(settle(index, workflow)))
                index += 1
            if not running:
                return
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                running.discard(task)
                yield task.result()
    finally:
        for task in running:
            task.cancel()  # cancelling a task awaiting job.result() cancels the job too
        if running:
            with contextlib.suppress(BaseException):
                await asyncio.gather(*running, return_exceptions=True)
        with contextlib.suppress(BaseException):
            await source.aclose()


async def run_one(
    submit: Callable[..., Awaitable[Job]],
    workflow: object,
    *,
    save_to: str | Path | None,
    timeout: float | None,
    options: Mapping[str, object],
) -> JobResult:
    """Submit, wait for the outcome, save the outputs if asked: ``run()`` of a client or pool."""
    job = await submit(workflow, timeout=timeout, **options)
    result = await job.result()
    if save_to is not None:
        await result.save(save_to)
    return result
