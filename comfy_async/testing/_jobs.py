"""The jobs API of the fake server, local and Cloud naming (protocol doc §2.1, §4.5, §8).

A job is derived from the queue (``pending``, ``in_progress``) or the history (``completed``,
``failed``, or ``cancelled`` when the last message is ``execution_interrupted``). The local API
sorts by ``created_at``/``execution_duration`` with offset pagination and rejects the Cloud
names with 400; the Cloud API sorts by ``create_time``/``execution_time`` with cursor pagination
(``after`` → ``next_cursor``), adds ``update_time``/``user_id``/``workspace_id``/
``execution_meta``, and its batch cancel answers a list (404 when an id is unknown).

Pure functions over the store; the handlers live in the server's route module.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Mapping

    from comfy_async.testing._store import History, HistoryEntry, PromptQueue, QueueItem

__all__ = ["JobQueryError", "find_job", "job_summary", "list_jobs", "valid_uuid"]

STATUSES: Final = ("pending", "in_progress", "completed", "failed", "cancelled")
_UUID: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MEDIA: Final = ("images", "video", "audio")


class JobQueryError(ValueError):
    """A bad jobs query: ``str(error)`` is the ``{"error": …}`` message of the 400."""


def valid_uuid(value: object) -> bool:
    """A canonical lowercase hyphenated UUID string (what the server accepts as an id)."""
    return isinstance(value, str) and _UUID.match(value) is not None


def _status(entry: HistoryEntry) -> str:
    status = entry.status
    if status.get("status_str") == "success":
        return "completed"
    messages = status.get("messages")
    if isinstance(messages, list) and messages and messages[-1][0] == "execution_interrupted":
        return "cancelled"
    return "failed"


def _count(outputs: Mapping[str, object]) -> tuple[int, int, dict[str, object] | None]:
    total = previewable = 0
    preview: dict[str, object] | None = None
    for node_id, ui in outputs.items():
        if not isinstance(ui, dict):
            continue
        for kind, items in ui.items():
            if not isinstance(items, list):
                continue
            files = [i for i in items if isinstance(i, dict) and "filename" in i]
            total += len(files)
            if kind in _MEDIA:
                previewable += len(files)
                if preview is None and files:
                    preview = {**files[0], "nodeId": node_id, "mediaType": kind}
    return total, previewable, preview


def job_summary(
    item: QueueItem, entry: HistoryEntry | None, status: str, *, cloud: bool
) -> dict[str, object]:
    """One entry of the jobs list."""
    job: dict[str, object] = {
        "id": item.prompt_id,
        "status": status,
        "priority": item.number,
        "create_time": item.create_time,
    }
    if entry is not None:
        job["execution_start_time"] = entry.start_time
        job["execution_end_time"] = entry.end_time
        if status == "failed":
            last = entry.status["messages"][-1]  # type: ignore[index]
            job["execution_error"] = last[1]
        total, previewable, preview = _count(entry.outputs)
    else:
        total, previewable, preview = 0, 0, None
    job["outputs_count"] = total
    job["previewable_outputs_count"] = previewable
    if preview is not None:
        job["preview_output"] = preview
    pnginfo = item.extra_data.get("extra_pnginfo")
    workflow = pnginfo.get("workflow") if isinstance(pnginfo, dict) else None
    if isinstance(workflow, dict) and workflow.get("id") is not None:
        job["workflow_id"] = workflow["id"]
    if cloud:
        job["update_time"] = (entry.end_time if entry else None) or item.create_time
    return job


def _all(queue: PromptQueue, history: History, *, cloud: bool) -> list[dict[str, object]]:
    jobs = [job_summary(i, None, "in_progress", cloud=cloud) for i in queue.running.values()]
    jobs += [job_summary(i, None, "pending", cloud=cloud) for i in queue.pending]
    jobs += [job_summary(e.item, e, _status(e), cloud=cloud) for e in history]
    return jobs


def find_job(
    queue: PromptQueue, history: History, job_id: str, *, cloud: bool
) -> dict[str, object] | None:
    """A job with full detail, or ``None`` (404)."""
    running = queue.find_running(job_id)
    if running is not None:
        return job_summary(running, None, "in_progress", cloud=cloud)
    pending = queue.find_pending(job_id)
    if pending is not None:
        return job_summary(pending, None, "pending", cloud=cloud)
    entry = history.get(job_id)
    if entry is None:
        return None
    job = job_summary(entry.item, entry, _status(entry), cloud=cloud)
    job["outputs"] = entry.outputs
    job["execution_status"] = entry.status
    job["workflow"] = {"prompt": entry.item.prompt, "extra_data": entry.item.extra_data}
    if cloud:
        job.update(user_id=entry.item.user, workspace_id=None, execution_meta={})
    return job


def _int(query: Mapping[str, str], name: str, default: int | None) -> int | None:
    if name not in query:
        return default
    try:
        return int(query[name])
    except ValueError:
        raise JobQueryError(f"{name} must be an integer") from None


def list_jobs(
    queue: PromptQueue, history: History, query: Mapping[str, str], *, cloud: bool
) -> dict[str, object]:
    """``GET /api/jobs``: filter, sort and paginate.

    Raises:
        JobQueryError: a bad status, sort field, sort order, limit or offset.

    """
    jobs = _all(queue, history, cloud=cloud)
    if "status" in query:
        wanted = [s.strip() for s in query["status"].split(",") if s.strip()]
        bad = [s for s in wanted if s not in STATUSES]
        if bad:
            raise JobQueryError(
                f"Invalid status value(s): {', '.join(bad)}. Valid values: {', '.join(STATUSES)}"
            )
        jobs = [j for j in jobs if j["status"] in wanted]
    if "workflow_id" in query:
        jobs = [j for j in jobs if j.get("workflow_id") == query["workflow_id"]]
    if cloud and "output_type" in query:
        jobs = [j for j in jobs if _has_media(j, query["output_type"])]
    created, duration = (
        ("create_time", "execution_time") if cloud else ("created_at", "execution_duration")
    )
    sort_by = query.get("sort_by", created)
    if sort_by not in {created, duration}:
        raise JobQueryError(f"sort_by must be '{created}' or '{duration}'")
    sort_order = query.get("sort_order", "desc")
    if sort_order not in {"asc", "desc"}:
        raise JobQueryError("sort_order must be 'asc' or 'desc'")

    def key(job: dict[str, object]) -> tuple[float, float]:
        priority = float(job["priority"])  # type: ignore[arg-type]
        if sort_by == created:  # ties (same millisecond) in queue order
            return float(job["create_time"]), priority  # type: ignore[arg-type]
        start, end = job.get("execution_start_time"), job.get("execution_end_time")
        duration = end - start if isinstance(start, int) and isinstance(end, int) else 0
        return float(duration), priority

    jobs.sort(key=key, reverse=sort_order == "desc")
    limit = _int(query, "limit", 100 if cloud else None)
    if limit is not None and (limit <= 0 or (cloud and limit > 1000)):
        raise JobQueryError("limit must be a positive integer")
    if cloud:
        return _cursor_page(jobs, query.get("after"), limit or 100)
    offset = max(0, _int(query, "offset", 0) or 0)
    page = jobs[offset : offset + limit if limit is not None else None]
    return {
        "jobs": page,
        "pagination": {
            "offset": offset,
            "limit": limit,
            "total": len(jobs),
            "has_more": offset + len(page) < len(jobs),
        },
    }


def _cursor_page(jobs: list[dict[str, object]], after: str | None, limit: int) -> dict[str, object]:
    start = 0
    if after:
        ids = [j["id"] for j in jobs]
        start = ids.index(after) + 1 if after in ids else len(jobs)
    page = jobs[start : start + limit]
    more = start + len(page) < len(jobs)
    return {
        "jobs": page,
        "pagination": {"limit": limit, "next_cursor": page[-1]["id"] if more and page else None},
    }


def _has_media(job: dict[str, object], kind: str) -> bool:
    preview = job.get("preview_output")
    return isinstance(preview, dict) and preview.get("mediaType") == kind


RAW_STATES: Final = {
    "pending": "queued_waiting",
    "in_progress": "executing",
    "completed": "success",
    "failed": "error",
    "cancelled": "cancelled",
}
"""Cloud's raw job states (``GET /api/job/{id}/status``) by derived status."""
