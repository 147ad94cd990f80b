"""Model-file listings: ``/models``, ``/models/{folder}`` and ``/experiment/models*`` (§2.3, §8).

"Models" here are ML model files (checkpoints, LoRAs, VAEs…), not payload models. The routes
answer in two styles, normalised by the ``decode_*`` functions to one type each:

* folders: local ``GET /models`` gives folder names; ``GET /experiment/models`` gives
  ``{name, folders: [absolute paths], extensions}`` locally and ``{name, folders}`` on Comfy
  Cloud (which has no ``/api/models``). All become :class:`ModelFolder`.
* files: local ``GET /models/{folder}`` gives relative file names; ``/experiment/models/{folder}``
  gives ``{name, pathIndex, modified, created, size}`` locally and ``{name, pathIndex}`` on Cloud.
  All become :class:`ModelFile`.
"""

from __future__ import annotations

import msgspec

from comfy_async.models._base import JsonBuffer, Model

__all__ = ["ModelFile", "ModelFolder", "decode_model_files", "decode_model_folders"]


class ModelFolder(Model, frozen=True):
    """A model folder type (``checkpoints``, ``loras``…).

    ``folders`` are the server's absolute paths for it (Cloud: storage names) and ``extensions``
    the file suffixes it lists; both are empty when the server gave only the name.
    """

    name: str
    folders: list[str] = []
    extensions: list[str] = []


class ModelFile(Model, frozen=True):
    """A model file, named relative to its folder (it may contain ``/``).

    ``path_index`` says which of the folder's paths holds it (needed for the preview route).
    ``modified`` and ``created`` are epoch seconds, ``size`` is bytes; all are ``None`` when the
    server gave only the name.
    """

    name: str
    path_index: int | None = msgspec.field(default=None, name="pathIndex")
    modified: int | float | None = None
    created: int | float | None = None
    size: int | None = None


_MODEL_FOLDERS = msgspec.json.Decoder(list[str | ModelFolder])
_MODEL_FILES = msgspec.json.Decoder(list[str | ModelFile])


def decode_model_folders(buf: JsonBuffer) -> list[ModelFolder]:
    """Decode ``GET /models`` (names) or ``GET /experiment/models`` (objects), local or Cloud."""
    return [
        ModelFolder(name=item) if isinstance(item, str) else item
        for item in _MODEL_FOLDERS.decode(buf)
    ]


def decode_model_files(buf: JsonBuffer) -> list[ModelFile]:
    """Decode ``GET /models/{folder}`` (names) or ``/experiment/models/{folder}`` (objects)."""
    return [
        ModelFile(name=item) if isinstance(item, str) else item for item in _MODEL_FILES.decode(buf)
    ]
