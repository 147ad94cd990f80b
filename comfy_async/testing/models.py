"""The fake server's model inventory: which model files each folder holds.

A real ComfyUI lists the files of its model folders in three places: ``/models/{folder}``, the
Cloud's ``/experiment/models/{folder}``, and the options of every loader's combo input in
``/object_info`` (``CheckpointLoaderSimple.ckpt_name`` lists ``checkpoints``, for example). The
fake does the same from a :data:`ModelInventory`, so a workflow that names a model the server
holds validates and runs, and one that names a missing model is refused as the real server
refuses it (``value_not_in_list``).

* :data:`DEFAULT_MODELS` — a few common public model names per folder (the default inventory).
* :func:`parse_models` — ``"checkpoints=a.safetensors,b.safetensors"`` (the CLI's ``--models``).
* :func:`models_named_by` — the inventory a workflow needs: every model its loaders name.
* :func:`with_inventory` — an ``/object_info`` whose loader combos list the inventory.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

from comfy_async._graph.model_refs import LOADER_FOLDERS, folder_of, models_named_by
from comfy_async.errors import ConfigurationError

__all__ = [
    "DEFAULT_MODELS",
    "LOADER_FOLDERS",
    "ModelInventory",
    "check_inventory",
    "folder_of",
    "merge_inventories",
    "models_named_by",
    "parse_models",
    "with_inventory",
]

#: Folder name → the model file names in it.
ModelInventory: TypeAlias = Mapping[str, Iterable[str]]

#: The default inventory: a few common public model names per folder.
DEFAULT_MODELS: Mapping[str, tuple[str, ...]] = {
    "checkpoints": (
        "v1-5-pruned-emaonly.safetensors",
        "sd_xl_base_1.0.safetensors",
        "flux1-dev-fp8.safetensors",
    ),
    "loras": ("add_detail.safetensors", "lcm-lora-sdv1-5.safetensors"),
    "vae": ("sdxl_vae.safetensors", "ae.safetensors", "vae-ft-mse-840000-ema-pruned.safetensors"),
    "text_encoders": ("clip_l.safetensors", "t5xxl_fp8_e4m3fn.safetensors"),
    "diffusion_models": ("flux1-dev.safetensors", "flux1-schnell.safetensors"),
    "controlnet": ("control_v11p_sd15_canny.pth", "control_v11f1p_sd15_depth.pth"),
    "upscale_models": ("RealESRGAN_x4plus.pth", "4x-UltraSharp.pth"),
    "clip_vision": ("clip_vision_g.safetensors",),
    "embeddings": ("easynegative.safetensors",),
    "configs": ("v1-inference.yaml",),
    "style_models": ("flux1-redux-dev.safetensors",),
}


def check_inventory(inventory: object, folders: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Validate an inventory given by a user; return it as folder → sorted names.

    Raises:
        ConfigurationError: not a mapping of folder → names, an unknown folder, or a name that
            is not a plain relative file name.

    """
    if not isinstance(inventory, Mapping):
        raise ConfigurationError(
            f"a model inventory maps folder names to file names, got {type(inventory).__name__}"
        )
    known = set(folders)
    checked: dict[str, tuple[str, ...]] = {}
    for folder, names in inventory.items():
        if folder not in known:
            raise ConfigurationError(
                f"unknown model folder {folder!r} (the server has: {', '.join(sorted(known))})"
            )
        if isinstance(names, str) or not isinstance(names, Iterable):
            raise ConfigurationError(f"models of {folder!r} must be a list of file names")
        listed = []
        for name in names:
            if not isinstance(name, str) or not name or name.startswith("/") or ".." in name:
                raise ConfigurationError(f"{name!r} in {folder!r} is not a model file name")
            listed.append(name)
        checked[folder] = tuple(sorted(set(listed)))
    return checked


def merge_inventories(*inventories: ModelInventory) -> dict[str, tuple[str, ...]]:
    """Every folder of every inventory, with the names of all of them."""
    merged: dict[str, set[str]] = {}
    for inventory in inventories:
        for folder, names in inventory.items():
            merged.setdefault(folder, set()).update(names)
    return {folder: tuple(sorted(names)) for folder, names in merged.items()}


def parse_models(text: str) -> dict[str, tuple[str, ...]]:
    """Parse ``FOLDER=NAME,NAME`` (the CLI's ``--models``); several options may be merged.

    Raises:
        ConfigurationError: not of that form.

    """
    folder, sep, names = text.partition("=")
    listed = [name.strip() for name in names.split(",") if name.strip()]
    if not sep or not folder.strip() or not listed:
        raise ConfigurationError(
            f"--models takes FOLDER=NAME[,NAME…], e.g. checkpoints=a.safetensors; got {text!r}"
        )
    return {folder.strip(): tuple(listed)}


def with_inventory(
    object_info: Mapping[str, Any], inventory: Mapping[str, Iterable[str]]
) -> dict[str, Any]:
    """A copy of ``object_info`` whose loader combos list the inventory's files.

    Only the nodes with a loader input are copied; the rest are shared with ``object_info``.
    """
    result = dict(object_info)
    for class_type, node in object_info.items():
        inputs = node.get("input") if isinstance(node, Mapping) else None
        if not isinstance(inputs, Mapping):
            continue
        changed: dict[str, Any] | None = None
        for section in ("required", "optional"):
            specs = inputs.get(section)
            if not isinstance(specs, Mapping):
                continue
            for name, spec in specs.items():
                folder = folder_of(class_type, name)
                if folder is None or folder not in inventory:
                    continue
                options = _combo_with(spec, inventory[folder])
                if options is None:
                    continue
                if changed is None:
                    changed = copy.deepcopy(dict(node))
                changed["input"][section][name] = options
        if changed is not None:
            result[class_type] = changed
    return result


def _combo_with(spec: object, names: Iterable[str]) -> list[Any] | None:
    """The combo ``spec`` with ``names`` added to its options; ``None`` if it is not a combo."""
    if not isinstance(spec, list) or not spec:
        return None
    head, rest = spec[0], spec[1:]
    if isinstance(head, list):  # [[options…], {…}]
        return [sorted({*map(str, head), *names}), *rest]
    if head == "COMBO" and rest and isinstance(rest[0], Mapping):  # ["COMBO", {"options": […]}]
        extra = dict(rest[0])
        extra["options"] = sorted({*map(str, extra.get("options") or ()), *names})
        return ["COMBO", extra, *rest[1:]]
    return None
