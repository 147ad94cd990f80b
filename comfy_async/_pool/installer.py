"""Equipping a pool's server with what held jobs lack: ComfyUI-Manager installs (``auto_install``).

When no server of the pool can run a group of held jobs, the installer looks for servers that
could, once they install what they lack: the server has ComfyUI-Manager 4, carries the group's
tags, and every node class and model file it lacks is listed in the user's
:class:`~comfy_async.config.AutoInstall`. Of those, the one that lacks the least, then the least
loaded, installs; the jobs stay held meanwhile (they are not failed, and nothing else is sent
for them). Promises:

* **one install per item** — a node class or model being installed anywhere is not installed
  again for other jobs; a server installs one batch at a time;
* **capability re-read** — after the Manager's tasks end, the server's ``/object_info`` is read
  again; the jobs go there once it lists what they need;
* **planned restarts** — new nodes a server loads only at its next start are loaded by
  restarting it, only if the policy allows: the server first gets no new job and its queue
  drains (the pool's jobs there end, other clients' prompts too), then it restarts without
  being probed or counted as failed, and comes back with nothing warm. No job is lost or run
  twice;
* **typed failures** — an item that failed on a server is not tried there again; when no server
  is left to try, the held jobs that need it end with
  :class:`~comfy_async.errors.AutoInstallError` (what failed where).

Everything is logged on ``comfy_async.pool`` and announced as pool events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from comfy_async._pool.breaker import Health
from comfy_async._pool.needs import lacking
from comfy_async._transport.rest.comfyui_manager import (
    ComfyUIManager,
    check_install_url,
    check_model_file_name,
    check_model_folder,
    check_registry_id,
)
from comfy_async.errors import (
    AutoInstallError,
    ComfyError,
    ConfigurationError,
    ManagerUnavailableError,
    NoCapableServerError,
)
from comfy_async.events import ServerInstalled, ServerInstallFailed, ServerInstalling

if TYPE_CHECKING:
    from collections.abc import Iterable

    from comfy_async._pool.announcer import Announcer
    from comfy_async._pool.held import Demand
    from comfy_async._pool.member import Member
    from comfy_async._pool.scheduler import Scheduler
    from comfy_async.catalogue import Catalogue
    from comfy_async.config import AutoInstall
    from comfy_async.models.comfyui_manager import ManagerTicket

__all__ = ["Installer", "Item", "checked_policy"]

logger = logging.getLogger("comfy_async.pool")


@dataclass(frozen=True, slots=True, order=True)
class Item:
    """One thing a server may install: a node class, or a model file in a folder."""

    kind: Literal["model", "node"]
    name: str
    """The node class, or the model's file name."""
    folder: str = ""
    """The model's folder (empty for a node)."""

    def __str__(self) -> str:
        return f"node {self.name}" if self.kind == "node" else f"model {self.folder}/{self.name}"


class InstallFailed(Exception):
    """An install that ended without the server listing what it was for."""


def checked_policy(policy: AutoInstall) -> AutoInstall:
    """Return ``policy`` once every source is one the Manager may be asked to fetch.

    Raises:
        UnsafeURLError: a node pack or model URL is not an ``http(s)`` URL without credentials.
        UnsafePathError: a model file name is not a bare name, or its folder could lead out of
            the models folder.
        ConfigurationError: a node source is neither a URL nor a registry id.

    """
    for source in policy.nodes.values():
        if "://" in source:
            check_install_url(source)
        else:
            _registry_source(source)
    for (folder, name), url in _models(policy):
        check_model_folder(folder)
        check_model_file_name(name)
        check_install_url(url)
    return policy


def _models(policy: AutoInstall) -> Iterable[tuple[tuple[str, str], str]]:
    for key, url in policy.models.items():
        if isinstance(key, tuple):
            yield key, url


def _registry_source(source: str) -> tuple[str, str]:
    """``id`` or ``id@version`` → ``(id, version)``."""
    node_id, at, version = source.partition("@")
    try:
        check_registry_id(node_id)
        if at:
            check_registry_id(version, "version")
    except ConfigurationError:
        raise ConfigurationError(
            f"{source!r} is neither an http(s) git URL nor a registry id[@version]"
        ) from None
    return node_id, version or "latest"


