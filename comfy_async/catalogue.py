"""The node catalogue: ``/object_info`` decoded lazily into typed node schemas (design §7).

:class:`Catalogue` splits the dump into ``{class: raw}`` at once (no schema is decoded), types one
class when it is first asked for and caches it. The raw values reference the response buffer, so
that buffer stays alive only while some class is still undecoded: once every class is typed (for
example after :meth:`Catalogue.decode_all`) the raw index and the buffer are released. Search over
names, display names and categories decodes a small summary of each class, not its inputs.

The model folder lists (``catalogue.model_files("loras")``) come from the well-known loader
inputs, each decoding one class only. This module reads a file only when asked by name
(:meth:`Catalogue.from_file`); fetching and refreshing ``/object_info`` is the client's job
(``await client.nodes()``).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from comfy_async._graph.json_values import dumps
from comfy_async._graph.node_schema import (
    BooleanInput,
    ComboInput,
    FloatInput,
    IntInput,
    LinkInput,
    NodeInput,
    NodeOutput,
    NodeSchema,
    RawInput,
    StringInput,
    node_schema,
)
from comfy_async.errors import ConfigurationError
from comfy_async.models.object_info import decode_node_info, decode_object_info_index

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from comfy_async.models._base import JsonBuffer
    from comfy_async.models.object_info import NodeInfo

__all__ = [
    "MODEL_FOLDER_INPUTS",
    "BooleanInput",
    "Catalogue",
    "ComboInput",
    "FloatInput",
    "IntInput",
    "LinkInput",
    "NodeInput",
    "NodeOutput",
    "NodeSchema",
    "RawInput",
    "StringInput",
]

MODEL_FOLDER_INPUTS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "checkpoints": (("CheckpointLoaderSimple", "ckpt_name"),),
    "loras": (("LoraLoader", "lora_name"), ("LoraLoaderModelOnly", "lora_name")),
    "vae": (("VAELoader", "vae_name"),),
    "diffusion_models": (("UNETLoader", "unet_name"),),
    "unet": (("UNETLoader", "unet_name"),),
    "text_encoders": (("CLIPLoader", "clip_name"),),
    "clip": (("CLIPLoader", "clip_name"),),
    "controlnet": (("ControlNetLoader", "control_net_name"),),
    "upscale_models": (("UpscaleModelLoader", "model_name"),),
    "input": (("LoadImage", "image"),),
}
"""Model folder → the ``(class, input)`` combos that list its files, first present wins.

