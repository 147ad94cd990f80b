"""Seed-like inputs of a workflow, and the range a new seed may take.

An input is seed-like when it is named ``seed``, ``noise_seed`` or ``*_seed`` (its last dotted
part, for dynamic inputs) and holds a literal integer; with a catalogue, the node's schema must
also declare it INT. New random values stay within the input's min/max from the catalogue,
capped at ``2**50`` as the UI's randomize does (JavaScript numbers are exact up to 2**53);
without a catalogue they stay within ``0 … 2**32 - 1``, which every node accepts (many custom
nodes seed numpy, which takes 32 bits). Pure functions, no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from comfy_async._graph.node_schema import IntInput

if TYPE_CHECKING:
    from collections.abc import Mapping

    from comfy_async._graph.json_values import JsonValue
    from comfy_async.catalogue import Catalogue

__all__ = ["SEED_CAP", "SEED_MAX_UNKNOWN", "seed_bounds", "seed_inputs"]

SEED_CAP = 1125899906842624  # 2**50: the UI's randomize range
SEED_MAX_UNKNOWN = 2**32 - 1


def _seed_name(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return last == "seed" or last.endswith("_seed")


def _spec(
    node: Mapping[str, JsonValue], name: str, catalogue: Catalogue | None
) -> IntInput | bool | None:
    """The INT spec, ``False`` when the schema says it is not an INT, ``None`` when unknown."""
    class_type = node.get("class_type")
    if catalogue is None or not isinstance(class_type, str):
        return None
    schema = catalogue.get(class_type)
    if schema is None:
        return None
    spec = schema.inputs.get(name)
    if spec is None:
        return None if "." in name else False  # dynamic inputs are not listed by name
    return spec if isinstance(spec, IntInput) else False


def seed_inputs(
    nodes: Mapping[str, Mapping[str, JsonValue]], catalogue: Catalogue | None
) -> list[tuple[str, str]]:
    """``(node id, input name)`` of every literal seed-like input, in order."""
    found: list[tuple[str, str]] = []
    for node_id, node in nodes.items():
        inputs = node.get("inputs")
        for name, value in inputs.items() if isinstance(inputs, dict) else ():
            if not _seed_name(name) or type(value) is not int:
                continue
            if _spec(node, name, catalogue) is not False:
                found.append((node_id, name))
    return found


def seed_bounds(
    node: Mapping[str, JsonValue], name: str, catalogue: Catalogue | None
) -> tuple[int, int]:
    """The inclusive range a new random value of this seed input may take."""
    spec = _spec(node, name, catalogue)
    if not isinstance(spec, IntInput):
        return 0, SEED_MAX_UNKNOWN
    low = int(spec.min) if spec.min is not None else 0
    high = int(spec.max) if spec.max is not None else SEED_MAX_UNKNOWN
    low, high = max(low, -SEED_CAP), min(high, SEED_CAP)
    return low, max(low, high)
