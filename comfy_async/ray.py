"""Batches over a fleet on Ray: each item runs once, by the prompt id its key gives it.

A batch is a workflow and items: each item has a ``key`` and the inputs to set (node → input →
value, and optionally a ``seed`` for every seed-like input). The prompt id of an item is
:func:`~comfy_async.batch_prompt_id` of the batch id and the key, and each item is started with
``submit_or_attach``: an item that a server already holds (queued, running or done) is followed
there instead of being sent again. So a worker that dies, a task Ray retries, or a command run
again does no work twice, and every item ends with exactly one outcome.

* :class:`ComfyWorker`: an async Ray actor class (``ray.remote(ComfyWorker)``); ``run(item)``
  runs one item, ``run_many(items)`` several at once.
* :class:`ComfyRunner`: a callable class for Ray Data,
  ``ds.map_batches(ComfyRunner, fn_constructor_kwargs={...}, concurrency=4)`` (``ray[data]``).
* :func:`run_item`: the engine-neutral step both use, for any engine (Celery, arq, Dask) or
  none: pass it a :class:`~comfy_async.ComfyPool` or a :class:`~comfy_async.ComfyClient`.

Each worker process keeps one :class:`~comfy_async.ComfyPool` per server list (one WebSocket per
server per process, not per task), on an event loop of its own, built on first use and closed
when the process exits. Nothing here imports Ray: it is the engine's business to call these.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import math
import operator
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson

from comfy_async._transport.rest.prompts import batch_prompt_id
from comfy_async.errors import (
    ConfigurationError,
    ExecutionError,
    JobInterrupted,
    JobTimeout,
    PromptValidationError,
)
from comfy_async.workflow import Workflow

if TYPE_CHECKING:
    from collections.abc import Coroutine, Iterable, Mapping, Sequence

    from comfy_async.client import ComfyClient
    from comfy_async.pool import ComfyPool, PoolServer

__all__ = [
    "BatchItem",
    "ComfyRunner",
    "ComfyWorker",
    "ItemResult",
    "ItemStatus",
    "item_folder",
    "run_item",
]

ItemStatus = Literal["success", "failed", "interrupted", "timeout", "rejected"]
"""How an item ended: it ran, its execution failed, it was interrupted or cancelled on the server,
it did not end within the timeout given, or the server refused the prompt."""

#: The record a finished item leaves in its folder under ``storage``.
RECORD_NAME = "result.json"
_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")


# --------------------------------------------------------------------------- items


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One item of a batch: its key and the inputs it sets on the workflow.

    ``inputs`` maps a node (id, unique title or unique class type) to the inputs to set on it
    (``None`` values are left out: a dataset's merged columns give them where a row has no such
    input); ``seed``, if given, goes to every seed-like input. As one JSON line::

        {"key": "cat-1", "inputs": {"6": {"text": "a cat"}}, "seed": 1}

    """

    key: str
    inputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    seed: int | None = None

    @classmethod
    def from_mapping(cls, data: object) -> BatchItem:
        """Read an item from a mapping (a JSON object, a dataset row).

        Raises:
            ConfigurationError: no key, inputs that are not node → {input: value}, a seed that
                is not an integer, or fields it does not know.

        """
        if isinstance(data, BatchItem):
            return data
        if not hasattr(data, "items") or not hasattr(data, "get"):
            raise ConfigurationError(f"a batch item is an object with a key, got {data!r}")
        row: Mapping[str, Any] = data  # type: ignore[assignment]
        unknown = sorted(str(name) for name in row if name not in {"key", "inputs", "seed"})
        if unknown:
            raise ConfigurationError(
                f"a batch item has only key, inputs and seed; unknown: {', '.join(unknown)}"
            )
        key = row.get("key")
        if isinstance(key, int) and not isinstance(key, bool):
            key = str(key)
        if not isinstance(key, str) or not key:
            raise ConfigurationError(f"a batch item needs a non-empty string key, got {key!r}")
        inputs = row.get("inputs")
        inputs = {} if inputs is None else inputs
        if not hasattr(inputs, "items"):
            raise ConfigurationError(f"item {key!r}: inputs must map nodes to inputs")
        checked: dict[str, dict[str, Any]] = {}
        for node, values in inputs.items():
            if values is None:  # a dataset's merged columns give None where a row has nothing
                continue
            if not isinstance(node, str) or not hasattr(values, "items"):
                raise ConfigurationError(
                    f"item {key!r}: inputs of node {node!r} must be an object of input: value"
                )
            names = {name: value for name, value in values.items() if value is not None}
            if not all(isinstance(name, str) and name for name in names):
                raise ConfigurationError(f"item {key!r}: input names of {node!r} must be text")
            checked[node] = names
        return cls(key=str(key), inputs=checked, seed=_seed_of(key, row.get("seed")))

    def apply(self, workflow: Workflow) -> Workflow:
        """A copy of ``workflow`` with this item's inputs and seed set.

        Raises:
            WorkflowError: a node it names is not in the workflow (or is ambiguous), or a value
                does not fit.

        """
        graph = workflow.copy()
        for node, values in self.inputs.items():
            for name, value in values.items():
                graph.set_input(node, name, value)
        if self.seed is not None:
            if not graph.seed_inputs():
                raise ConfigurationError(f"item {self.key!r} has a seed; the workflow has none")
            graph.set_seed(self.seed)
        return graph


