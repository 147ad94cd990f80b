"""The session's view of jobs over HTTP: submit, look up, cancel, list what is in flight, save.

:class:`HttpJobBackend` implements :class:`~comfy_async._live.session.SessionBackend` with the REST
namespaces, normalising what the server says into :class:`~comfy_async.job.JobSnapshot`:

* ``GET /api/jobs/{id}`` where the server has the jobs API (status, outputs, error, times);
* else ``GET /history/{id}`` for finished prompts and ``GET /queue`` for queued or running ones
  (protocol doc §6.5, §9);
* on a local server, lookups made while another is under way go together as one read of the
  newest history records (:class:`~comfy_async._live.grouped_lookup.GroupedLookup`); a prompt
  that read does not hold is looked up on its own as above.

Cancelling never interrupts globally (design invariant 9): the jobs cancel endpoint where it
exists, else the prompt is deleted from the queue (a no-op once it runs) and a targeted interrupt
is sent (a no-op unless it runs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from comfy_async._live.grouped_lookup import GroupedLookup, window_size
from comfy_async.job import JobSnapshot
from comfy_async.models.history import CloudHistoryListItem, HistoryEntry
from comfy_async.models.jobs import JobPhase, job_phase

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    from comfy_async._live.session import SubmitOptions
    from comfy_async._transport.rest.files import Files
    from comfy_async._transport.rest.history import History
    from comfy_async._transport.rest.jobs import Jobs
    from comfy_async._transport.rest.prompts import Prompts
    from comfy_async._transport.rest.queue import Queue
    from comfy_async.models.files import OutputFile
    from comfy_async.models.history import HistoryRecord
    from comfy_async.models.jobs import JobDetail
    from comfy_async.models.prompts import PromptResponse

__all__ = ["HttpJobBackend"]

_STATUS: Final = {
    JobPhase.PENDING: "pending",
    JobPhase.RUNNING: "running",
    JobPhase.UNKNOWN: "running",  # an unknown state is still in flight
    JobPhase.SUCCESS: "success",
    JobPhase.FAILED: "error",
    JobPhase.CANCELLED: "cancelled",
    JobPhase.LOST: "lost",
}
# Epoch milliseconds are above this; seconds (as Comfy Cloud documents some times) are below.
_MILLISECONDS: Final = 10**11
# In-flight listings on the jobs API, per page (Cloud caps a page at 1000).
_PAGE: Final = 1000


def _seconds(value: float | None) -> float | None:
    if value is None:
        return None
    return value / 1000.0 if value > _MILLISECONDS else float(value)


def _cached_nodes(messages: Sequence[tuple[str, Mapping[str, object]]]) -> tuple[str, ...]:
    for name, data in messages:
        if name == "execution_cached":
            nodes = data.get("nodes")
            if isinstance(nodes, list):
                return tuple(str(node) for node in nodes)
    return ()


def _message_time(messages: Sequence[tuple[str, Mapping[str, object]]], name: str) -> float | None:
    for event, data in messages:
        stamp = data.get("timestamp")
        if event == name and isinstance(stamp, int | float):
            return _seconds(stamp)
    return None


class HttpJobBackend:
    """:class:`~comfy_async._live.session.SessionBackend` over the REST namespaces."""

    def __init__(
        self,
        *,
        prompts: Prompts,
        queue: Queue,
        history: History,
        jobs: Jobs,
        files: Files,
        finish_marker: bool,
        history_window: bool = False,
        crowded: Callable[[], bool] = lambda: True,
    ) -> None:
        """With ``history_window``, lookups close together are answered by one history read.

        ``crowded`` says whether several jobs are in flight: only then do lookups wait for one
        another (see :class:`~comfy_async._live.grouped_lookup.GroupedLookup`).
        """
        self._prompts = prompts
        self._queue = queue
        self._history = history
        self._jobs = jobs
        self._files = files
        self.finish_marker = finish_marker
        self._grouped = (
            GroupedLookup(self._lookup_one, self._read_window, crowded=crowded)
            if history_window
            else None
        )

    async def submit(
        self,
        prompt: Mapping[str, object],
        *,
        prompt_id: str,
        client_id: str,
        options: SubmitOptions,
    ) -> PromptResponse:
        """POST the prompt (the REST layer reconciles an ambiguous failure by looking it up)."""
        return await self._prompts.submit(
            prompt,
            prompt_id=prompt_id,
            client_id=client_id,
            number=options.number,
            front=options.front,
            extra_data=options.extra_data,
            partial_execution_targets=options.partial_execution_targets,
            preview_method=options.preview_method,
        )

    async def in_flight(self) -> dict[str, str] | None:
        """Every queued or running prompt id → ``pending``/``running``."""
        if await self._jobs.available():
            found: dict[str, str] = {}
            after: str | None = None
            offset = 0
            while True:
                page = await self._jobs.list(
                    status=["pending", "in_progress"], limit=_PAGE, offset=offset, after=after
                )
                for entry in page.jobs:
                    found[entry.id] = _STATUS[job_phase(entry.status)]
                cursor = page.pagination.next_cursor
                if cursor:
                    after = cursor
                elif page.pagination.has_more and page.jobs:
                    offset += len(page.jobs)
                else:
                    return found
        queue = await self._queue.get()
        states = {item.prompt_id: "pending" for item in queue.queue_pending}
        states.update((item.prompt_id, "running") for item in queue.queue_running)
        return states

    async def oldest_kept(self) -> float | None:
        """The queue number of the oldest finished prompt the server still keeps a record of.

        One bounded read: the oldest finished job of the jobs API, else ``/history`` with
        ``max_items=1&offset=0`` (offset counts from the oldest, protocol doc §7.15); never the
        whole history. ``None`` when nothing is kept or the server does not say (Comfy Cloud
        gives no queue numbers).
        """
        if await self._jobs.available():
            page = await self._jobs.list(
                status=["completed", "failed", "cancelled"],
                sort_by="created",
                sort_order="asc",
                limit=1,
            )
            priority = page.jobs[0].priority if page.jobs else None
            return None if priority is None else float(priority)
        records = await self._history.list(max_items=1, offset=0)
        oldest = next(iter(records.values()), None)
        return float(oldest.prompt.number) if isinstance(oldest, HistoryEntry) else None

    async def lookup(self, prompt_id: str) -> JobSnapshot | None:
        """What the server says about one prompt; ``None`` if it is in neither queue nor history."""
        if self._grouped is not None:
            return await self._grouped.lookup(prompt_id)
        return await self._lookup_one(prompt_id)

    async def _read_window(self, prompt_ids: Sequence[str]) -> dict[str, JobSnapshot]:
        """The finished ones of ``prompt_ids`` among the newest history records (one read)."""
        records = await self._history.list(max_items=window_size(len(prompt_ids)))
        wanted = set(prompt_ids)
        return {key: self._from_history(record) for key, record in records.items() if key in wanted}

    async def _lookup_one(self, prompt_id: str) -> JobSnapshot | None:
        if await self._jobs.available():
            detail = await self._jobs.get(prompt_id)
            return None if detail is None else self._from_job(detail)
        record = await self._history.get(prompt_id)
        if record is not None:
            return self._from_history(record)
        states = await self.in_flight()
        status = (states or {}).get(prompt_id)
        return JobSnapshot(status=status) if status else None

    @staticmethod
    def _from_job(detail: JobDetail) -> JobSnapshot:
        status = _STATUS[job_phase(detail.status)]
        if status == "cancelled" and detail.interrupted:
            status = "interrupted"
        messages = detail.execution_status.messages if detail.execution_status else []
        return JobSnapshot(
            status=status,
            outputs=detail.outputs,
            error=detail.execution_error,
            cached_nodes=_cached_nodes(messages),
            queued_at=_seconds(detail.create_time),
            started_at=_seconds(detail.execution_start_time),
            finished_at=_seconds(detail.execution_end_time),
        )

    @staticmethod
    def _from_history(record: HistoryRecord) -> JobSnapshot:
        if record.interrupted:
            status = "interrupted"
        elif record.status_str == "error":
            status = "error"
        else:
            status = "success"
        messages = record.status.messages if record.status else []
        created: object = None
        if isinstance(record, HistoryEntry):
            created = record.prompt.create_time
        elif isinstance(record, CloudHistoryListItem):
            created = record.create_time
        return JobSnapshot(
            status=status,
            outputs=record.outputs,
            error=record.execution_error,
            cached_nodes=_cached_nodes(messages),
            queued_at=_seconds(created) if isinstance(created, int | float) else None,
            started_at=_message_time(messages, "execution_start"),
            finished_at=_message_time(messages, "execution_success"),
        )

    async def cancel(self, prompt_id: str, *, running: bool) -> bool:
        """Cancel one prompt on the server, never globally; whether the server cancelled it."""
        if await self._jobs.available():
            return await self._jobs.cancel(prompt_id)
        # Both are no-ops when they do not apply, and the state we know may be stale.
        await self._queue.delete([prompt_id])
        await self._queue.interrupt(prompt_id)
        return True

    async def save(
        self, files: Sequence[OutputFile], folder: str | Path, *, overwrite: bool
    ) -> list[Path]:
        """Download ``files`` into ``folder`` under sanitised names."""
        return await self._files.save(files, folder, overwrite=overwrite)
