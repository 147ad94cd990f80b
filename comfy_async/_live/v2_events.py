"""How a Comfy API v2 job's state becomes the library's events, whichever way it arrived.

:class:`V2Translator` takes ``status``/``progress``/``output``/``preview`` SSE events and polled
job objects alike and feeds the :class:`~comfy_async.job.Job` each event once: ``ExecutionStart``
when it first runs, ``Executing`` when the node changes, ``Progress`` (node, step/steps) when the
step does, ``Executed`` per node as outputs are committed (each file keeping the link to its
bytes), ``PreviewImage`` per ``preview`` event (the same event the WebSocket backend yields for a
preview frame; the newest preview a stream repeats on connect is not fed twice), and exactly one
terminal event. :func:`snapshot_of` turns a job object
into the :class:`~comfy_async.job.JobSnapshot` the job reconciles against.
"""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING, Any, Final

from comfy_async.events import (
    Executed,
    Executing,
    ExecutionFailed,
    ExecutionInterrupted,
    ExecutionStart,
    ExecutionSuccess,
    PreviewImage,
    Progress,
)
from comfy_async.job import Job, JobSnapshot
from comfy_async.models.api_v2 import (
    V2Job,
    V2JobError,
    V2Output,
    V2PreviewEvent,
    V2Progress,
)

if TYPE_CHECKING:
    from collections.abc import Sequence


__all__ = ["V2Translator", "snapshot_of"]

_KINDS: Final = {"image": "images", "video": "video", "audio": "audio", "text": "text"}
_PHASES: Final = {
    "queued": "pending",
    "running": "running",
    "canceling": "running",
    "succeeded": "success",
    "failed": "error",
    "canceled": "cancelled",
    "expired": "lost",
}


class V2Translator:
    """Turns one job's v2 state (polled or streamed) into the library's events, once each."""

    __slots__ = (
        "_job",
        "_outputs",
        "_preview",
        "_progress",
        "_repeat",
        "_seen",
        "_started",
        "_terminal",
    )

    def __init__(self, job: Job) -> None:
        self._job = job
        self._started = False
        self._terminal = False
        self._progress: V2Progress | None = None
        self._preview: V2PreviewEvent | None = None
        self._repeat = False
        self._seen: set[str] = set()
        self._outputs: dict[str, dict[str, list[dict[str, Any]]]] = {}

    @property
    def ended(self) -> bool:
        """Whether the terminal event was fed (or the translator was closed)."""
        return self._terminal

    def snapshot(self, v2: V2Job) -> None:
        """Feed what a job object says that was not fed yet."""
        self.status(v2.status, (), None, partial=True)
        if v2.progress is not None:
            self.progress(v2.progress)
        for output in v2.outputs:
            self.output(output)
        self.status(v2.status, v2.outputs, v2.error)

    def status(
        self,
        status: str,
        outputs: Sequence[V2Output] | None,
        error: V2JobError | None,
        *,
        partial: bool = False,
    ) -> None:
        """A status (from a ``status`` event or a job object)."""
        if self._terminal:
            return
        prompt_id = self._job.prompt_id
        if status in ("running", "canceling", "succeeded", "failed"):
            self._start()
        if partial:
            return
        for output in outputs or ():
            self.output(output)
        now = time.time() * 1000
        if status == "succeeded":
            self._end(ExecutionSuccess(prompt_id=prompt_id, timestamp=now))
        elif status == "failed":
            error = error or V2JobError(code="unknown", message="the job failed")
            self._end(
                ExecutionFailed(
                    prompt_id=prompt_id,
                    node_id=error.node_id,
                    node_type=error.class_type,
                    exception_type=error.code,
                    exception_message=error.message,
                    traceback=[error.traceback] if error.traceback else [],
                    timestamp=now,
                )
            )
        elif status == "canceled":
            node = self._progress.current_node if self._progress is not None else None
            self._end(ExecutionInterrupted(prompt_id=prompt_id, node_id=node, timestamp=now))
        elif status == "expired":
            self._terminal = True
            self._job._reconcile(JobSnapshot("lost"), source="v2 job")

    def progress(self, snapshot: V2Progress) -> None:
        """A progress snapshot: ``Executing`` on a new node, ``Progress`` on a new step."""
        if self._terminal or snapshot == self._progress:
            return
        previous, self._progress = self._progress, snapshot
        node = snapshot.current_node
        if node is None:
            return
        self._start()
        prompt_id = self._job.prompt_id
        if previous is None or previous.current_node != node:
            self._job._feed(Executing(node=node, prompt_id=prompt_id))
        elif previous.step == snapshot.step:
            return
        if snapshot.step is not None and snapshot.steps:
            self._job._feed(
                Progress(value=snapshot.step, max=snapshot.steps, prompt_id=prompt_id, node=node)
            )

    def output(self, output: V2Output) -> None:
        """A committed output: an ``Executed`` event with every file of its node so far."""
        if self._terminal or output.id in self._seen:
            return
        self._seen.add(output.id)
        self._start()
        node = output.node_id
        kind = _KINDS.get(output.type, "files")
        ui = self._outputs.setdefault(node, {})
        item = {
            "filename": output.name,
            "subfolder": "",
            "type": "output",
            "url": output.url,
            "asset_id": output.id,
            "content_type": output.content_type,
        }
        ui.setdefault(kind, []).append(item)
        copy = {key: list(items) for key, items in ui.items()}
        self._job._feed(Executed(prompt_id=self._job.prompt_id, node=node, output=copy))

    def close(self) -> None:
        """Feed nothing more: the job left this server (a pool moved it elsewhere)."""
        self._terminal = True

    def stream_opened(self) -> None:
        """A stream (re)opened: its first preview may be the snapshot of one fed already."""
        self._repeat = True

    def preview(self, event: V2PreviewEvent) -> None:
        """A live preview image (the newest one a reopened stream repeats is not fed again)."""
        repeat, self._repeat = self._repeat, False
        if self._terminal or (repeat and event == self._preview):
            return
        self._preview = event
        try:
            image = base64.b64decode(event.data_base64, validate=True)
        except ValueError:
            return  # a damaged preview is skipped, never an error
        self._job._feed(
            PreviewImage(
                image=memoryview(image),
                mime=event.content_type,
                prompt_id=self._job.prompt_id,
                node_id=event.node_id or None,
            )
        )

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self._job._feed(
                ExecutionStart(prompt_id=self._job.prompt_id, timestamp=time.time() * 1000)
            )

    def _end(self, event: ExecutionSuccess | ExecutionFailed | ExecutionInterrupted) -> None:
        self._terminal = True
        self._job._feed(event)


def snapshot_of(v2: V2Job) -> JobSnapshot:
    outputs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for output in v2.outputs:
        ui = outputs.setdefault(output.node_id, {})
        items = ui.setdefault(_KINDS.get(output.type, "files"), [])
        if all(item["asset_id"] != output.id for item in items):
            items.append(
                {
                    "filename": output.name,
                    "subfolder": "",
                    "type": "output",
                    "url": output.url,
                    "asset_id": output.id,
                    "content_type": output.content_type,
                }
            )
    error = None
    if v2.error is not None:
        error = ExecutionFailed(
            prompt_id=v2.id,
            node_id=v2.error.node_id,
            node_type=v2.error.class_type,
            exception_type=v2.error.code,
            exception_message=v2.error.message,
            traceback=[v2.error.traceback] if v2.error.traceback else [],
        )
    return JobSnapshot(_PHASES.get(v2.status, "running"), outputs=outputs, error=error)
