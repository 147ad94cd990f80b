"""``comfy.jobs``: the jobs API (list with filters and paging, get, cancel one or many).

Routes: ``GET /api/jobs``, ``GET /api/jobs/{id}``, ``POST /api/jobs/{id}/cancel``,
``POST /api/jobs/cancel`` (protocol doc §2.1, §4.5), and Comfy Cloud's deprecated
``GET /api/job/{id}/status`` (§8). Servers older than the jobs API answer 404 (§9): whether the
server has it is detected once, at first use, with ``GET /api/jobs?limit=1``, and cached; on such
servers every method here raises :class:`~comfy_async.errors.UnsupportedOperationError` and the
session falls back to history and queue. The sort names are neutral (``created``,
``duration``) and mapped to each flavour's names by the route table.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal

from comfy_async._transport.rest.namespace import Namespace
from comfy_async.errors import ConfigurationError, UnsupportedOperationError
from comfy_async.models.jobs import (
    CancelResult,
    CloudJobStatus,
    JobDetail,
    JobList,
    decode_cancel_result,
    decode_cloud_job_status,
    decode_job,
    decode_job_list,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from comfy_async._transport.http import HttpClient

__all__ = ["Jobs"]


class Jobs(Namespace):
    """The jobs API: ``comfy.jobs``.

    ``available`` forces the answer of the detection (``None``: detect at first use).
    """

    __slots__ = ("_available", "_lock")

    def __init__(self, http: HttpClient, *, available: bool | None = None) -> None:
        super().__init__(http)
        self._available = available
        self._lock: asyncio.Lock | None = None

    async def available(self) -> bool:
        """Whether the server has the jobs API; detected once (``GET /api/jobs?limit=1``).

        A 404 means an older server (cached as ``False``); any other failure is raised and the
        next call tries again. Cancelling abandons the detection; nothing is cached.
        """
        if self._available is None:
            if not self._http.routes.has("jobs.list"):
                self._available = False
                return False
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                if self._available is None:
                    route = self._route("jobs.list")
                    response = await self._http.request(route, query={"limit": 1}, allow=(404,))
                    self._available = response.status != 404
        return self._available

    async def _require(self, operation: str) -> None:
        if not await self.available():
            raise UnsupportedOperationError(
                operation, self._http.flavour, "this server predates the jobs API (/api/jobs)"
            )

    async def get(self, job_id: str) -> JobDetail | None:
        """One job with its outputs and workflow, or ``None`` if the server has no such job.

        A prompt deleted while pending has no job (protocol doc §4.5). Cancelling abandons the
        read.
        """
        await self._require("jobs.get")
        response = await self._http.request(self._route("jobs.get", job_id=job_id), allow=(404,))
        if response.status == 404:
            return None
        return self._http.decode(response, decode_job)

    async def cancel(self, job_id: str) -> bool:
        """Cancel one job: interrupt it if running, dequeue it if pending.

        Returns whether anything was cancelled (``False`` for a finished or unknown job). Only
        this job is touched, never another client's. Cancelling the call may leave the request
        sent or not; repeating it is harmless.
        """
        await self._require("jobs.cancel")
        route = self._route("jobs.cancel", job_id=job_id)
        return (await self._http.fetch(route, decode_cancel_result)).any_cancelled

    async def cancel_many(self, job_ids: Iterable[str]) -> CancelResult:
        """Cancel several jobs at once (ids must be canonical UUIDs; Cloud takes 1–100).

        Locally the answer says whether any was cancelled; Comfy Cloud lists the cancelled ids
        and answers 404 when one is unknown (:class:`~comfy_async.errors.NotFoundError`).
        Cancelling the call may leave the request sent or not; repeating it is harmless.
        """
        await self._require("jobs.cancel_many")
        route = self._route("jobs.cancel_many")
        return await self._http.fetch(route, decode_cancel_result, json={"job_ids": list(job_ids)})

    async def raw_status(self, job_id: str) -> CloudJobStatus:
        """Comfy Cloud's deprecated raw job state (``GET /api/job/{id}/status``).

        Raises :class:`~comfy_async.errors.UnsupportedOperationError` on a local server.
        Cancelling abandons the read.
        """
        route = self._route("job_status", job_id=job_id)
        return await self._http.fetch(route, decode_cloud_job_status)

    async def list(
        self,
        *,
        status: str | Iterable[str] | None = None,
        workflow_id: str | None = None,
        sort_by: Literal["created", "duration"] | None = None,
        sort_order: Literal["asc", "desc"] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        after: str | None = None,
        output_type: str | None = None,
    ) -> JobList:
        """One page of jobs, filtered and sorted.

        ``status`` is one status or several (``pending``, ``in_progress``, ``completed``,
        ``failed``, ``cancelled``; see :class:`~comfy_async.models.JobStatus`). ``sort_by`` is
        ``"created"`` or ``"duration"`` (sent as each flavour spells it), newest first unless
        ``sort_order="asc"``. Locally pages go by ``offset``; Comfy Cloud pages by cursor: pass
        the previous page's ``pagination.next_cursor`` as ``after``; ``output_type`` is a Cloud
        filter. Cancelling abandons the read.
        """
        await self._require("jobs.list")
        fields = self._http.routes.jobs_sort_fields
        if sort_by is not None and sort_by not in fields:
            raise ConfigurationError(f"sort_by must be one of {sorted(fields)}, got {sort_by!r}")
        statuses = [status] if isinstance(status, str) else status
        query = {
            "status": None if statuses is None else ",".join(statuses),
            "workflow_id": workflow_id,
            "sort_by": None if sort_by is None else fields[sort_by],
            "sort_order": sort_order,
            "limit": limit,
            "offset": offset,
            "after": after,
            "output_type": output_type,
        }
        return await self._http.fetch(self._route("jobs.list"), decode_job_list, query=query)
