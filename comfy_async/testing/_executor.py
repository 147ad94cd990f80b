"""Execution simulation: the worker(s) that take prompts off the queue and "run" their graphs.

For each prompt the executor reproduces the real event sequence (protocol doc §3.2, §3.3, §5):
``execution_start``, ``execution_cached``, then per node ``progress_state(running)`` →
``executing`` → progress steps (``progress_state`` / type-4 preview / ``progress`` for metadata
clients, ``progress_state`` / ``progress`` / type-1 preview otherwise) → ``executed`` (nodes with
UI output) → ``progress_state(finished)``; cached output nodes replay ``executed`` without
``executing``; then ``execution_success`` / ``execution_error`` / ``execution_interrupted``, the
history write, the ``status`` broadcast and, last, the finish marker ``executing{node: null}``.

Order follows the dependency graph with the real server's preference for output nodes that are
ready (so independent branches do not run in prompt order). Outputs are cached by node signature
(class and inputs, recursively), so identical re-runs are fully or partly cached and reuse the
same files. Every duration is multiplied by ``time_scale``. Who receives what is the hub's
business; this module only names the target (the submitter, the user, or everyone).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from comfy_async.protocol.frames import (
    encode_preview_image,
    encode_preview_with_metadata,
    encode_progress_text,
)
from comfy_async.testing._gpu import Gpu
from comfy_async.testing._graph import execution_order, is_link, signatures
from comfy_async.testing._hub import Target
from comfy_async.testing._images import PREVIEW_JPEG, solid_png
from comfy_async.testing._store import HistoryEntry, QueueItem
from comfy_async.testing.behaviours import PREVIEW_METHODS
from comfy_async.testing.models import folder_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from comfy_async.testing._files import FileStore
    from comfy_async.testing._hub import Hub
    from comfy_async.testing._store import History, PromptQueue
    from comfy_async.testing.behaviours import BehaviourRegistry, NodeBehaviour

__all__ = ["Executor", "now_ms"]

#: ProgressBar throttling (§3.3): at most one update per 100 ms (scaled) unless it changed ≥0.5%.
THROTTLE_SECONDS = 0.1
CACHE_LIMIT = 10_000
#: The largest batch the fake draws (a real server's EmptyLatentImage allows 4096).
MAX_BATCH = 64
_BATCH_COLOUR_STEP = 0x3D1F7
_PNG_PREVIEW = solid_png(32, 16, 0x00138D)


def now_ms() -> int:
    """Epoch milliseconds, the unit of every ``timestamp`` and ``create_time``."""
    return int(time.time() * 1000)


class _Picture(NamedTuple):
    """What a node's output looks like: its size, its colour and how many images it holds."""

    width: int
    height: int
    colour: int
    batch: int = 1


@dataclass(slots=True)
class _Cached:
    ui: dict[str, object] | None
    image: _Picture


@dataclass(slots=True)
class _Run:
    item: QueueItem
    target: Target
    has_client: bool
    interrupted: bool = False
    nodes: dict[str, dict[str, object]] = field(default_factory=dict)
    executed: list[str] = field(default_factory=list)
    images: dict[str, _Picture] = field(default_factory=dict)
    blocked: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, object] = field(default_factory=dict)
    meta: dict[str, object] = field(default_factory=dict)


class _Stop(Exception):  # control flow, not an error
    def __init__(self, event: str, data: dict[str, object]) -> None:
        super().__init__(event)
        self.event = event
        self.data = data


