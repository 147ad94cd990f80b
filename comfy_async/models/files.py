"""File references: upload results, output files of a prompt, and the ``/view`` triple (§2.2, §4.4).

A file on the server is named by ``(filename, subfolder, type)``, where ``type`` is ``input``,
``output`` or ``temp``. :class:`FileRef` is that triple (also the ``original_ref`` of a mask
upload); :class:`OutputFile` adds the node that produced the file and the UI key it came under;
:func:`output_files` lists them from a history or job ``outputs`` dict. Nothing here downloads or
sanitises names: that is the files namespace's job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from comfy_async.models._base import JsonBuffer, Model

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["FileRef", "OutputFile", "UploadResult", "decode_upload_result", "output_files"]


class FileRef(Model, frozen=True):
    """A file on the server as ``/view`` names it: ``filename`` in ``subfolder`` of ``type``.

    ``/view`` defaults ``type`` to ``output`` while uploads default it to ``input`` (§2.2), so
    always send all three.
    """

    filename: str = ""
    subfolder: str = ""
    type: str = "output"


class OutputFile(FileRef, frozen=True):
    """A file a prompt produced: a :class:`FileRef` plus the node and the UI key it came under.

    ``kind`` is the key of the node's UI dict (``images``, ``audio``, ``video``, ``gifs``, ``3d``…;
    custom nodes add their own). The jobs API's ``preview_output`` decodes straight into this
    type: its ``nodeId`` and ``mediaType`` are ``node_id`` and ``kind``.
    """

    node_id: str = msgspec.field(default="", name="nodeId")
    kind: str = msgspec.field(default="images", name="mediaType")


class UploadResult(Model, frozen=True):
    """The answer of ``POST /upload/image`` and ``/upload/mask``.

    ``name`` may differ from the name sent: a different file under an existing name is stored as
    ``stem (1).ext`` (§7.19). Always use :attr:`name`. ``asset`` is set only with
    ``--enable-assets``.
    """

    name: str
    subfolder: str = ""
    type: str = "input"
    asset: dict[str, Any] | None = None

    @property
    def ref(self) -> FileRef:
        """The uploaded file as a :class:`FileRef` (for ``/view`` or a mask's ``original_ref``)."""
        return FileRef(filename=self.name, subfolder=self.subfolder, type=self.type)

    @property
    def path(self) -> str:
        """The value a ``LoadImage``-style input expects: ``subfolder/name``, or just ``name``."""
        return f"{self.subfolder}/{self.name}" if self.subfolder else self.name


def output_files(outputs: Mapping[str, Mapping[str, Any]]) -> list[OutputFile]:
    """Every file named in a history or job ``outputs`` dict, in node order, then list order.

    A file is any item with a string ``filename`` in a list under any UI key. Other items are
    skipped: ``text`` outputs are strings and ``animated`` holds booleans (§4.4).
    """
    files: list[OutputFile] = []
    for node_id, ui in outputs.items():
        for kind, items in ui.items():
            if not isinstance(items, list):
                continue
            for item in items:
                if not isinstance(item, dict):
                    continue
                filename = item.get("filename")
                if not isinstance(filename, str):
                    continue
                subfolder = item.get("subfolder")
                type_ = item.get("type")
                files.append(
                    OutputFile(
                        filename=filename,
                        subfolder=subfolder if isinstance(subfolder, str) else "",
                        type=type_ if isinstance(type_, str) else "output",
                        node_id=node_id,
                        kind=kind,
                    )
                )
    return files


_UPLOAD_RESULT = msgspec.json.Decoder(UploadResult)


def decode_upload_result(buf: JsonBuffer) -> UploadResult:
    """Decode the body of ``POST /upload/image`` or ``POST /upload/mask``."""
    return _UPLOAD_RESULT.decode(buf)
