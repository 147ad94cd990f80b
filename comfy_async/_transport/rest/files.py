"""``comfy.files``: uploads, ``/view`` streams and downloads, saving a prompt's outputs.

Routes: ``POST /upload/image``, ``POST /upload/mask``, ``GET /view``, ``GET /view_metadata``
(protocol doc §2.2). Uploads return the server's final name, which differs from the one sent
when another file already has it (``name (1).png``, §7.19). ``/view`` is streamed with a byte
cap; on Comfy Cloud it redirects to a signed storage URL, which the request path fetches without
credentials (§8). Saving to disk goes through ``disk`` (loaded with the first save, not for
reading): names from the server are sanitised and files are written atomically.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import IO, TYPE_CHECKING, Any, Final, TypeAlias

import msgspec

from comfy_async._transport.exchange import FilePart
from comfy_async._transport.rest.namespace import Namespace, decode_dict
from comfy_async.errors import ConfigurationError
from comfy_async.models.files import FileRef, UploadResult, decode_upload_result, output_files

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Iterable

__all__ = ["DEFAULT_MAX_DOWNLOAD", "DEFAULT_MAX_READ", "Files", "UploadSource"]

DEFAULT_MAX_READ: Final = 256 * 1024 * 1024
"""Byte cap of :meth:`Files.view` and :meth:`Files.read` (kept in memory by the caller)."""
DEFAULT_MAX_DOWNLOAD: Final = 4 * 1024 * 1024 * 1024
"""Byte cap of :meth:`Files.download` and :meth:`Files.save` (streamed to disk)."""

UploadSource: TypeAlias = bytes | bytearray | memoryview | str | os.PathLike[str] | IO[bytes]
"""What can be uploaded: the bytes, a path to a file, or a binary file object."""


async def _read_source(source: UploadSource, name: str | None) -> FilePart:
    """The file part to upload: the bytes, the name to send and a content type from it."""
    data, filename = await _read_bytes(source, name)
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return FilePart(filename, data, content_type)


async def _read_bytes(source: UploadSource, name: str | None) -> tuple[bytes, str]:
    if isinstance(source, bytes | bytearray | memoryview):
        if name is None:
            raise ConfigurationError("name= is required when uploading bytes")
        return bytes(source), name
    import anyio  # noqa: PLC0415 - uploads and saves only: reading a file needs none of it
    import anyio.to_thread  # noqa: PLC0415

    if isinstance(source, str | os.PathLike):
        path = anyio.Path(source)
        return await path.read_bytes(), name or path.name
    data = await anyio.to_thread.run_sync(source.read)
    if not isinstance(data, bytes):
        raise ConfigurationError("the file object must be opened in binary mode")
    fallback = getattr(source, "name", None)
    if name is None and isinstance(fallback, str):
        name = PurePath(fallback).name
    if not name:
        raise ConfigurationError("name= is required for a file object without a name")
    return data, name


def _view_query(
    file: FileRef | str,
    kind: str | None,
    subfolder: str | None,
    preview: str | None,
    channel: str | None,
) -> dict[str, str | None]:
    ref = file if isinstance(file, FileRef) else FileRef(filename=file)
    return {
        "filename": ref.filename,
        "type": ref.type if kind is None else kind,
        "subfolder": ref.subfolder if subfolder is None else subfolder,
        "preview": preview,
        "channel": channel,
    }


class Files(Namespace):
    """Files on the server: ``comfy.files``."""

    __slots__ = ()

    # ------------------------------------------------------------------ uploads

    async def upload_image(
        self,
        source: UploadSource,
        *,
        name: str | None = None,
        type: str = "input",  # noqa: A002 - the server's field name
        subfolder: str = "",
        overwrite: bool = False,
    ) -> UploadResult:
        """Upload an image (or any input file); returns where the server stored it.

        ``name`` defaults to the path's or file object's name (required for bytes). Use the
        returned ``name``: the server renames a different file sent under a taken name, and
        returns the existing name for identical bytes. Comfy Cloud ignores ``subfolder`` and
        ``overwrite``. A retried upload is harmless for the same reason. Cancelling the call may
        leave the file uploaded or not.
        """
        file = await _read_source(source, name)
        return await self._upload(
            "upload.image", file, kind=type, subfolder=subfolder, overwrite=overwrite
        )

    async def upload_mask(
        self,
        source: UploadSource,
        *,
        original: FileRef,
        name: str | None = None,
        type: str = "input",  # noqa: A002 - the server's field name
        subfolder: str = "",
        overwrite: bool = False,
    ) -> UploadResult:
        """Upload a mask: its alpha channel is applied to ``original`` and saved under its name.

        Otherwise as :meth:`upload_image`.
        """
        file = await _read_source(source, name)
        ref = msgspec.json.encode(
            {"filename": original.filename, "subfolder": original.subfolder, "type": original.type}
        ).decode()
        return await self._upload(
            "upload.mask",
            file,
            kind=type,
            subfolder=subfolder,
            overwrite=overwrite,
            original_ref=ref,
        )

    async def _upload(
        self,
        endpoint: str,
        file: FilePart,
        *,
        kind: str,
        subfolder: str,
        overwrite: bool,
        **extra: str,
    ) -> UploadResult:
        form: dict[str, str | FilePart] = {
            "image": file,
            "type": kind,
            "subfolder": subfolder,
            "overwrite": "true" if overwrite else "false",
            **extra,
        }
        response = await self._http.request(self._route(endpoint), form=form)
        return self._http.decode(response, decode_upload_result)

    # ------------------------------------------------------------------ reading

    async def view(
        self,
        file: FileRef | str,
        *,
        type: str | None = None,  # noqa: A002 - the server's parameter name
        subfolder: str | None = None,
        preview: str | None = None,
        channel: str | None = None,
        max_bytes: int | None = DEFAULT_MAX_READ,
    ) -> AsyncGenerator[bytes, None]:
        """Stream a file's bytes from ``/view``.

        ``file`` is a :class:`~comfy_async.models.FileRef` (an output, an upload's ``ref``) or a
        file name; ``type`` and ``subfolder`` override the reference's (a bare name defaults to
        ``output``, as the server does). ``preview="webp;90"``/``"jpeg;80"`` re-encodes,
        ``channel`` is ``"rgba"``, ``"rgb"`` or ``"a"``. Going over ``max_bytes`` raises
        :class:`~comfy_async.errors.DownloadTooLargeError`. Close the iterator early with
        ``contextlib.aclosing``; cancelling the consumer closes the response.
        """
        query = _view_query(file, type, subfolder, preview, channel)
        async with self._http.stream(self._route("view"), query=query, max_bytes=max_bytes) as body:
            async for chunk in body:
                yield chunk

    async def read(
        self,
        file: FileRef | str,
        *,
        type: str | None = None,  # noqa: A002 - the server's parameter name
        subfolder: str | None = None,
        preview: str | None = None,
        channel: str | None = None,
        max_bytes: int | None = DEFAULT_MAX_READ,
    ) -> bytes:
        """A file's bytes from ``/view``, in memory (capped by ``max_bytes``); see :meth:`view`.

        Cancelling abandons the read.
        """
        query = _view_query(file, type, subfolder, preview, channel)
        async with self._http.stream(self._route("view"), query=query, max_bytes=max_bytes) as body:
            return b"".join([chunk async for chunk in body])

    async def view_metadata(self, folder: str, filename: str) -> dict[str, Any] | None:
        """The ``__metadata__`` of a ``.safetensors`` model file, or ``None`` when it has none.

        Cancelling abandons the read.
        """
        route = self._route("view_metadata", folder=folder)
        response = await self._http.request(route, query={"filename": filename}, allow=(404,))
        if response.status == 404:
            return None
        return self._http.decode(response, decode_dict)

    # ------------------------------------------------------------------ saving

    async def download(
        self,
        file: FileRef,
        dest: str | os.PathLike[str],
        *,
        max_bytes: int | None = DEFAULT_MAX_DOWNLOAD,
        overwrite: bool = False,
    ) -> Path:
        """Save one server file; returns the path written.

        ``dest`` is a folder (the file keeps its sanitised server name) or a file path. The bytes
        go to a temporary file that is renamed into place, so a failed, capped or cancelled
        download leaves nothing under the final name.

        Raises:
            UnsafePathError: the server's file name is unsafe, or the file exists and
                ``overwrite`` is false.
            DownloadTooLargeError: over ``max_bytes`` (the partial file is removed).

        """
        import anyio  # noqa: PLC0415 - saving only

        from comfy_async._transport.rest.disk import safe_filename  # noqa: PLC0415 - saving only

        target = Path(dest)
        if await anyio.Path(target).is_dir():
            root, target = target, target / safe_filename(file.filename)
        else:
            root = target.parent
        return await self._save_one(file, target, root, max_bytes, overwrite)

    async def save(
        self,
        outputs: Mapping[str, Mapping[str, Any]] | Iterable[FileRef],
        folder: str | os.PathLike[str],
        *,
        types: Iterable[str] = ("output",),
        max_bytes: int | None = DEFAULT_MAX_DOWNLOAD,
        overwrite: bool = False,
    ) -> list[Path]:
        """Save a prompt's files under ``folder`` (as ``subfolder/filename``); returns the paths.

        ``outputs`` is a history/job ``outputs`` dict or a list of files. Only files whose type is
        in ``types`` are saved (temporary previews are skipped by default). Every name is checked
        before the first byte is written. Cancelling stops between or inside files; files
        already saved stay, the one in progress is removed.

        Raises:
            UnsafePathError: a server name is unsafe (nothing is written), or a file exists and
                ``overwrite`` is false.
            DownloadTooLargeError: one file is over ``max_bytes``.

        """
        from comfy_async._transport.rest.disk import destination  # noqa: PLC0415 - saving only

        files = output_files(outputs) if isinstance(outputs, Mapping) else list(outputs)
        wanted = set(types)
        root = Path(folder)
        plan: dict[Path, FileRef] = {}
        for ref in files:
            if ref.type in wanted:
                plan.setdefault(destination(root, ref.filename, ref.subfolder), ref)
        return [
            await self._save_one(ref, target, root, max_bytes, overwrite)
            for target, ref in plan.items()
        ]

    async def _save_one(
        self, ref: FileRef, target: Path, root: Path, max_bytes: int | None, overwrite: bool
    ) -> Path:
        from comfy_async._transport.rest.disk import write_atomically  # noqa: PLC0415

        query = _view_query(ref, None, None, None, None)
        async with self._http.stream(self._route("view"), query=query, max_bytes=max_bytes) as body:
            return await write_atomically(body, target, root=root, overwrite=overwrite)
