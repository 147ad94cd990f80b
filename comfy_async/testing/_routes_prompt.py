"""Handlers for prompts, queue, interrupt, history, jobs and the WebSocket (protocol doc §2.1, §3).

Each handler reproduces the real status codes and bodies: ``POST /prompt`` advances the number
counter for every JSON body (accepted or not), answers 500 ``text/plain`` to a non-JSON body,
checks ``no_prompt`` and ``invalid_prompt_id`` itself and delegates the graph to the validator
seam; ``POST /queue``/``/history``/``/interrupt``/``/free`` answer empty 200s; the jobs routes
answer ``{"error": …}`` bodies. Cloud variants (history_v2, batch cancel with a list and 404,
queue items with indices 3 and 4 swapped) branch here on ``ctx.cloud``.

Handlers only touch the :class:`~comfy_async.testing._context.ServerContext` they were built
with; the server decides under which paths they are mounted.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import orjson

from comfy_async.testing._executor import now_ms
from comfy_async.testing._jobs import RAW_STATES, JobQueryError, find_job, list_jobs, valid_uuid
from comfy_async.testing._responses import empty, json_response, text
from comfy_async.testing._specs import RouteSpec
from comfy_async.testing._store import HistoryEntry, QueueItem
from comfy_async.testing.validation import error_body

if TYPE_CHECKING:
    from aiohttp import web

    from comfy_async.testing._context import ServerContext
    from comfy_async.testing._hub import Connection
    from comfy_async.testing._specs import PromptRecord

__all__ = ["prompt_routes"]

_SENSITIVE = ("api_key_comfy_org", "auth_token_comfy_org")
_SERVER_ERROR = "500 Internal Server Error\n\nServer got itself in trouble"


async def _json_body(request: web.Request) -> object:
    """The parsed body, ``{}`` when absent, or raise ``ValueError`` when it is not JSON."""
    raw = await request.read()
    return orjson.loads(raw) if raw else {}


def prompt_routes(ctx: ServerContext, record: type[PromptRecord]) -> list[RouteSpec]:
    """The routes of this module bound to ``ctx``."""

    async def post_prompt(request: web.Request) -> web.StreamResponse:
        try:
            body = await _json_body(request)
            if not isinstance(body, dict):
                raise TypeError("not an object")  # noqa: TRY301 - the real server fails with 500
        except (ValueError, TypeError):
            ctx.prompt_posts.append(record(None, None, 500, None, None))
            return text(_SERVER_ERROR, 500)
        sent_id = body.get("prompt_id")
        number: float
        if "number" in body and not ctx.cloud:
            number = float(body["number"])
        else:
            number = ctx.queue.next_number(front=bool(body.get("front")) and not ctx.cloud)

        def reject(error: dict[str, object], node_errors: dict[str, object]) -> web.Response:
            ctx.prompt_posts.append(record(_str(sent_id), None, 400, body.get("client_id"), body))
            return json_response({"error": error, "node_errors": node_errors}, 400)

        if "prompt" not in body:
            return reject(error_body("no_prompt", "No prompt provided", "No prompt provided"), {})
        if sent_id is not None and not valid_uuid(sent_id):
            return reject(
                error_body(
                    "invalid_prompt_id",
                    "prompt_id must be a valid UUID",
                    "prompt_id must be a UUID string in canonical lowercase hyphenated form; "
                    "omit it to let the server generate one",
                ),
                {},
            )
        prompt = body["prompt"]
        targets = body.get("partial_execution_targets")
        outcome = ctx.validator.validate(
            prompt if isinstance(prompt, dict) else {},
            ctx.object_info,
            targets if isinstance(targets, list) else None,
        )
        if outcome.error is not None:
            return reject(dict(outcome.error), dict(outcome.node_errors))
        prompt_id = sent_id if isinstance(sent_id, str) else str(uuid.uuid4())
        extra = body.get("extra_data")
        extra_data = {k: v for k, v in (extra or {}).items() if k not in _SENSITIVE}
        if "client_id" in body:
            extra_data["client_id"] = body["client_id"]
        extra_data["create_time"] = now_ms()
        item = QueueItem(
            number=number,
            prompt_id=prompt_id,
            prompt=dict(outcome.prompt) if outcome.prompt is not None else prompt,
            extra_data=extra_data,
            outputs=list(outcome.outputs),
            user=ctx.user,
        )
        ctx.log("got prompt")
        ctx.queue.put(item)  # status broadcast queued before the response (§7.1)
        ctx.prompt_posts.append(record(_str(sent_id), prompt_id, 200, body.get("client_id"), body))
        if ctx.faults.take_prompt_cut():
            if request.transport is not None:
                request.transport.abort()
            return empty(200)  # never reaches the client
        delay = ctx.faults.take_prompt_delay()
        if delay:
            await asyncio.sleep(delay)
        return json_response(
            {"prompt_id": prompt_id, "number": number, "node_errors": outcome.node_errors}
        )

    async def get_prompt(_: web.Request) -> web.Response:
        return json_response(ctx.status())

    def queue_item(item: QueueItem) -> list[object]:
        if ctx.cloud:  # documented with indices 3 and 4 swapped (§8)
            return [item.number, item.prompt_id, item.prompt, item.outputs,
                    {"create_time": item.create_time}]  # fmt: skip
        return item.as_list()

    async def get_queue(_: web.Request) -> web.Response:
        return json_response(
            {
                "queue_running": [queue_item(i) for i in ctx.queue.running.values()],
                "queue_pending": [queue_item(i) for i in ctx.queue.pending],
            }
        )

    def cancelled(items: list[QueueItem]) -> None:
        """Cloud keeps cancelled pending jobs as ``cancelled`` (§8); local forgets them."""
        if not ctx.cloud:
            return
        for item in items:
            stamp = now_ms()
            data: dict[str, object] = {
                "prompt_id": item.prompt_id,
                "node_id": None,
                "node_type": None,
                "executed": [],
                "timestamp": stamp,
            }
            status: dict[str, object] = {
                "status_str": "error",
                "completed": False,
                "messages": [["execution_interrupted", data]],
            }
            ctx.history.put(HistoryEntry(item, {}, status, {}, None, stamp))

    async def post_queue(request: web.Request) -> web.Response:
        try:
            body = await _json_body(request)
        except ValueError:
            return text(_SERVER_ERROR, 500)
        if isinstance(body, dict):
            if body.get("clear"):
                cancelled(ctx.queue.clear())
            if isinstance(body.get("delete"), list):
                ctx.cancel_requests.extend(str(i) for i in body["delete"])
                cancelled(ctx.queue.delete([str(i) for i in body["delete"]]))
        return empty()

    async def post_interrupt(request: web.Request) -> web.Response:
        try:
            body = await _json_body(request)
        except ValueError:
            body = {}
        prompt_id = body.get("prompt_id") if isinstance(body, dict) else None
        if ctx.cloud:  # no body: the user's first active job
            first = min(ctx.queue.running.values(), key=lambda i: i.task_id, default=None)
            if first is not None:
                ctx.executor.interrupt(first.prompt_id)
        elif prompt_id:
            ctx.cancel_requests.append(str(prompt_id))
            ctx.executor.interrupt(str(prompt_id))  # a no-op unless it is the running one
        else:
            ctx.executor.interrupt(None)
        return empty()

    async def get_history(request: web.Request) -> web.Response:
        ctx.history_listings.append(dict(request.query))
        max_items = request.query.get("max_items")
        offset = request.query.get("offset")
        try:
            entries = ctx.history.window(
                int(max_items) if max_items is not None else None,
                int(offset) if offset is not None else None,
            )
        except ValueError:
            return text(_SERVER_ERROR, 500)  # the real server's unvalidated int()
        return json_response({e.item.prompt_id: e.as_dict() for e in entries})

    async def get_history_item(request: web.Request) -> web.Response:
        entry = ctx.history.get(request.match_info["prompt_id"])
        return json_response({entry.item.prompt_id: entry.as_dict()} if entry else {})

    async def post_history(request: web.Request) -> web.Response:
        try:
            body = await _json_body(request)
        except ValueError:
            return text(_SERVER_ERROR, 500)
        if isinstance(body, dict):
            if body.get("clear"):
                ctx.history.clear()
            if isinstance(body.get("delete"), list):
                ctx.history.delete({str(i) for i in body["delete"]})
        return empty()

    async def post_free(request: web.Request) -> web.Response:
        try:
            body = await _json_body(request)
        except ValueError:
            body = {}
        if isinstance(body, dict) and body.get("unload_models"):
            ctx.executor.gpu.unload_all()
        return empty()

    def v2(entry: HistoryEntry, *, full: bool) -> dict[str, object]:
        extra = dict(entry.item.extra_data)
        pnginfo = extra.get("extra_pnginfo")
        if not full and isinstance(pnginfo, dict):
            extra["extra_pnginfo"] = {k: v for k, v in pnginfo.items() if k != "workflow"}
        prompt: dict[str, object] = {
            "priority": entry.item.number,
            "prompt_id": entry.item.prompt_id,
            "extra_data": extra,
        }
        if full:
            prompt["prompt"] = entry.item.prompt
            prompt["outputs_to_execute"] = entry.item.outputs
        workflow = pnginfo.get("workflow") if isinstance(pnginfo, dict) else None
        return {
            "prompt_id": entry.item.prompt_id,
            "create_time": entry.item.create_time,
            "workflow_id": workflow.get("id") if isinstance(workflow, dict) else None,
            "prompt": prompt,
            "outputs": entry.outputs,
            "status": entry.status,
            "meta": entry.meta,
        }

    async def get_history_v2(request: web.Request) -> web.Response:
        entries = list(reversed(list(ctx.history)))  # newest first
        offset = int(request.query.get("offset", "0") or 0)
        limit = request.query.get("max_items")
        entries = entries[offset : offset + int(limit) if limit else None]
        return json_response({"history": [v2(e, full=False) for e in entries]})

    async def get_history_v2_item(request: web.Request) -> web.Response:
        entry = ctx.history.get(request.match_info["prompt_id"])
        return json_response({entry.item.prompt_id: v2(entry, full=True)} if entry else {})

    async def get_jobs(request: web.Request) -> web.Response:
        try:
            return json_response(list_jobs(ctx.queue, ctx.history, request.query, cloud=ctx.cloud))
        except JobQueryError as exc:
            return json_response({"error": str(exc)}, 400)

    async def get_job(request: web.Request) -> web.Response:
        job = find_job(ctx.queue, ctx.history, request.match_info["job_id"], cloud=ctx.cloud)
        return json_response(job) if job else json_response({"error": "Job not found"}, 404)

    async def get_job_status(request: web.Request) -> web.Response:
        job = find_job(ctx.queue, ctx.history, request.match_info["job_id"], cloud=True)
        if job is None:
            return json_response({"error": "Job not found"}, 404)
        return json_response({"id": job["id"], "status": RAW_STATES[str(job["status"])]})

    def cancel_one(job_id: str) -> bool:
        ctx.cancel_requests.append(job_id)
        if ctx.queue.find_running(job_id) is not None:
            return ctx.executor.interrupt(job_id)
        removed = ctx.queue.delete({job_id})
        cancelled(removed)
        return bool(removed)

    async def post_job_cancel(request: web.Request) -> web.Response:
        return json_response({"cancelled": cancel_one(request.match_info["job_id"])})

    async def post_jobs_cancel(request: web.Request) -> web.Response:
        try:
            body = await _json_body(request)
        except ValueError:
            return json_response({"error": "Invalid JSON body"}, 400)
        ids = body.get("job_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list):
            return json_response({"error": "job_ids must be a list"}, 400)
        invalid = [str(i) for i in ids if not valid_uuid(i)]
        if invalid:
            return json_response(
                {"error": "job_ids contains invalid id(s)", "invalid_ids": invalid}, 400
            )
        if ctx.cloud:
            missing = [i for i in ids if find_job(ctx.queue, ctx.history, i, cloud=True) is None]
            if missing:
                return json_response({"error": "Job not found", "missing_ids": missing}, 404)
            return json_response({"cancelled": [i for i in ids if cancel_one(i)]})
        results = [cancel_one(i) for i in ids]
        return json_response({"cancelled": any(results)})

    async def websocket(request: web.Request) -> web.StreamResponse:
        if ctx.cloud and request.query.get("token") != ctx.api_key:
            error = {"type": "unauthorized", "message": "missing or invalid token"}
            return json_response({"error": error}, 401)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            upgrade = request.headers.get("Upgrade")
            message = f'No WebSocket UPGRADE hdr: {upgrade}\n Can "Upgrade" only to "WebSocket".'
            return text(message, 400)

        def greeting(sid: str) -> list[tuple[str, object]]:
            frames: list[tuple[str, object]] = [("status", {"status": ctx.status(), "sid": sid})]
            executor = ctx.executor
            if not ctx.cloud and executor.current_client == sid and executor.last_node:
                frames.append(("executing", {"node": executor.last_node}))  # §3.1 replay
            return frames

        async def on_close(conn: Connection) -> None:
            if not ctx.cloud and conn.sid not in ctx.hub.sockets:
                ctx.hub.log_subscribers.discard(conn.sid)

        return await ctx.hub.handle(request, user=ctx.user, greeting=greeting, on_close=on_close)

    specs = [
        RouteSpec("POST", "/prompt", post_prompt),
        RouteSpec("GET", "/prompt", get_prompt),
        RouteSpec("GET", "/queue", get_queue),
        RouteSpec("POST", "/queue", post_queue),
        RouteSpec("POST", "/interrupt", post_interrupt),
        RouteSpec("POST", "/history", post_history),
        RouteSpec("POST", "/free", post_free),
        RouteSpec("GET", "/jobs", get_jobs, scope="jobs"),
        RouteSpec("GET", "/jobs/{job_id}", get_job, scope="jobs"),
        RouteSpec("POST", "/jobs/{job_id}/cancel", post_job_cancel, scope="jobs"),
        RouteSpec("POST", "/jobs/cancel", post_jobs_cancel, scope="jobs"),
        RouteSpec("GET", "/ws", websocket, scope="ws"),
    ]
    if ctx.cloud:
        specs += [
            RouteSpec("GET", "/history_v2", get_history_v2),
            RouteSpec("GET", "/history_v2/{prompt_id}", get_history_v2_item),
            RouteSpec("GET", "/job/{job_id}/status", get_job_status),
        ]
    else:
        specs += [
            RouteSpec("GET", "/history", get_history),
            RouteSpec("GET", "/history/{prompt_id}", get_history_item),
        ]
    return specs


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