class Installer:
    """Starts the installs held jobs wait for, and fails the jobs no install can help."""

    def __init__(self, policy: AutoInstall, scheduler: Scheduler, announcer: Announcer) -> None:
        self.policy = checked_policy(policy)
        self._scheduler = scheduler
        self._announcer = announcer
        self.has_manager: dict[str, bool] = {}
        """Server name → whether ComfyUI-Manager 4 answers there (absent: not known yet)."""
        self.running: dict[Item, str] = {}
        """Items being installed → the server installing them."""
        self.failed: dict[tuple[str, Item], str] = {}
        """(server, item) → why installing it there failed (it is not tried there again)."""
        self._busy: set[str] = set()
        self._detecting: set[str] = set()

    # ------------------------------------------------------------------ deciding

    def covers(self, item: Item) -> bool:
        """Whether the policy says where ``item`` comes from."""
        if item.kind == "node":
            return item.name in self.policy.nodes
        return self.policy.model_source(item.folder, item.name) is not None

    def lacks(self, member: Member, demand: Demand) -> frozenset[Item] | None:
        """What ``member`` lacks of ``demand`` (``None``: its catalogue is unread)."""
        if member.catalogue is None:
            return None
        return _items(demand, member.catalogue)

    def refusal(self, demand: Demand, missing: dict[str, list[str]]) -> NoCapableServerError | None:
        """Why a new job with ``demand`` cannot be held for an install (``None``: it can)."""
        hopeless, _ = self._outlook(demand)
        if not hopeless:
            return None
        failures, tried = self._failures(demand)
        return AutoInstallError(missing, failures) if tried else NoCapableServerError(missing)

    def consider(self) -> None:
        """Start the installs held groups wait for; fail the groups no install can help."""
        scheduler = self._scheduler
        for demand, _held in scheduler.held.groups():
            if any(scheduler._can_run(member, demand) for member in scheduler.members):
                continue  # a server has it (perhaps busy or down): no install
            hopeless, choice = self._outlook(demand)
            if choice is not None:
                member, items = choice
                self._start(member, demand, items)
            elif hopeless:
                self._fail_waiting(demand)

    def _outlook(self, demand: Demand) -> tuple[bool, tuple[Member, frozenset[Item]] | None]:
        """Whether no server can be equipped for ``demand``, and which one to equip now."""
        scheduler = self._scheduler
        waiting = False  # a server might be equipped later (being read, installing, down)
        candidates: list[tuple[int, int, float, int, Member, frozenset[Item]]] = []
        for order, member in enumerate(scheduler.members):
            if member.v2 is not None or not demand.tags <= member.settings.tags:
                continue  # a Comfy API v2 server has no Manager
            items = self.lacks(member, demand)
            if items is None:
                waiting = True  # its catalogue is unread: it may even have everything
                continue
            if not items or not all(self.covers(item) for item in items):
                continue
            if any((member.name, item) in self.failed for item in items):
                continue
            manager = self.has_manager.get(member.name)
            if manager is False:
                continue
            if any(item in self.running for item in items):
                return False, None  # one install per item: wait for the one under way
            if manager is None:
                waiting = True
                if member.health is Health.UP:
                    self._detect(member)
                continue
            if member.name in self._busy or member.health is not Health.UP or member.paused:
                waiting = True
                continue
            load = len(member.entries) + member.external
            candidates.append((len(items), load, member.mean_duration, order, member, items))
        if candidates:
            *_, member, items = min(candidates, key=lambda candidate: candidate[:4])
            return False, (member, items)
        return not waiting, None

    def _failures(self, demand: Demand) -> tuple[dict[str, str], bool]:
        """Why each server could not be equipped for ``demand``; whether anything was tried.

        Tried: an install failed, or a server was found to have no Manager.
        """
        failures: dict[str, str] = {}
        tried = False
        for member in self._scheduler.members:
            if member.v2 is not None or not demand.tags <= member.settings.tags:
                continue  # its missing tags say enough; a v2 server has no Manager
            items = self.lacks(member, demand) or frozenset()
            reasons = [self.failed.get((member.name, item), "") for item in sorted(items)]
            reasons = [reason for reason in reasons if reason]
            if reasons:
                failures[member.name] = "; ".join(dict.fromkeys(reasons))
                tried = True
            elif items and not all(self.covers(item) for item in items):
                absent = ", ".join(str(item) for item in sorted(items) if not self.covers(item))
                failures[member.name] = f"auto_install does not say where to get {absent}"
            elif items and self.has_manager.get(member.name) is False:
                failures[member.name] = "it has no ComfyUI-Manager"
                tried = True
        return failures, tried

    def _fail_waiting(self, demand: Demand) -> None:
        """End every job waiting with ``demand``: no server can be equipped for it."""
        scheduler = self._scheduler
        missing: dict[str, list[str]] = {}
        for member in scheduler.members:
            lacks = member.lacks(demand.needs) or []
            absent = [f"tag {tag}" for tag in sorted(demand.tags - member.settings.tags)]
            if lacks or absent:
                missing[member.name] = lacks + absent
        error = AutoInstallError(missing, self._failures(demand)[0])
        waiting = [
            entry
            for entry in scheduler.entries.values()
            if entry.member is None and entry.demand == demand
        ]
        for entry in waiting:
            if not scheduler.fair.remove(entry):
                scheduler.held.remove(entry)
            entry.job._settle(error)
        logger.warning("%d held job(s) failed: %s", len(waiting), error)

    # ------------------------------------------------------------------ doing

    def _detect(self, member: Member) -> None:
        if member.name in self._detecting:
            return
        self._detecting.add(member.name)
        self._scheduler.tasks.spawn(self._probe_manager(member), name=f"manager? {member.name}")

    async def _probe_manager(self, member: Member) -> None:
        settings = self._scheduler.settings
        try:
            manager = _manager_of(member)
            if manager is None:
                found = False
            else:
                async with asyncio.timeout(settings.probe_timeout):
                    found = await manager.available()
            self.has_manager[member.name] = found
            logger.debug("server %s %s ComfyUI-Manager", member.name, "has" if found else "lacks")
        except (ComfyError, TimeoutError) as error:
            logger.debug("could not ask %s for ComfyUI-Manager: %s", member.name, error)
            await asyncio.sleep(settings.probe_every)  # asked again at a later placement
        finally:
            self._detecting.discard(member.name)
            self._scheduler.wake()

    def _start(self, member: Member, demand: Demand, items: frozenset[Item]) -> None:
        self._busy.add(member.name)
        for item in items:
            self.running[item] = member.name
        names = tuple(str(item) for item in sorted(items))
        logger.info("server %s installs %s for held jobs", member.name, ", ".join(names))
        self._announcer.announce(ServerInstalling(server=member.name, items=names))
        self._scheduler.tasks.spawn(
            self._install(member, demand, items), name=f"install {member.name}"
        )

    async def _install(self, member: Member, demand: Demand, items: frozenset[Item]) -> None:
        names = tuple(str(item) for item in sorted(items))
        started = time.monotonic()
        reason: str | None = None
        rebooted = False
        try:
            async with asyncio.timeout(self.policy.timeout):
                rebooted = await self._equip(member, demand, items)
        except ManagerUnavailableError as error:
            self.has_manager[member.name] = False
            reason = str(error)
        except TimeoutError:
            reason = f"it did not end within {self.policy.timeout:g}s"
        except InstallFailed as error:
            reason = str(error)
        except ComfyError as error:
            reason = _describe(error)
        finally:
            self._busy.discard(member.name)
            for item in items:
                self.running.pop(item, None)
            member.paused = None
            member.rebooting = False
            self._scheduler.wake()
        duration = time.monotonic() - started
        if reason is None:
            logger.info("server %s installed %s in %.1fs", member.name, ", ".join(names), duration)
            self._announcer.announce(
                ServerInstalled(
                    server=member.name, items=names, rebooted=rebooted, duration=duration
                )
            )
            return
        for item in items:
            self.failed[member.name, item] = f"installing {item} failed: {reason}"
        logger.warning("server %s could not install %s: %s", member.name, ", ".join(names), reason)
        self._announcer.announce(
            ServerInstallFailed(server=member.name, items=names, reason=reason)
        )

    async def _equip(self, member: Member, demand: Demand, items: frozenset[Item]) -> bool:
        """Install ``items`` on ``member`` and re-read it; whether it was restarted for them."""
        manager = _manager_of(member)
        if manager is None:
            raise ManagerUnavailableError("the pool does not speak ComfyUI-Manager to it")
        tickets = await self._queue(manager, items)
        logger.debug("server %s: following %d Manager task(s)", member.name, len(tickets))
        await manager.wait(*tickets)
        member.catalogue = await member.client.nodes(refresh=True)
        still = items & _items(demand, member.catalogue)
        if not still:
            return False
        models = [str(item) for item in sorted(still) if item.kind == "model"]
        if models:
            raise InstallFailed(f"the Manager installed {', '.join(models)} but it is not listed")
        if not self.policy.reboot:
            raise InstallFailed(
                "the node pack is installed, and the server loads it at its next start "
                "(AutoInstall(reboot=True) lets the pool restart it)"
            )
        await self._restart(member, manager, tickets[-1], demand, still)
        return True

    async def _queue(self, manager: ComfyUIManager, items: frozenset[Item]) -> list[ManagerTicket]:
        tickets: list[ManagerTicket] = []
        sources: set[str] = set()
        for item in sorted(items):
            if item.kind == "model":
                url = self.policy.model_source(item.folder, item.name)
                if url is None:  # covered, or it would not be installed
                    raise InstallFailed(f"auto_install does not say where {item} comes from")
                tickets.append(await manager.install_model(url, folder=item.folder, name=item.name))
                continue
            source = self.policy.nodes[item.name]
            if source in sources:
                continue  # one pack for several classes
            sources.add(source)
            if "://" in source:
                tickets.append(await manager.install_node(source))
            else:
                tickets.append(await manager.install_registry_node(*_registry_source(source)))
        return tickets

    async def _restart(
        self,
        member: Member,
        manager: ComfyUIManager,
        ticket: ManagerTicket,
        demand: Demand,
        items: frozenset[Item],
    ) -> None:
        """Drain ``member``, restart it, and wait until it lists ``items``."""
        settings = self._scheduler.settings
        member.paused = "restarting to load new nodes"
        logger.info("server %s: draining before a restart to load new nodes", member.name)
        while True:  # the pool's jobs there end; other clients' prompts too (probes count them)
            if not member.entries and not member.external:
                break
            await asyncio.sleep(settings.probe_every)
        member.rebooting = True
        logger.info("server %s: restarting", member.name)
        await manager.reboot()
        client = member.client
        while True:
            await asyncio.sleep(settings.probe_every)
            try:
                async with asyncio.timeout(settings.probe_timeout):
                    catalogue = await client.nodes(refresh=True)
                    absent = items & _items(demand, catalogue)
                    if not absent:
                        member.catalogue = catalogue
                        break
                    # The old process keeps the task's record; the new one has none.
                    if await manager.task(ticket.task_id) is not None:
                        continue
            except ManagerUnavailableError:
                raise
            except (ComfyError, TimeoutError):
                continue  # not back yet
            member.catalogue = catalogue
            names = ", ".join(str(item) for item in sorted(absent))
            raise InstallFailed(f"the server restarted but does not list {names}")
        member.forget_warm()
        logger.info("server %s is back with %s", member.name, ", ".join(map(str, sorted(items))))


def _manager_of(member: Member) -> ComfyUIManager | None:
    """The client's ``comfy.manager`` (``None``: a client that has none, such as a v2 one)."""
    manager = getattr(member.client, "manager", None)
    return manager if isinstance(manager, ComfyUIManager) else None


def _items(demand: Demand, catalogue: Catalogue) -> frozenset[Item]:
    classes, models = lacking(demand.needs, catalogue)
    return frozenset(
        [Item("node", name) for name in classes]
        + [Item("model", model.name, model.folder) for model in models]
    )


def _describe(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