``input`` lists the images in the server's input folder (``LoadImage.image``). ``unet`` and
``clip`` are the older names of ``diffusion_models`` and ``text_encoders``.
"""


class _Summary(msgspec.Struct, frozen=True, kw_only=True):
    """The few fields search needs; decoding it skips the (large) input specs."""

    name: str
    display_name: str | None = None
    category: str = ""
    output_node: bool = False
    search_aliases: list[str] | None = None

    @property
    def title(self) -> str:
        return self.display_name or self.name


_SUMMARY = msgspec.json.Decoder(_Summary)
_GZIP_STEP = 1 << 18


def _read_gzip(path: Path) -> bytes | bytearray:
    """Decompress a gzip file into one buffer sized from its trailer (no doubling while reading)."""
    with path.open("rb") as raw:
        raw.seek(-4, os.SEEK_END)
        size = int.from_bytes(raw.read(4), "little")  # ISIZE: the length modulo 2**32
    buffer = bytearray(size)
    view = memoryview(buffer)
    with gzip.open(path, "rb") as stream:
        filled = 0
        while filled < size:
            # Small steps: the gzip reader decompresses each request into a temporary first.
            count = stream.readinto(view[filled : filled + _GZIP_STEP])
            if not count:
                break
            filled += count
        rest = stream.read(1)
    view.release()
    if filled == size and not rest:
        return buffer
    # The trailer lied (several members, or 4 GiB and more): read it the simple way.
    return gzip.decompress(path.read_bytes())


class Catalogue:
    """Every node class of a server, typed on demand from one ``/object_info`` response.

    ::

        catalogue = Catalogue.from_bytes(body)          # or await client.nodes()
        ksampler = catalogue["KSampler"]                # NodeSchema, decoded now, then cached
        ksampler.inputs["seed"].max                     # 18446744073709551615
        catalogue.search("upscale")                     # class names
        catalogue.model_files("loras")                  # LoraLoader.lora_name's choices

    A catalogue is a read-only mapping of class name → :class:`NodeSchema` (``in``, ``len``,
    iteration in the server's order). Looking up an absent class raises ``KeyError``.
    """

    __slots__ = ("_infos", "_names", "_raw", "_schemas", "_summaries")

    def __init__(self, index: Mapping[str, msgspec.Raw]) -> None:
        """Wrap an index from :func:`~comfy_async.models.decode_object_info_index` (copied)."""
        self._adopt(dict(index))

    def _adopt(self, index: dict[str, msgspec.Raw]) -> None:
        self._raw: dict[str, msgspec.Raw] = index
        self._names: tuple[str, ...] = tuple(index)
        self._infos: dict[str, NodeInfo] = {}
        self._schemas: dict[str, NodeSchema] = {}
        self._summaries: dict[str, _Summary] | None = None

    # ------------------------------------------------------------------ building

    @classmethod
    def from_bytes(cls, buf: JsonBuffer) -> Catalogue:
        """Index a ``GET /object_info`` body; no class is decoded yet.

        Raises ``msgspec.DecodeError`` when the body is not a JSON object.
        """
        catalogue = cls.__new__(cls)
        catalogue._adopt(decode_object_info_index(buf))  # a fresh dict: no copy needed
        return catalogue

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Catalogue:
        """Index a saved ``/object_info`` dump; a ``.gz`` file is decompressed first."""
        file = Path(path)
        if file.suffix == ".gz":
            return cls.from_bytes(_read_gzip(file))
        return cls.from_bytes(file.read_bytes())

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> Catalogue:
        """Build from an already decoded ``/object_info`` object (tests, fakes)."""
        return cls.from_bytes(dumps(data))

    # ------------------------------------------------------------------ mapping

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._infos or name in self._raw)

    def __getitem__(self, name: str) -> NodeSchema:
        return self.node(name)

    def __repr__(self) -> str:
        return f"<Catalogue {len(self._names)} classes, {len(self._infos)} decoded>"

    def names(self) -> list[str]:
        """Every class name, in the server's order."""
        return list(self._names)

    def get(self, name: str) -> NodeSchema | None:
        """The schema of ``name``, or ``None`` when the server has no such class."""
        return self.node(name) if name in self else None

    def node(self, name: str) -> NodeSchema:
        """The typed schema of class ``name`` (decoded on first use). ``KeyError`` if absent."""
        schema = self._schemas.get(name)
        if schema is None:
            schema = self._schemas[name] = node_schema(self.info(name))
        return schema

    def info(self, name: str) -> NodeInfo:
        """The decoded ``/object_info`` entry of ``name`` (the models' struct). ``KeyError``."""
        info = self._infos.get(name)
        if info is None:
            info = self._infos[name] = decode_node_info(self._raw[name])
            if len(self._infos) == len(self._names):
                self._release_raw()
        return info

    @property
    def decoded(self) -> int:
        """How many classes have been decoded so far."""
        return len(self._infos)

    @property
    def holds_raw(self) -> bool:
        """Whether the raw index (and so the response buffer) is still alive."""
        return bool(self._raw)

    def decode_all(self) -> None:
        """Decode every class now, then release the raw response buffer."""
        for name in self._names:
            self.info(name)

    def _release_raw(self) -> None:
        self._raw = {}

    # ------------------------------------------------------------------ search

    def _summary(self) -> dict[str, _Summary]:
        if self._summaries is None:
            summaries: dict[str, _Summary] = {}
            for name in self._names:
                info = self._infos.get(name)
                if info is not None:
                    summaries[name] = _Summary(
                        name=info.name,
                        display_name=info.display_name,
                        category=info.category,
                        output_node=info.output_node,
                        search_aliases=info.search_aliases,
                    )
                else:
                    summaries[name] = _SUMMARY.decode(self._raw[name])
            self._summaries = summaries
        return self._summaries

    def display_name(self, name: str) -> str:
        """The name the UI shows for class ``name`` (its display name, or the class name)."""
        return self._summary()[name].title

    def categories(self) -> list[str]:
        """Every category (``"sampling"``, ``"loaders/video_models"``…), sorted."""
        return sorted({summary.category for summary in self._summary().values()})

    def search(
        self, text: str = "", *, category: str | None = None, output_node: bool | None = None
    ) -> list[str]:
        """Class names whose name, display name, category or search aliases contain ``text``.

        The match ignores case. ``category`` keeps classes in that category or below it
        (``"loaders"`` matches ``"loaders/video_models"``); ``output_node`` filters on the flag.
        """
        needle = text.casefold()
        found: list[str] = []
        for name, summary in self._summary().items():
            if category is not None and not (
                summary.category == category or summary.category.startswith(category + "/")
            ):
                continue
            if output_node is not None and summary.output_node is not output_node:
                continue
            haystack = [name, summary.title, summary.category, *(summary.search_aliases or ())]
            if any(needle in item.casefold() for item in haystack):
                found.append(name)
        return found

    def output_nodes(self) -> list[str]:
        """The classes flagged ``output_node``: a prompt needs at least one of them."""
        return [name for name, summary in self._summary().items() if summary.output_node]

    # ------------------------------------------------------------------ model folders

    def model_files(self, folder: str) -> list[str]:
        """The file names the server offers for a model folder, e.g. ``"loras"``.

        Read from the choices of a well-known loader input (:data:`MODEL_FOLDER_INPUTS`), as the
        loader lists them (``VAELoader`` adds built-in choices such as ``pixel_space``). Only that
        one class is decoded. ``[]`` when the server has none of the loaders.
        """
        candidates = MODEL_FOLDER_INPUTS.get(folder)
        if candidates is None:
            known = ", ".join(MODEL_FOLDER_INPUTS)
            raise ConfigurationError(f"unknown model folder {folder!r}; known folders: {known}")
        for class_type, input_name in candidates:
            if class_type not in self:
                continue
            spec = self.node(class_type).inputs.get(input_name)
            if isinstance(spec, ComboInput) and spec.options is not None:
                return [item for item in spec.options if isinstance(item, str)]
        return []
