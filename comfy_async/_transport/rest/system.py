"""``comfy.system``: what the server is and has (stats, features, nodes) and its upkeep.

Routes of protocol doc §2.3 (``/system_stats``, ``/features``, ``/object_info``, ``/embeddings``,
``/extensions``, ``/node_replacements``, ``/global_subgraphs``, ``/workflow_templates``,
``/i18n``), ``POST /free`` (§2.1), and the frontend-internal ``/internal/*`` routes of §2.5
(local servers only: "do not depend on" per the server's source; Comfy Cloud has none, so they
raise :class:`~comfy_async.errors.UnsupportedOperationError` there).
"""

from __future__ import annotations

from typing import Any

import msgspec

from comfy_async._transport.rest.namespace import (
    Namespace,
    decode_any,
    decode_dict,
    decode_string_lists,
    decode_strings,
)
from comfy_async.events import FeatureFlags
from comfy_async.models.object_info import NodeInfo, decode_object_info
from comfy_async.models.system import (
    ServerLogs,
    SystemStats,
    decode_server_logs,
    decode_system_stats,
)

__all__ = ["System"]

_TEXT = msgspec.json.Decoder(str)


def _feature_flags(buf: bytes) -> FeatureFlags:
    return FeatureFlags(flags=decode_dict(buf))


class System(Namespace):
    """The server itself: ``comfy.system``. Every read here can be cancelled harmlessly."""

    __slots__ = ()

    async def stats(self) -> SystemStats:
        """Versions, RAM and devices (the primary device first)."""
        return await self._http.fetch(self._route("system_stats"), decode_system_stats)

    async def features(self) -> FeatureFlags:
        """The server's feature flags (the same dict the WebSocket negotiation returns)."""
        return await self._http.fetch(self._route("features"), _feature_flags)

    async def object_info(self, node_class: str | None = None) -> dict[str, NodeInfo]:
        """Node schemas: every class, or only ``node_class`` (``{}`` if the server has none).

        The full dump is large; for a lazily decoded catalogue use :meth:`object_info_bytes`.
        """
        if node_class is None:
            route = self._route("object_info.all")
        else:
            route = self._route("object_info.get", node_class=node_class)
        return await self._http.fetch(route, decode_object_info)

    async def object_info_bytes(self) -> bytes:
        """The raw body of ``GET /object_info``, for decoding one class at a time."""
        return (await self._http.request(self._route("object_info.all"))).body

    async def embeddings(self) -> list[str]:
        """Embedding names, without extension."""
        return await self._http.fetch(self._route("embeddings"), decode_strings)

    async def extensions(self) -> list[str]:
        """URLs of the frontend's JavaScript extensions."""
        return await self._http.fetch(self._route("extensions"), decode_strings)

    async def free(self, *, unload_models: bool = False, free_memory: bool = False) -> None:
        """Ask the server to unload models and/or free memory (done between prompts).

        Cancelling the call may leave the request sent or not; repeating it is harmless.
        """
        body = {"unload_models": unload_models, "free_memory": free_memory}
        await self._http.request(self._route("free"), json=body)

    async def node_replacements(self) -> dict[str, Any]:
        """Replacements the server applies to deprecated node classes before validation."""
        return await self._http.fetch(self._route("node_replacements"), decode_dict)

    async def global_subgraphs(self) -> dict[str, Any]:
        """Blueprint subgraphs by id (``{source, name, info}``)."""
        return await self._http.fetch(self._route("global_subgraphs.list"), decode_dict)

    async def global_subgraph(self, subgraph_id: str) -> Any:
        """One blueprint subgraph's full data."""
        route = self._route("global_subgraphs.get", subgraph_id=subgraph_id)
        return await self._http.fetch(route, decode_any)

    async def workflow_templates(self) -> Any:
        """Workflow templates contributed by custom nodes."""
        return await self._http.fetch(self._route("workflow_templates"), decode_any)

    async def i18n(self) -> dict[str, Any]:
        """Translations contributed by custom nodes."""
        return await self._http.fetch(self._route("i18n"), decode_dict)

    # ------------------------------------------------------------------ /internal (local only)

    async def logs(self) -> str:
        """The server's recent log as one text."""
        return await self._http.fetch(self._route("internal.logs"), _TEXT.decode)

    async def logs_raw(self) -> ServerLogs:
        """The server's recent log lines with their times, and the terminal size."""
        return await self._http.fetch(self._route("internal.logs_raw"), decode_server_logs)

    async def subscribe_logs(self, client_id: str, enabled: bool = True) -> None:
        """Turn the WebSocket ``logs`` stream on or off for the socket of ``client_id``.

        Cancelling the call may leave the request sent or not; repeating it is harmless.
        """
        body = {"clientId": client_id, "enabled": enabled}
        await self._http.request(self._route("internal.logs_subscribe"), json=body)

    async def folder_paths(self) -> dict[str, list[str]]:
        """The server's model folders and their absolute paths."""
        return await self._http.fetch(self._route("internal.folder_paths"), decode_string_lists)

    async def internal_files(self, directory: str) -> list[str]:
        """Files of ``output``, ``input`` or ``temp`` as ``"name [type]"``, newest first."""
        route = self._route("internal.files", directory=directory)
        return await self._http.fetch(route, decode_strings)
