"""Two submissions of one prompt id (two processes racing on one batch item): keep one entry.

ComfyUI accepts a duplicate prompt id and runs it again (protocol doc §7). After an idempotent
submission, the queue is read: if the id is there twice, the client whose submission came later
(the higher queue number) deletes one entry (the server removes one per request), so the prompt
runs once. Either entry may be the one that stays, and a client that read the queue before the
other's submission landed cannot know of it: so an idempotent job is always followed over HTTP
too (at a running job's pace, one queue read per tick for all of them), as its events may go to
the other client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from comfy_async.errors import ComfyError

if TYPE_CHECKING:
    from comfy_async._live.session import LiveSession
    from comfy_async._transport.rest.queue import Queue
    from comfy_async.job import Job

__all__ = ["keep_one_entry"]


async def keep_one_entry(queue: Queue, session: LiveSession, job: Job) -> bool:
    """Leave one queue entry of ``job``'s prompt id; whether this client deleted one."""
    prompt_id = job.prompt_id
    session.follow(job)
    try:
        state = await queue.get()
    except ComfyError:
        return False  # the reconciliation follows the job anyway
    entries = [
        item for item in (*state.queue_running, *state.queue_pending) if item.prompt_id == prompt_id
    ]
    if len(entries) < 2:
        return False
    first = min(item.number for item in entries)
    if job.number is None or job.number == first:
        return False
    await queue.delete([prompt_id])
    return True
