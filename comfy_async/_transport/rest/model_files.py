"""``comfy.models``: model folders and files (checkpoints, LoRAs…) and model previews.

Routes: ``GET /models``, ``GET /models/{folder}``, ``GET /experiment/models[/{folder}]`` and
``GET /experiment/models/preview/{folder}/{index}/{file}`` (protocol doc §2.3). Comfy Cloud has
no ``/api/models``: its table maps ``models.*`` onto the experiment routes (§8). Names and
objects decode to one type each (:class:`~comfy_async.models.ModelFolder`,
:class:`~comfy_async.models.ModelFile`) whatever the route answered.
"""

from __future__ import annotations

from comfy_async._transport.rest.namespace import Namespace
from comfy_async.models.model_files import (
    ModelFile,
    ModelFolder,
    decode_model_files,
    decode_model_folders,
)

__all__ = ["Models"]


class Models(Namespace):
    """Model files on the server: ``comfy.models``. Every read here can be cancelled harmlessly."""

    __slots__ = ()

    async def folders(self) -> list[ModelFolder]:
        """The model folder types (locally names only; on Cloud with their storage folders)."""
        return await self._http.fetch(self._route("models.folders"), decode_model_folders)

    async def files(self, folder: str) -> list[ModelFile]:
        """The files of one folder type, relative to it (``NotFoundError`` for an unknown one)."""
        route = self._route("models.files", folder=folder)
        return await self._http.fetch(route, decode_model_files)

    async def experiment_folders(self) -> list[ModelFolder]:
        """The folder types with their absolute paths and file extensions."""
        route = self._route("experiment_models.folders")
        return await self._http.fetch(route, decode_model_folders)

    async def experiment_files(self, folder: str) -> list[ModelFile]:
        """The files of one folder type with path index, times and size (where the server says)."""
        route = self._route("experiment_models.files", folder=folder)
        return await self._http.fetch(route, decode_model_files)

    async def preview(self, folder: str, path_index: int, filename: str) -> bytes:
        """A model's preview image (webp); ``path_index`` comes from :meth:`experiment_files`."""
        route = self._route(
            "experiment_models.preview", folder=folder, path_index=path_index, filename=filename
        )
        return (await self._http.request(route)).body
