"""A pool job's view of "the server": whichever server holds it now.

A :class:`~comfy_async.job.Job` talks to its server through a
:class:`~comfy_async.job.JobBackend`. A pool job may move, so its backend asks the scheduler
where the job is and delegates there; a held job is cancelled client-side, without any request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from comfy_async.errors import ClientClosedError
from comfy_async.job import JobSnapshot

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from comfy_async._pool.held import Entry
    from comfy_async._pool.scheduler import Scheduler
    from comfy_async.job import JobBackend
    from comfy_async.models.files import OutputFile

__all__ = ["PoolJobBackend"]

_HELD = JobSnapshot(status="pending")


class PoolJobBackend:
    """The backend of one pool job: the server it is placed on, or the pool while held."""

    __slots__ = ("entry", "scheduler")

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.entry: Entry | None = None

    def _server(self) -> JobBackend | None:
        entry = self.entry
        if entry is None or entry.member is None:
            return None
        return self.scheduler.by_name[entry.member].backend

    def position(self) -> int | None:
        """The job's place in line (see :attr:`Job.position`)."""
        entry = self.entry
        return None if entry is None else self.scheduler.position(entry)

    @property
    def finish_marker(self) -> bool:
        """Whether the job's server sends the finish marker after writing history."""
        server = self._server()
        return server.finish_marker if server is not None else True

    async def lookup(self, prompt_id: str) -> JobSnapshot | None:
        """What the job's server says of it (a held job is pending, client-side)."""
        server = self._server()
        return _HELD if server is None else await server.lookup(prompt_id)

    async def cancel(self, prompt_id: str, *, running: bool) -> bool:
        """Cancel on the job's server, or drop it from the held jobs without any request."""
        entry = self.entry
        if entry is not None and entry.member is None:
            return self.scheduler.cancel_held(entry)
        server = self._server()
        return False if server is None else await server.cancel(prompt_id, running=running)

    async def save(
        self, files: Sequence[OutputFile], folder: str | Path, *, overwrite: bool
    ) -> list[Path]:
        """Download from the server that ran the job."""
        server = self._server()
        if server is None:
            raise ClientClosedError("the job has no server to download from")
        return await server.save(files, folder, overwrite=overwrite)