class Executor:
    """Runs queued prompts: one worker locally, ``concurrency`` workers on the Cloud flavour."""

    def __init__(
        self,
        *,
        queue: PromptQueue,
        history: History,
        hub: Hub,
        files: FileStore,
        behaviours: BehaviourRegistry,
        time_scale: float,
        cloud: bool,
        concurrency: int,
        log: Callable[[str], None],
        gpu: Gpu | None = None,
        speed: float = 1.0,
        load_time: float = 0.0,
    ) -> None:
        self.gpu = gpu or Gpu(24 * 1024**3)
        self.speed = speed
        self.load_time = load_time
        self.queue = queue
        self.history = history
        self.hub = hub
        self.files = files
        self.behaviours = behaviours
        self.time_scale = time_scale
        self.cloud = cloud
        self.concurrency = concurrency if cloud else 1
        self.log = log
        self.runs: dict[int, _Run] = {}
        self.cache: dict[str, _Cached] = {}
        self.current_client: str | None = None
        self.last_node: str | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._running = asyncio.Event()  # cleared while the box is frozen (``pause``)
        self._running.set()
        #: Every prompt that ended here, in order: ``(prompt_id, "success" | "error" |
        #: "interrupted")`` (the server keeps the list across restarts).
        self.finished: list[tuple[str, str]] = []

    def start(self) -> None:
        """Start the worker tasks."""
        loop = asyncio.get_running_loop()
        self._workers = [loop.create_task(self._work()) for _ in range(self.concurrency)]

    async def close(self) -> None:
        """Stop the workers (a running prompt is abandoned, as when a server dies)."""
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def interrupt(self, prompt_id: str | None = None) -> bool:
        """Flag the running prompt(s) (only ``prompt_id`` when given); True if any was flagged."""
        hit = False
        for run in self.runs.values():
            if prompt_id is None or run.item.prompt_id == prompt_id:
                run.interrupted = hit = True
        return hit

    def pause(self) -> None:
        """Freeze: start nothing new, and hold the running prompt before its next node or step."""
        self._running.clear()

    def resume(self) -> None:
        """Thaw: go on where it stopped."""
        self._running.set()
        self.queue.poke()

    async def _work(self) -> None:
        while True:
            item = await self.queue.take(may_run=self._running.is_set)
            await self._run(item)

    def _target(self, item: QueueItem) -> tuple[Target, bool]:
        if self.cloud:
            return Target(user=item.user), True
        client = item.client_id
        return (Target(sid=client), True) if client is not None else (Target(), False)

    def _emit(self, run: _Run, type_: str, data: dict[str, object]) -> None:
        if run.has_client:
            self.hub.send(type_, data, run.target)

    async def _run(self, item: QueueItem) -> None:
        target, has_client = self._target(item)
        run = _Run(item, target, has_client)
        self.runs[item.task_id] = run
        if not self.cloud:
            self.current_client, self.last_node = item.client_id, None
        started = now_ms()
        graph = item.prompt
        start = {"prompt_id": item.prompt_id, "timestamp": started}
        messages: list[object] = [["execution_start", start]]
        self._emit(run, "execution_start", start)
        node_keys = signatures(graph)
        cached = [n for n in graph if node_keys.get(n) in self.cache]
        cached_event = {"nodes": cached, "prompt_id": item.prompt_id, "timestamp": now_ms()}
        messages.append(["execution_cached", cached_event])
        self._emit(run, "execution_cached", cached_event)
        for node_id in cached:  # what cached nodes produced still feeds the nodes that run
            run.images[node_id] = self.cache[node_keys[node_id]].image
            # A cached loader's model must still be in VRAM for the nodes that use it.
            node = graph[node_id]
            if isinstance(node, dict) and isinstance(node.get("inputs"), dict):
                await self._load_models(str(node.get("class_type")), node["inputs"])
        success = False
        try:
            for node_id in execution_order(
                graph, item.outputs, set(cached), self.behaviours.is_output_node
            ):
                signature = node_keys.get(node_id, "")
                if signature in self.cache:
                    self._replay(run, node_id, self.cache[signature])
                else:
                    await self._execute(run, node_id, signature)
            success = True
            terminal = ["execution_success", {"prompt_id": item.prompt_id, "timestamp": now_ms()}]
            self._emit(run, "execution_success", terminal[1])  # type: ignore[arg-type]
        except _Stop as stop:
            terminal = [stop.event, stop.data]
            if stop.event == "execution_interrupted":
                self.hub.send(stop.event, stop.data, run.target)  # broadcast without a client
            else:
                self._emit(run, stop.event, stop.data)
        messages.append(terminal)
        status: dict[str, object] = {
            "status_str": "success" if success else "error",
            "completed": success,
            "messages": messages,
        }
        end = terminal[1]["timestamp"]  # type: ignore[index]
        self.history.put(HistoryEntry(item, run.outputs, status, run.meta, started, end))
        if success:
            ended = "success"
        else:
            ended = "interrupted" if terminal[0] == "execution_interrupted" else "error"
        self.finished.append((item.prompt_id, ended))
        self.runs.pop(item.task_id, None)
        if not self.cloud:
            self.current_client, self.last_node = None, None
        self.queue.finish(item)  # status broadcast, after the history write (§5)
        self.log(f"Prompt executed in {(now_ms() - started) / 1000:.2f} seconds")
        if has_client:
            self.hub.send("executing", {"node": None, "prompt_id": item.prompt_id}, target)

    # ------------------------------------------------------------------ one node

    def _state(self, run: _Run, node_id: str, value: float, max_: float, state: str) -> None:
        run.nodes[node_id] = {
            "value": value,
            "max": max_,
            "state": state,
            "node_id": node_id,
            "prompt_id": run.item.prompt_id,
            "display_node_id": node_id,
            "parent_node_id": None,
            "real_node_id": node_id,
        }
        data = {"prompt_id": run.item.prompt_id, "nodes": dict(run.nodes)}
        self.hub.send("progress_state", data, run.target)

    def _ui(self, run: _Run, node_id: str, ui: dict[str, object]) -> None:
        self._emit(
            run,
            "executed",
            {
                "node": node_id,
                "display_node": node_id,
                "output": ui,
                "prompt_id": run.item.prompt_id,
            },
        )
        run.outputs[node_id] = ui
        run.meta[node_id] = {
            "node_id": node_id,
            "display_node": node_id,
            "parent_node": None,
            "real_node_id": node_id,
        }

    def _replay(self, run: _Run, node_id: str, cached: _Cached) -> None:
        run.images[node_id] = cached.image
        if cached.ui is not None:
            self._ui(run, node_id, cached.ui)
            self._state(run, node_id, 1, 1, "finished")

    async def _execute(self, run: _Run, node_id: str, signature: str) -> None:
        await self._running.wait()
        item = run.item
        node = item.prompt[node_id]
        assert isinstance(node, dict)
        class_type = str(node.get("class_type"))
        inputs: dict[str, object] = node.get("inputs") or {}
        self._state(run, node_id, 0.0, 1.0, "running")
        self._emit(
            run,
            "executing",
            {"node": node_id, "display_node": node_id, "prompt_id": item.prompt_id},
        )
        if not self.cloud:
            self.last_node = node_id
        if run.interrupted:
            raise self._interrupted(run, node_id, class_type)
        literals = {k: v for k, v in inputs.items() if not is_link(v)}
        links = [v for v in inputs.values() if is_link(v)]
        block = next((run.blocked[v[0]] for v in links if v[0] in run.blocked), None)
        if block is not None:  # an ExecutionBlocker upstream (S16)
            if block and self.behaviours.is_output_node(class_type):
                self._emit(run, "execution_error", self._blocked(run, node_id, class_type, block))
            run.blocked[node_id] = block
            self._state(run, node_id, 1.0, 1.0, "finished")
            run.executed.append(node_id)
            return
        behaviour = self.behaviours.resolve(class_type, literals)
        image = self._image_of(run, class_type, inputs, literals)
        if behaviour.error is not None:
            raise self._failed(run, node_id, class_type, inputs, behaviour)
        await self._load_models(class_type, literals)
        await self._progress(run, node_id, class_type, behaviour)
        if behaviour.text:
            target = Target(user=item.user) if self.cloud else Target()
            self.hub.send_binary(encode_progress_text(node_id, behaviour.text), target)
        run.executed.append(node_id)
        if behaviour.block is not None:
            run.blocked[node_id] = behaviour.block
            self._state(run, node_id, 1.0, 1.0, "finished")
            return
        run.images[node_id] = image
        ui = self._make_ui(behaviour, literals, image)
        if ui is not None:
            self._ui(run, node_id, ui)
        if behaviour.steps:
            self._state(run, node_id, behaviour.steps, behaviour.steps, "finished")
        else:
            self._state(run, node_id, 1.0, 1.0, "finished")
        if len(self.cache) >= CACHE_LIMIT:
            del self.cache[next(iter(self.cache))]
        self.cache[signature] = _Cached(ui, image)

    async def _progress(
        self, run: _Run, node_id: str, class_type: str, behaviour: NodeBehaviour
    ) -> None:
        duration = max(0.0, behaviour.duration * self.time_scale / self.speed)
        if not behaviour.steps:
            await asyncio.sleep(duration)
            return
        method = run.item.extra_data.get("preview_method")
        preview = behaviour.preview
        if behaviour.sampler_preview and method not in PREVIEW_METHODS:
            preview = None
        throttle = THROTTLE_SECONDS * self.time_scale
        last_sent, last_value = -1.0, -1
        loop = asyncio.get_running_loop()
        for step in range(1, behaviour.steps + 1):
            await asyncio.sleep(duration / behaviour.steps)
            await self._running.wait()
            if run.interrupted:
                raise self._interrupted(run, node_id, class_type)
            now = loop.time()
            changed = (step - last_value) / behaviour.steps >= 0.005
            with_preview = preview if step % behaviour.preview_every == 0 else None
            if not (
                step in {1, behaviour.steps}
                or with_preview is not None
                or (now - last_sent >= throttle and changed)
            ):
                continue
            last_sent, last_value = now, step
            self._state(run, node_id, step, behaviour.steps, "running")
            self._step(
                run, node_id, step, behaviour.steps, with_preview, size=behaviour.preview_size
            )

    def _step(
        self,
        run: _Run,
        node_id: str,
        value: int,
        max_: int,
        preview: str | None,
        *,
        size: int | None = None,
    ) -> None:
        """One progress update in the recorded order (§3.3)."""
        progress = {"value": value, "max": max_, "prompt_id": run.item.prompt_id, "node": node_id}
        image = (PREVIEW_JPEG if preview == "image/jpeg" else _PNG_PREVIEW) if preview else b""
        if image and size is not None and size > len(image):
            image += bytes(size - len(image))
        if preview and run.has_client:
            meta = {
                "node_id": node_id,
                "prompt_id": run.item.prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
                "image_type": preview,
            }
            frame = encode_preview_with_metadata(image, meta)
            self.hub.send_binary(frame, _with_metadata(run.target, metadata=True))
        self.hub.send("progress", progress, run.target)
        if preview:
            legacy = _with_metadata(run.target, metadata=False) if run.has_client else run.target
            self.hub.send_binary(encode_preview_image(image, mime=preview), legacy)

    async def _load_models(self, class_type: str, literals: dict[str, object]) -> None:
        """A loader's models come into VRAM; each one not there costs ``load_time``."""
        for name, value in literals.items():
            folder = folder_of(class_type, name)
            if folder is not None and isinstance(value, str) and self.gpu.use(folder, value):
                await asyncio.sleep(max(0.0, self.load_time * self.time_scale / self.speed))

    def _image_of(
        self, run: _Run, class_type: str, inputs: dict[str, object], literals: dict[str, object]
    ) -> _Picture:
        """The image a node produces: size from its picture input, colour from what it depends on.

        Outputs are a deterministic function of the inputs, as a real server's are: a simulated
        node (one without a registered behaviour) that is not an output node draws a colour from
        its literal inputs (seed, prompt text, sizes…) and the colours upstream, so a new seed or
        prompt gives a new image and an identical prompt the same one. Its size comes from the
        input that carries the picture (``samples``, ``latent_image``, ``image``…), else from its
        own ``width``/``height``. Nodes with a behaviour, output nodes and ``color`` inputs pass
        their colour through unchanged. A ``batch_size`` input sets how many images there are;
        otherwise the count follows the picture input.
        """
        upstream = {
            name: run.images[value[0]]
            for name, value in inputs.items()
            if is_link(value) and value[0] in run.images
        }
        picture = next((upstream[name] for name in _PICTURE_INPUTS if name in upstream), None)
        if picture is None and upstream:
            picture = next(iter(upstream.values()))
        if "width" in literals and "height" in literals:
            width, height = _int(literals.get("width"), 64), _int(literals.get("height"), 64)
        elif picture is not None:
            width, height = picture.width, picture.height
        else:
            width, height = 64, 64
        if "batch_size" in literals:
            batch = max(1, min(_int(literals.get("batch_size"), 1), MAX_BATCH))
        else:
            batch = picture.batch if picture is not None else 1
        if "color" in literals:
            colour = _int(literals.get("color"), 0)
        elif picture is not None and (
            self.behaviours.is_registered(class_type) or self.behaviours.is_output_node(class_type)
        ):
            colour = picture.colour
        elif self.behaviours.is_registered(class_type) and picture is None:
            colour = 0
        else:
            fingerprint = repr(
                (
                    class_type,
                    sorted(literals.items()),
                    sorted((k, v.colour) for k, v in upstream.items()),
                )
            )
            colour = zlib.crc32(fingerprint.encode()) & 0xFFFFFF
        return _Picture(width, height, colour, batch)

    def _make_ui(
        self, behaviour: NodeBehaviour, literals: dict[str, object], image: _Picture
    ) -> dict[str, object] | None:
        if behaviour.output == "text":
            value = behaviour.text_value
            if value is None:
                value = str(literals.get("value", literals.get("text", "")))
            return {"text": [value]}
        if behaviour.output in {"save", "preview"}:
            refs = []
            for index in range(image.batch):  # a batch: one file each, each its own colour
                colour = (image.colour + index * _BATCH_COLOUR_STEP) & 0xFFFFFF
                png = solid_png(image.width, image.height, colour)
                if behaviour.output == "save":
                    prefix = literals.get("filename_prefix")
                    ref = self.files.save_image(
                        "output", prefix if isinstance(prefix, str) else "ComfyUI", png
                    )
                else:
                    ref = self.files.save_image("temp", self.files.temp_prefix, png)
                refs.append(ref)
            return {"images": refs}
        return None

    # ------------------------------------------------------------------ terminal events

    def _interrupted(self, run: _Run, node_id: str, class_type: str) -> _Stop:
        data: dict[str, object] = {
            "prompt_id": run.item.prompt_id,
            "node_id": node_id,
            "node_type": class_type,
            "executed": list(run.executed),
            "timestamp": now_ms(),
        }
        return _Stop("execution_interrupted", data)

    def _failed(
        self,
        run: _Run,
        node_id: str,
        class_type: str,
        inputs: dict[str, object],
        behaviour: NodeBehaviour,
    ) -> _Stop:
        data: dict[str, object] = {
            "prompt_id": run.item.prompt_id,
            "node_id": node_id,
            "node_type": class_type,
            "executed": list(run.executed),
            "exception_message": f"{behaviour.error}\n",
            "exception_type": behaviour.exception_type,
            "traceback": [
                (
                    '  File "comfy_async/testing/fake_execution.py", line 1, in execute\n'
                    "    <simulated>\n"
                ),
                (
                    f'  File "comfy_async/testing/fake_nodes.py", line 1, in {class_type}\n'
                    f"    raise {behaviour.exception_type}(message)\n"
                ),
            ],
            "current_inputs": {
                name: [repr(value) if is_link(value) else str(value)]
                for name, value in inputs.items()
            },
            "current_outputs": [*run.executed, node_id],
            "timestamp": now_ms(),
        }
        return _Stop("execution_error", data)

    def _blocked(self, run: _Run, node_id: str, class_type: str, message: str) -> dict[str, object]:
        # Not terminal, no timestamp, list-typed empty fields, not kept in history (S16).
        return {
            "prompt_id": run.item.prompt_id,
            "node_id": node_id,
            "node_type": class_type,
            "executed": list(run.executed),
            "exception_message": f"Execution Blocked: {message}",
            "exception_type": "ExecutionBlocked",
            "traceback": [],
            "current_inputs": [],
            "current_outputs": [],
        }


#: The inputs that carry a node's picture, in order of preference (its size comes from there).
_PICTURE_INPUTS = ("samples", "latent_image", "latent", "pixels", "image", "images")


def _with_metadata(target: Target, *, metadata: bool) -> Target:
    return Target(sid=target.sid, user=target.user, metadata=metadata)


def _int(value: object, default: int) -> int:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return default
