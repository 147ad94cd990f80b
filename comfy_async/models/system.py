"""Payloads of ``GET /system_stats`` and ``GET /internal/logs/raw`` (§2.3, §2.5).

``GET /features`` is not modelled here: it is the same dict as the WebSocket ``feature_flags``
reply and is returned as :class:`comfy_async.events.FeatureFlags`. Log lines reuse the
WebSocket ``logs`` event's :class:`~comfy_async.events.LogEntry` and
:class:`~comfy_async.events.LogSize`.
"""

from __future__ import annotations

import msgspec

from comfy_async.events import LogEntry, LogSize
from comfy_async.models._base import JsonBuffer, Model

__all__ = [
    "Device",
    "PackageVersion",
    "ServerLogs",
    "SystemInfo",
    "SystemStats",
    "decode_server_logs",
    "decode_system_stats",
]


class PackageVersion(Model, frozen=True):
    """A Python package ComfyUI depends on: installed version (``None`` if missing) vs required."""

    name: str = ""
    installed: str | None = None
    required: str | None = None

    @property
    def satisfied(self) -> bool:
        """Whether the installed version is exactly the required one."""
        return self.installed is not None and self.installed == self.required


class SystemInfo(Model, frozen=True):
    """``system`` of ``/system_stats``: versions, RAM (bytes) and the server's command line.

    ``comfyui_frontend_version``, ``workflow_templates_version`` and ``cloud_version`` are
    documented for Comfy Cloud only.
    """

    os: str = ""
    ram_total: int | float | None = None
    ram_free: int | float | None = None
    comfyui_version: str | None = None
    required_frontend_version: str | None = None
    installed_templates_version: str | None = None
    required_templates_version: str | None = None
    comfy_package_versions: list[PackageVersion] = []
    python_version: str = ""
    pytorch_version: str | None = None
    embedded_python: bool = False
    deploy_environment: str | None = None
    argv: list[str] = []
    comfyui_frontend_version: str | None = None
    workflow_templates_version: str | None = None
    cloud_version: str | None = None


class Device(Model, frozen=True):
    """One compute device, memory in bytes. ``index`` is ``None`` for the CPU."""

    name: str = ""
    type: str = ""
    index: int | None = None
    vram_total: int | float | None = None
    vram_free: int | float | None = None
    torch_vram_total: int | float | None = None
    torch_vram_free: int | float | None = None


class SystemStats(Model, frozen=True):
    """``GET /system_stats``: the server's system and its devices, the primary device first."""

    system: SystemInfo = SystemInfo()
    devices: list[Device] = []


class ServerLogs(Model, frozen=True):
    """``GET /internal/logs/raw``: the server's recent log lines and terminal size.

    The route is internal to the frontend ("do not depend on", §2.5).
    """

    entries: list[LogEntry] = []
    size: LogSize | None = None

    @property
    def text(self) -> str:
        """The log lines joined as one text (each ``m`` keeps its own line ending)."""
        return "".join(entry.m for entry in self.entries)


_SYSTEM_STATS = msgspec.json.Decoder(SystemStats)
_SERVER_LOGS = msgspec.json.Decoder(ServerLogs)


def decode_system_stats(buf: JsonBuffer) -> SystemStats:
    """Decode the body of ``GET /system_stats``."""
    return _SYSTEM_STATS.decode(buf)


def decode_server_logs(buf: JsonBuffer) -> ServerLogs:
    """Decode the body of ``GET /internal/logs/raw``."""
    return _SERVER_LOGS.decode(buf)