def _seed_of(key: str, seed: object) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool):
        raise ConfigurationError(f"item {key!r}: seed must be an integer, got {seed!r}")
    try:
        return operator.index(seed)  # type: ignore[arg-type]  # numpy integers too
    except TypeError:
        raise ConfigurationError(f"item {key!r}: seed must be an integer, got {seed!r}") from None


def item_folder(storage: str | Path, batch_id: str, key: str) -> Path:
    """The folder an item's files and record go to: ``storage/batch_id/key``.

    A key that is not a plain file name (``[A-Za-z0-9._-]``, at most 100 characters) is
    replaced by a readable stem plus a hash of the key, so distinct keys never share a folder.
    """
    batch = batch_id if _SAFE_NAME.fullmatch(batch_id) and batch_id not in {".", ".."} else None
    name = key if _SAFE_NAME.fullmatch(key) and key not in {".", ".."} else None
    return Path(storage) / (batch or _hashed(batch_id)) / (name or _hashed(key))


def _hashed(text: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:40].strip("._") or "item"
    return f"{stem}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class ItemResult:
    """The outcome of one item: small, so a dataset of them stays cheap.

    Times ``queued_at``/``started_at``/``finished_at`` are epoch seconds from the server's clock
    (``None`` when unknown); ``seconds`` is the wall time here, from start to outcome. ``files``
    are the outputs as ``type/subfolder/filename``; ``saved`` the paths written under the
    storage folder, if one was named. ``resumed`` says the outcome came from the item's record
    in the storage folder (no request was made).
    """

    key: str
    prompt_id: str
    status: ItemStatus
    server: str | None = None
    error: str | None = None
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    seconds: float = 0.0
    files: tuple[str, ...] = ()
    saved: tuple[str, ...] = ()
    resumed: bool = False

    @property
    def ok(self) -> bool:
        """Whether the item ran to success."""
        return self.status == "success"

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (lists for tuples): a dataset row, a JSON line."""
        return {
            "key": self.key,
            "prompt_id": self.prompt_id,
            "status": self.status,
            "server": self.server,
            "error": self.error,
            "queued_at": self.queued_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "seconds": self.seconds,
            "files": list(self.files),
            "saved": list(self.saved),
            "resumed": self.resumed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ItemResult:
        """The record :meth:`to_dict` made (unknown fields ignored)."""
        names = set(cls.__dataclass_fields__)
        fields = {name: value for name, value in data.items() if name in names}
        for name in ("files", "saved"):
            fields[name] = tuple(fields.get(name, ()))
        return cls(**fields)


def _recorded(folder: Path) -> ItemResult | None:
    """The success an earlier run recorded in ``folder``, if any."""
    try:
        data = orjson.loads((folder / RECORD_NAME).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("status") != "success":
        return None
    try:
        return ItemResult.from_dict(data)
    except TypeError:
        return None


def _write_record(folder: Path, result: ItemResult) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{RECORD_NAME}.partial"
    partial.write_bytes(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2))
    partial.replace(folder / RECORD_NAME)


async def run_item(
    target: ComfyPool | ComfyClient,
    workflow: Workflow,
    item: BatchItem | Mapping[str, Any],
    *,
    batch_id: str,
    storage: str | Path | None = None,
    timeout: float | None = None,
) -> ItemResult:
    """Run one item idempotently on a pool (or one client) and return its outcome.

    The prompt id is ``batch_prompt_id(batch_id, item.key)``; ``submit_or_attach`` follows the
    prompt where a server holds it and submits it only when none does. With ``storage`` the
    output files are saved to :func:`item_folder` with a ``result.json`` record, and an item
    whose record says it succeeded is not asked for again (its record is returned).

    A job that ends (succeeds, fails, is interrupted, times out, is refused) gives a result;
    anything else (servers unreachable, the pool closed) is raised, for the engine to retry.
    Cancelling the call, or the timeout, leaves the prompt running on its server: it is never
    cancelled there, so the next run of the item follows it instead of finding it interrupted.

    Raises:
        ConfigurationError: a bad item or batch id.
        WorkflowError: the item names a node or input the workflow lacks.

    """
    started = time.perf_counter()
    entry = BatchItem.from_mapping(item)
    prompt_id = batch_prompt_id(batch_id, entry.key)
    graph = entry.apply(workflow)
    folder = item_folder(storage, batch_id, entry.key) if storage is not None else None
    if folder is not None:
        recorded = _recorded(folder)
        if recorded is not None and recorded.prompt_id == prompt_id:
            return ItemResult.from_dict({**recorded.to_dict(), "resumed": True, "seconds": 0.0})
    job = await target.submit_or_attach(graph, prompt_id=prompt_id, timeout=timeout)
    job.detach()  # a caller that stops waiting leaves it running: a later run picks it up

    def ended(status: ItemStatus, error: BaseException) -> ItemResult:
        return ItemResult(
            key=entry.key,
            prompt_id=prompt_id,
            status=status,
            server=job.server,
            error=f"{type(error).__name__}: {error}",
            seconds=time.perf_counter() - started,
        )

    try:
        result = await job.result()
    except ExecutionError as error:
        return ended("failed", error)
    except JobInterrupted as error:
        return ended("interrupted", error)
    except JobTimeout as error:
        return ended("timeout", error)
    except PromptValidationError as error:
        return ended("rejected", error)
    saved: list[Path] = []
    if folder is not None:
        saved = await result.save(folder, overwrite=True)
    outcome = ItemResult(
        key=entry.key,
        prompt_id=prompt_id,
        status="success",
        server=job.server,
        queued_at=result.queued_at,
        started_at=result.started_at,
        finished_at=result.finished_at,
        seconds=time.perf_counter() - started,
        files=tuple(
            "/".join(part for part in (file.type, file.subfolder, file.filename) if part)
            for file in result.files
        ),
        saved=tuple(str(path) for path in saved),
    )
    if folder is not None:
        _write_record(folder, outcome)
    return outcome


# --------------------------------------------------------------------------- one pool per process


class _ProcessLoop:
    """An event loop on a thread of its own, holding this process's pools (one per server list).

    Ray runs actor methods on loops and threads of its own choosing, and Ray Data calls a
    callable class from a plain thread; keeping the pools on one loop of ours gives one WebSocket
    per server per process whoever calls.
    """

    _lock = threading.Lock()
    _instance: _ProcessLoop | None = None

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.pools: dict[tuple[object, ...], ComfyPool] = {}
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="comfy_async.ray", daemon=True
        )
        self._thread.start()
        atexit.register(self.close)

    @classmethod
    def get(cls) -> _ProcessLoop:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on the loop and wait for it (from any other thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def call_async(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on the loop and await it from another loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def pool(self, servers: tuple[str | PoolServer, ...], options: Mapping[str, Any]) -> Any:
        """This process's pool for ``servers`` (built and started on first use)."""
        from comfy_async.pool import ComfyPool  # noqa: PLC0415 - built on first use

        key = (servers, tuple(sorted((name, repr(value)) for name, value in options.items())))
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = ComfyPool(servers, **options)
        await pool.start()
        return pool

    def close(self) -> None:
        """Close every pool and stop the loop (at process exit)."""
        if self.loop.is_closed():
            return

        async def close_pools() -> None:
            for pool in list(self.pools.values()):
                await pool.aclose()
            self.pools.clear()

        if self.loop.is_running():
            closing = asyncio.run_coroutine_threadsafe(close_pools(), self.loop)
            with contextlib.suppress(Exception):  # a process going away closes what it can
                closing.result(timeout=10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
        if not self.loop.is_running():
            self.loop.close()
        with _ProcessLoop._lock:
            if _ProcessLoop._instance is self:
                _ProcessLoop._instance = None


class _BatchSpec:
    """What every item of a batch shares: the servers, the workflow, the batch id, options."""

    def __init__(
        self,
        servers: Iterable[str | PoolServer] | str,
        workflow: Workflow | Mapping[str, Any] | str | Path,
        *,
        batch_id: str,
        storage: str | Path | None,
        timeout: float | None,
        pool_options: Mapping[str, Any] | None,
    ) -> None:
        self.servers = (servers,) if isinstance(servers, str) else tuple(servers)
        if not self.servers:
            raise ConfigurationError("a batch needs at least one server")
        batch_prompt_id(batch_id, "check")  # an empty batch id is refused here, not per item
        if timeout is not None and timeout <= 0:
            raise ConfigurationError(f"timeout must be positive, got {timeout!r}")
        if isinstance(workflow, Workflow):
            self.workflow = workflow
        elif isinstance(workflow, (str, Path)):
            self.workflow = Workflow.from_file(workflow)
        else:
            self.workflow = Workflow.from_dict(workflow)
        self.batch_id = batch_id
        self.storage = storage
        self.timeout = timeout
        self.pool_options = dict(pool_options or {})

    async def run(self, items: Sequence[BatchItem | Mapping[str, Any]]) -> list[ItemResult]:
        """Run ``items`` at once on this process's pool (on its loop)."""
        entries = [BatchItem.from_mapping(item) for item in items]  # all checked before any runs
        for entry in entries:
            entry.apply(self.workflow)
        pool = await _ProcessLoop.get().pool(self.servers, self.pool_options)
        return list(
            await asyncio.gather(
                *(
                    run_item(
                        pool,
                        self.workflow,
                        entry,
                        batch_id=self.batch_id,
                        storage=self.storage,
                        timeout=self.timeout,
                    )
                    for entry in entries
                )
            )
        )


class _OneBatch:
    """What a worker of one batch holds: the servers, the workflow, the batch id, where to save."""

    def __init__(
        self,
        servers: Iterable[str | PoolServer] | str,
        workflow: Workflow | Mapping[str, Any] | str | Path,
        *,
        batch_id: str,
        storage: str | Path | None = None,
        timeout: float | None = None,
        pool_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._spec = _BatchSpec(
            servers,
            workflow,
            batch_id=batch_id,
            storage=storage,
            timeout=timeout,
            pool_options=pool_options,
        )


class ComfyWorker(_OneBatch):
    """An async actor that runs batch items: ``ray.remote(ComfyWorker).remote(servers, wf, ...)``.

    Every item is idempotent by its prompt id, so the actor can be restarted and its calls
    retried freely (``max_restarts=-1, max_task_retries=-1``).

    Args:
        servers: the servers' base URLs (or :class:`~comfy_async.PoolServer` entries).
        workflow: an API-format workflow: a :class:`~comfy_async.Workflow`, a dict, or a path.
        batch_id: names the batch; with an item's key it gives the item's prompt id. Run the
            same batch again under the same id and finished items are not run again.
        storage: a folder (shared storage on a cluster) for each item's outputs and record;
            without one the results only name the files on the servers.
        timeout: seconds an item may take before it ends as ``timeout``.
        pool_options: keyword arguments of :class:`~comfy_async.ComfyPool` (``retries``,
            ``api_key``, ``options``…).

    Raises:
        ConfigurationError: no server, an empty batch id, a bad timeout.
        WorkflowError: the workflow cannot be read.
    """

    async def run(self, item: BatchItem | Mapping[str, Any]) -> dict[str, Any]:
        """Run one item; its :class:`ItemResult` as a dict."""
        results = await self.run_many([item])
        return results[0]

    async def run_many(
        self, items: Sequence[BatchItem | Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """Run several items at once (the pool places them as servers have room)."""
        results = await _ProcessLoop.get().call_async(self._spec.run(items))
        return [result.to_dict() for result in results]


class ComfyRunner(_OneBatch):
    """A Ray Data callable class: ``ds.map_batches(ComfyRunner, fn_constructor_kwargs=...)``.

    Each row is an item (``key``, ``inputs``, optional ``seed``); each batch is run at once on
    the process's pool and answered with one row per item, in order: the :class:`ItemResult`
    fields. A pandas batch (``batch_format="pandas"``) gives a DataFrame back, a batch of
    columns (``"default"``/``"numpy"``) a dict of lists. Back-pressure is Ray Data's:
    ``concurrency`` actors × ``batch_size`` items in flight at most. Its arguments are
    :class:`ComfyWorker`'s.
    """

    def __call__(self, batch: Any) -> Any:
        """Run the batch's rows; one result row per item, in the batch's format."""
        rows = _rows_of(batch)
        results = _ProcessLoop.get().call(self._spec.run(rows))
        records = [result.to_dict() for result in results]
        if hasattr(batch, "to_dict") and hasattr(batch, "columns"):  # a pandas DataFrame
            return type(batch)(records, columns=list(ItemResult.__dataclass_fields__))
        return {
            name: [record[name] for record in records] for name in ItemResult.__dataclass_fields__
        }


def _rows_of(batch: Any) -> list[dict[str, Any]]:
    """The rows of a pandas DataFrame or of a mapping of columns."""
    if hasattr(batch, "to_dict") and hasattr(batch, "columns"):
        records: list[dict[str, Any]] = batch.to_dict(orient="records")
        return [
            {name: value for name, value in row.items() if not _missing(value)} for row in records
        ]
    if not hasattr(batch, "items"):
        raise ConfigurationError(f"a batch is a DataFrame or a mapping of columns, got {batch!r}")
    columns = {str(name): list(values) for name, values in batch.items()}
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ConfigurationError("the batch's columns differ in length")
    count = lengths.pop() if lengths else 0
    return [
        {name: values[index] for name, values in columns.items() if not _missing(values[index])}
        for index in range(count)
    ]


def _missing(value: object) -> bool:
    """A cell a column-oriented batch fills where a row has no value (None or NaN)."""
    return value is None or (isinstance(value, float) and math.isnan(value))
