"""Which model files a workflow names: the loader inputs and the folders they list.

A loader's combo input (``CheckpointLoaderSimple.ckpt_name``, ``LoraLoader.lora_name``…) names a
file of one model folder. Knowing which, a graph's models can be read off it: the fake server
holds them, a pool sends the job to a server that has them (and, better, has them loaded).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["LOADER_FOLDERS", "folder_of", "models_named_by"]

#: Which folder a loader input lists: by ``(class_type, input)`` first, else by input name.
LOADER_FOLDERS: Mapping[tuple[str | None, str], str] = {
    ("CLIPVisionLoader", "clip_name"): "clip_vision",
    ("UpscaleModelLoader", "model_name"): "upscale_models",
    ("ModelPatchLoader", "name"): "model_patches",
    ("LatentUpscaleModelLoader", "model_name"): "latent_upscale_models",
    (None, "ckpt_name"): "checkpoints",
    (None, "config_name"): "configs",
    (None, "lora_name"): "loras",
    (None, "vae_name"): "vae",
    (None, "clip_name"): "text_encoders",
    (None, "clip_name1"): "text_encoders",
    (None, "clip_name2"): "text_encoders",
    (None, "clip_name3"): "text_encoders",
    (None, "clip_name4"): "text_encoders",
    (None, "unet_name"): "diffusion_models",
    (None, "control_net_name"): "controlnet",
    (None, "style_model_name"): "style_models",
    (None, "gligen_name"): "gligen",
    (None, "hypernetwork_name"): "hypernetworks",
    (None, "photomaker_model_name"): "photomaker",
}


def folder_of(class_type: str, input_name: str) -> str | None:
    """The model folder a loader's input lists, or ``None`` when it names no model file."""
    return LOADER_FOLDERS.get((class_type, input_name)) or LOADER_FOLDERS.get((None, input_name))


def models_named_by(prompt: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """The inventory an API-format workflow needs: each model file its loaders name."""
    found: dict[str, set[str]] = {}
    for node in prompt.values():
        if not isinstance(node, Mapping):
            continue
        class_type, inputs = node.get("class_type"), node.get("inputs")
        if not isinstance(class_type, str) or not isinstance(inputs, Mapping):
            continue
        for name, value in inputs.items():
            folder = folder_of(class_type, name)
            if folder is not None and isinstance(value, str) and value:
                found.setdefault(folder, set()).add(value)
    return {folder: tuple(sorted(names)) for folder, names in found.items()}
