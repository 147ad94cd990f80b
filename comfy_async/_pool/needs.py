"""What a workflow needs of a server, and what a server lacks of it.

A workflow needs every node class it uses and every model file its loaders name. A server's
``/object_info`` answers both: its classes, and its loaders' combo options (the files it holds,
exactly as its own validation checks them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from comfy_async._graph.model_refs import folder_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from comfy_async.catalogue import Catalogue

__all__ = ["ModelRef", "Needs", "lacking", "missing_on", "needs_of"]


@dataclass(frozen=True, slots=True, order=True)
class ModelRef:
    """One model file a loader input names: ``folder/name`` read by ``class_type.input``."""

    folder: str
    name: str
    class_type: str
    input: str

    def __str__(self) -> str:
        return f"{self.folder}/{self.name}"


@dataclass(frozen=True, slots=True)
class Needs:
    """The node classes and model files one workflow needs (hashable: jobs group by it)."""

    classes: frozenset[str]
    models: frozenset[ModelRef]

    @property
    def model_names(self) -> frozenset[str]:
        """The model files as ``folder/name``: what a server holds warm or not."""
        return frozenset(str(model) for model in self.models)


def needs_of(prompt: Mapping[str, object]) -> Needs:
    """Read an API-format graph's needs off its nodes."""
    classes: set[str] = set()
    models: set[ModelRef] = set()
    for node in prompt.values():
        if not isinstance(node, dict):
            continue
        class_type, inputs = node.get("class_type"), node.get("inputs")
        if not isinstance(class_type, str):
            continue
        classes.add(class_type)
        if not isinstance(inputs, dict):
            continue
        for name, value in inputs.items():
            folder = folder_of(class_type, name)
            if folder is not None and isinstance(value, str) and value:
                models.add(ModelRef(folder, value, class_type, name))
    return Needs(frozenset(classes), frozenset(models))


def lacking(needs: Needs, catalogue: Catalogue) -> tuple[list[str], list[ModelRef]]:
    """The node classes and model files ``catalogue``'s server lacks of ``needs``, sorted.

    A model read by a loader the server lacks is not listed: whether the server holds it can
    only be known once the loader is there.
    """
    classes = [name for name in sorted(needs.classes) if name not in catalogue]
    models = []
    for model in sorted(needs.models):
        if model.class_type not in catalogue:
            continue
        spec = catalogue[model.class_type].inputs.get(model.input)
        options = getattr(spec, "options", None)
        if options is not None and model.name not in options:
            models.append(model)
    return classes, models


def missing_on(needs: Needs, catalogue: Catalogue) -> list[str]:
    """What ``catalogue``'s server lacks to run a workflow with ``needs`` (empty: nothing)."""
    classes, models = lacking(needs, catalogue)
    return [f"node {name}" for name in classes] + [f"model {model}" for model in models]
