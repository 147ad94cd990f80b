"""``comfy.manager``: ComfyUI-Manager 4 on a server, its installs, install queue and restart.

Install node packs and models, follow the install queue to the end, list what is installed,
restart the server.

The Manager is a separate package (``comfyui-manager``) a server loads with ``--enable-manager``;
its routes live under ``/v2/manager`` and ``/v2/customnode`` (also under ``/api``). Its presence
is probed once per session on ``GET /v2/manager/version``: ComfyUI advertises
``extension.manager.supports_v4`` in ``/features`` whether the Manager is loaded or not, so the
flags alone prove nothing. An absent Manager raises
:class:`~comfy_async.errors.ManagerUnavailableError` (naming a legacy 3.x Manager if one
answers on ``/manager/version`` instead).

Installs are queued tasks: a task is posted (``queue/task`` or ``queue/install_model``), then
the worker is started (``queue/start``; the Manager does not start it by itself). :meth:`follow`
polls the queue counts and the task's history entry and yields :class:`ManagerProgress` records
until every task has finished; a task that leaves the queue without a history entry (queue
reset, server restart) ends as lost. Inputs are checked before any request: only ``http(s)``
URLs with a host and no credentials, model file names as output names are checked (a bare
name, no folders), model folders without ``..``.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from typing import TYPE_CHECKING, Final, Literal, TypeAlias
from urllib.parse import urlsplit

from comfy_async._transport.rest.disk import safe_filename, safe_subfolder
from comfy_async._transport.rest.namespace import Namespace, decode_dict
from comfy_async.errors import (
    ConfigurationError,
    ConnectionLostError,
    ManagerTaskError,
    ManagerUnavailableError,
    UnsafePathError,
    UnsafeURLError,
    UnsupportedOperationError,
)
from comfy_async.models.comfyui_manager import (
    InstalledNodePack,
    ManagerInfo,
    ManagerProgress,
    ManagerQueueStatus,
    ManagerTaskRecord,
    ManagerTicket,
    decode_installed_packs,
    decode_manager_queue_status,
    decode_manager_task,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from comfy_async._transport.http import HttpClient

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "ComfyUIManager",
    "check_install_url",
    "check_model_file_name",
    "check_model_folder",
    "check_registry_id",
]

TaskState: TypeAlias = Literal["queued", "running", "done"]

DEFAULT_POLL_INTERVAL: Final = 0.5
"""Seconds between two looks at the Manager's queue while following tasks."""

# The Manager's defaults: the default channel's node list, read from its local cache.
_CHANNEL: Final = "default"
_MODE: Final = "cache"
# "V4.2.2", or "Vunknown" when the package metadata is missing: one short word, no markup.
_VERSION: Final = re.compile(r"^[\w.+-]{1,40}$")
_REGISTRY_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_LOST: Final = (
    (
        "it left the Manager's queue without a history entry (was the queue reset or the "
        "server restarted?)"
    ),
)


def check_install_url(url: str) -> str:
    """Return ``url`` if the Manager may be asked to fetch it, else raise :class:`UnsafeURLError`.

    Only absolute ``http://`` or ``https://`` URLs with a host are accepted: no ``file:``, ``ssh:``
    or ``git:`` schemes, no credentials in the URL (the Manager logs it), no whitespace or control
    characters.
    """
    if not url:
        raise UnsafeURLError(str(url), "it is empty")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise UnsafeURLError(url, "it contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as error:
        raise UnsafeURLError(url, f"it is not a valid URL ({error})") from None
    if parts.scheme.lower() not in {"http", "https"}:
        raise UnsafeURLError(url, "only http:// and https:// URLs are accepted")
    if not host:
        raise UnsafeURLError(url, "it has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURLError(url, "it carries credentials")
    return url


def check_registry_id(value: str, label: str = "node pack id") -> str:
    """Return ``value`` if it is a registry name (a pack id or a version), else raise.

    Raises:
        ConfigurationError: ``value`` is empty or has characters a registry name cannot have.

    """
    if not _REGISTRY_ID.match(value):
        raise ConfigurationError(f"{value!r} is not a registry {label}")
    return value


def _repository_name(url: str) -> str:
    """The pack key the Manager derives from a git URL: its last path segment."""
    name = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    name = name.removesuffix(".git")
    if not name or name in {".", ".."}:
        raise UnsafeURLError(url, "it names no repository")
    return name


def check_model_file_name(name: str) -> str:
    """Return ``name`` if it is a bare file name, else raise :class:`UnsafePathError`.

    The same check as for output names (no NUL, no absolute path or drive letter, not ``.`` or
    ``..``, at most 255 bytes), and no folder part at all, nor ``:`` (which the Manager refuses).
    """
    base = safe_filename(name)
    if base != name or ":" in name:
        raise UnsafePathError(name, "a model file name has no folder part (and no ':')")
    return base


def check_model_folder(folder: str) -> str:
    """Return ``folder`` (``/``-separated) if it is a models sub-folder, else raise.

    Refused with :class:`UnsafePathError`: empty, absolute, ``..`` anywhere, or a node pack's
    folder (``custom_nodes/…``, where the Manager writes into an installed pack).
    """
    parts = safe_subfolder(folder)
    if not parts:
        raise UnsafePathError(folder, "it names no folder")
    if parts[0] == "custom_nodes" or ":" in folder:
        raise UnsafePathError(folder, "models go into a model folder, not a node pack's folder")
    return "/".join(parts)


class ComfyUIManager(Namespace):
    """ComfyUI-Manager 4 on the server: ``comfy.manager``.

    ::

        ticket = await comfy.manager.install_node("https://github.com/owner/some-pack")
        async for step in comfy.manager.follow(ticket):
            print(step.state, step.done, "/", step.total)
        await comfy.manager.reboot()  # new node packs load at the next start

    Every method first checks (once per session) that the Manager is there, and raises
    :class:`~comfy_async.errors.ManagerUnavailableError` when it is not. Reads can be cancelled
    harmlessly; a cancelled install may or may not be queued (see :meth:`status`).
    """

    __slots__ = ("_client_id", "_info", "poll_interval")

    def __init__(
        self, http: HttpClient, client_id: str, *, poll_interval: float = DEFAULT_POLL_INTERVAL
    ) -> None:
        super().__init__(http)
        self._client_id = client_id
        self._info: ManagerInfo | None = None
        self.poll_interval = poll_interval
        """Seconds between two looks at the queue in :meth:`follow` (settable)."""

    # ------------------------------------------------------------------ detection

    async def info(self) -> ManagerInfo:
        """The Manager's version and feature flags (probed once, then remembered).

        Raises:
            ManagerUnavailableError: no Manager 4 answers (none at all, a legacy 3.x one, or a
                Comfy Cloud session).

        """
        if self._info is not None:
            return self._info
        try:
            route = self._route("manager.version")
        except UnsupportedOperationError:
            raise ManagerUnavailableError(
                "Comfy Cloud does not serve it", flavour=self._http.flavour
            ) from None
        response = await self._http.request(route, allow=(404, 405))
        if response.status != 200:
            legacy = await self._http.request(
                self._route("manager.legacy_version"), allow=(404, 405)
            )
            if legacy.status == 200:
                version = legacy.body.decode("utf-8", "replace").strip()[:80]
                raise ManagerUnavailableError(
                    f"the legacy ComfyUI-Manager {version} answers, which has no /v2 API "
                    "(install the comfyui-manager package and start ComfyUI with "
                    "--enable-manager)",
                    legacy_version=version,
                )
            raise ManagerUnavailableError(
                "GET /v2/manager/version is not served (install the comfyui-manager package "
                "and start ComfyUI with --enable-manager)"
            )
        version = response.body.decode("utf-8", "replace").strip()
        if not _VERSION.match(version):
            # A proxy or frontend answering every path (an HTML page) is not the Manager.
            raise ManagerUnavailableError("GET /v2/manager/version does not answer with a version")
        features = await self._http.request(self._route("features"), allow=(404,))
        flags: dict[str, object] = {}
        if features.status == 200:
            extension = self._http.decode(features, decode_dict).get("extension")
            manager = extension.get("manager") if isinstance(extension, dict) else None
            if isinstance(manager, dict):
                flags = {str(key): value for key, value in manager.items()}
        self._info = ManagerInfo(version=version, flags=flags)
        return self._info

    async def available(self) -> bool:
        """Whether the Manager 4 API answers on this server (network errors still raise)."""
        try:
            await self.info()
        except ManagerUnavailableError:
            return False
        return True

    # ------------------------------------------------------------------ installs

    async def install_node(self, git_url: str) -> ManagerTicket:
        """Queue the install of the node pack at ``git_url`` and start the Manager's worker.

        The Manager installs a git URL through its queue when its channel list knows the pack
        (its key is the URL's last path segment); otherwise the task ends with the Manager's
        "not found" message. New nodes load at the server's next start (:meth:`reboot`).

        Cancelling may leave the task queued; do not resend blindly (:meth:`status` shows it).

        Raises:
            UnsafeURLError: ``git_url`` is not an ``http(s)`` URL (nothing is sent).
            ManagerUnavailableError: the server has no Manager 4.

        """
        url = check_install_url(git_url)
        params = {
            "id": _repository_name(url),
            "version": "unknown",
            "selected_version": "unknown",
            "repository": url,
            "files": [url],
            "channel": _CHANNEL,
            "mode": _MODE,
        }
        return await self._queue("install", url, params)

    async def install_registry_node(self, node_id: str, version: str = "latest") -> ManagerTicket:
        """Queue the install of registry pack ``node_id`` and start the Manager's worker.

        ``version`` is ``latest``, ``nightly`` or a version number. Cancelling may leave the
        task queued.

        Raises:
            ConfigurationError: ``node_id`` or ``version`` is not a registry name (nothing sent).
            ManagerUnavailableError: the server has no Manager 4.

        """
        check_registry_id(node_id)
        check_registry_id(version, "version")
        params = {
            "id": node_id,
            "version": version,
            "selected_version": version,
            "channel": _CHANNEL,
            "mode": _MODE,
        }
        return await self._queue("install", f"{node_id}@{version}", params)

    async def install_model(
        self, url: str, *, folder: str, name: str, base: str = ""
    ) -> ManagerTicket:
        """Queue the download of the model at ``url`` into ``models/<folder>/<name>``.

        ``folder`` is a model folder (``checkpoints``, ``loras``…), ``name`` the file name to
        save as; ``base`` (``SD1.x``, ``SDXL``…) is informative. Cancelling may leave the task
        queued.

        Raises:
            UnsafeURLError: ``url`` is not an ``http(s)`` URL (nothing is sent).
            UnsafePathError: ``name`` is not a bare file name, or ``folder`` could lead out of
                the models folder (nothing is sent).
            ManagerUnavailableError: the server has no Manager 4.

        """
        checked_url = check_install_url(url)
        filename = check_model_file_name(name)
        save_path = check_model_folder(folder)
        await self.info()
        task_id = uuid.uuid4().hex
        body = {
            "client_id": self._client_id,
            "ui_id": task_id,
            "name": filename,
            "type": save_path,
            "base": base,
            "save_path": save_path,
            "url": checked_url,
            "filename": filename,
        }
        await self._http.request(self._route("manager.queue_install_model"), json=body)
        await self._start()
        return ManagerTicket(
            task_id=task_id, kind="install-model", target=checked_url, client_id=self._client_id
        )

    async def _queue(self, kind: str, target: str, params: Mapping[str, object]) -> ManagerTicket:
        await self.info()
        task_id = uuid.uuid4().hex
        params = {**params, "ui_id": task_id}
        body = {"ui_id": task_id, "client_id": self._client_id, "kind": kind, "params": params}
        await self._http.request(self._route("manager.queue_task"), json=body)
        await self._start()
        return ManagerTicket(task_id=task_id, kind=kind, target=target, client_id=self._client_id)

    async def _start(self) -> None:
        # 200: started; 201: it was running already. Both mean the queue is being worked on.
        await self._http.request(self._route("manager.queue_start"))

    # ------------------------------------------------------------------ the queue

    async def status(self, *, mine: bool = False) -> ManagerQueueStatus:
        """The install queue's counts: all tasks, or (``mine=True``) this session's tasks."""
        return await self._queue_status(self._client_id if mine else None)

    async def _queue_status(self, client_id: str | None) -> ManagerQueueStatus:
        await self.info()
        query = {"client_id": client_id} if client_id is not None else None
        return await self._http.fetch(
            self._route("manager.queue_status"), decode_manager_queue_status, query=query
        )

    async def task(self, task_id: str) -> ManagerTaskRecord | None:
        """The finished task ``task_id`` (its outcome), or ``None`` while it is not finished."""
        await self.info()
        return await self._http.fetch(
            self._route("manager.queue_history"), decode_manager_task, query={"ui_id": task_id}
        )

    async def follow(self, *tickets: ManagerTicket) -> AsyncIterator[ManagerProgress]:
        """Yield progress until every ticket's task has finished.

        The last record of each ticket has ``state == "done"`` and the task's ``record``.

        A record is yielded when a task's state or the queue counts of its client (the session
        that queued it) change. Failed tasks end as ``done`` with an unsuccessful record (see
        :meth:`wait` to raise instead). Cancelling stops following; the tasks go on in the
        Manager.

        Raises:
            ManagerTaskError: a task left the queue with no history entry (status ``lost``).

        """
        if not tickets:
            return
        clients = list(dict.fromkeys(ticket.client_id for ticket in tickets))
        finished: dict[str, ManagerTaskRecord] = {}
        shown: dict[str, tuple[TaskState, int, int]] = {}
        while True:
            counts = {client: await self._queue_status(client) for client in clients}
            ended: set[str] = set()
            for ticket in tickets:
                if ticket.task_id not in finished:
                    record = await self.task(ticket.task_id)
                    if record is not None:
                        finished[ticket.task_id] = record
                        ended.add(ticket.client_id)
            waiting = [ticket for ticket in tickets if ticket.task_id not in finished]
            for ticket in waiting:
                if counts[ticket.client_id].total_count == 0:
                    # Nothing of its client is pending or running, and the history (read
                    # after the counts) does not have the task: it is gone for good.
                    raise ManagerTaskError(ticket.task_id, ticket.kind, "lost", _LOST)
            for client in ended:  # counts that include what just ended
                counts[client] = await self._queue_status(client)
            for ticket in tickets:
                step = self._step(ticket, counts[ticket.client_id], finished, waiting)
                key = (step.state, step.done, step.total)
                previous = shown.get(ticket.task_id)
                if previous == key or (previous is not None and previous[0] == "done"):
                    continue
                shown[ticket.task_id] = key
                yield step
            if not waiting:
                return
            if any(not c.is_processing and c.pending > 0 for c in counts.values()):
                await self._start()  # tasks wait and no worker may run: start one (harmless)
            await self._http.pause(self.poll_interval)

    @staticmethod
    def _step(
        ticket: ManagerTicket,
        counts: ManagerQueueStatus,
        finished: Mapping[str, ManagerTaskRecord],
        waiting: list[ManagerTicket],
    ) -> ManagerProgress:
        record = finished.get(ticket.task_id)
        first_waiting = next((t for t in waiting if t.client_id == ticket.client_id), None)
        state: TaskState
        if record is not None:
            state = "done"
        elif ticket is first_waiting and counts.in_progress_count > 0:
            state = "running"  # a client's tasks run in the order they were queued
        else:
            state = "queued"
        return ManagerProgress(
            ticket=ticket,
            state=state,
            done=counts.done_count,
            total=counts.done_count + counts.total_count,
            record=record,
        )

    async def wait(self, *tickets: ManagerTicket) -> list[ManagerTaskRecord]:
        """Follow ``tickets`` to the end; return their records in order.

        When a task failed, raise for the first failed one (after all have finished).
        Cancelling stops waiting, not the tasks.

        Raises:
            ManagerTaskError: a task failed or was lost.

        """
        records: dict[str, ManagerTaskRecord] = {}
        async for step in self.follow(*tickets):
            if step.record is not None:
                records[step.ticket.task_id] = step.record
        for ticket in tickets:
            record = records[ticket.task_id]
            if not record.succeeded:
                raise ManagerTaskError(
                    ticket.task_id, ticket.kind, record.outcome or "failed", record.messages
                )
        return [records[ticket.task_id] for ticket in tickets]

    # ------------------------------------------------------------------ the server

    async def installed(self) -> list[InstalledNodePack]:
        """The node packs installed on the server, by name."""
        await self.info()
        return await self._http.fetch(self._route("manager.installed"), decode_installed_packs)

    async def reboot(self) -> None:
        """Ask the Manager to restart the server (new node packs load then).

        The server replaces its process, usually before answering: a connection that drops is
        the expected outcome and not an error. The session's WebSocket reconnects on its own;
        wait for the server (``comfy.system.stats()``) before submitting. Never retried;
        cancelling may leave the request sent.

        Raises:
            PermissionDeniedError: the Manager's security level forbids it (403).
            ManagerUnavailableError: the server has no Manager 4.

        """
        await self.info()
        # A dropped connection: the old process is gone and the restart is under way.
        with contextlib.suppress(ConnectionLostError):
            await self._http.request(self._route("manager.reboot"), retry=False)
        self._info = None  # the next call probes the restarted server
