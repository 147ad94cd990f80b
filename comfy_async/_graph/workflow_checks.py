"""Checks a workflow edit must pass: the shape of a prompt, JSON values, input names.

Used by :mod:`comfy_async.workflow` so that a bad edit fails at once with a typed error naming
the node and the input, instead of as a 400 from the server later. Pure functions, no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from comfy_async._graph.node_schema import LinkInput, RawInput
from comfy_async._graph.ui_format import is_ui_format
from comfy_async.errors import (
    UnknownInputError,
    UnknownNodeError,
    WorkflowError,
    WorkflowFormatError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from comfy_async._graph.json_values import JsonValue
    from comfy_async._graph.node_schema import NodeInput
    from comfy_async.catalogue import Catalogue

__all__ = [
    "UI_FORMAT_HELP",
    "Link",
    "check_prompt_shape",
    "check_value",
    "input_spec",
    "link_value",
    "literal_value",
]

UI_FORMAT_HELP = (
    "this is a UI-format workflow (it has 'nodes' and 'links'), not the API format that "
    "POST /prompt takes. In ComfyUI use Workflow > Export (API) (older versions: enable "
    "'Dev mode options' in the settings, then 'Save (API Format)'), or load it with a "
    "catalogue (await client.nodes()) to convert it"
)


class Link(NamedTuple):
    """The value of a linked input: output ``output`` of node ``node_id``.

    ``wf.set("3", model=Link("4", 0))`` links an input; reading a linked input returns a Link.
    """

    node_id: str
    output: int = 0


class _NotJson(Exception):
    def __init__(self, value: object) -> None:
        super().__init__(f"{type(value).__name__} is not a JSON value: {value!r:.80}")


def _json(value: object) -> JsonValue:
    """A deep copy of ``value`` as JSON (tuples become lists); raises _NotJson otherwise."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_json(item) for item in value]
    if isinstance(value, dict):
        copied: dict[str, JsonValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _NotJson(key)
            copied[key] = _json(item)
        return copied
    raise _NotJson(value)


def check_value(node_id: str, name: str, value: object) -> JsonValue:
    """``value`` as a JSON value for input ``name`` of ``node_id``; WorkflowError if it is not."""
    try:
        return _json(value)
    except _NotJson as error:
        raise WorkflowError(f"node {node_id} input {name!r}: {error}") from None


def check_prompt_shape(prompt: Mapping[str, object]) -> dict[str, dict[str, JsonValue]]:
    """A deep copy of an API-format graph; WorkflowFormatError for anything else.

    Nodes must be objects; ``inputs`` and ``_meta``, when present, objects; ``class_type``, when
    present, text. A node without ``class_type`` or ``inputs`` is kept: the server reports it.
    """
    if not isinstance(prompt, dict):
        raise WorkflowFormatError("a workflow must be a JSON object of nodes")
    if is_ui_format(prompt):
        raise WorkflowFormatError(UI_FORMAT_HELP)
    if "prompt" in prompt and isinstance(prompt["prompt"], dict) and "class_type" not in prompt:
        raise WorkflowFormatError(
            "this looks like a whole POST /prompt body; pass its 'prompt' value instead"
        )
    nodes: dict[str, dict[str, JsonValue]] = {}
    for node_id, node in prompt.items():
        if not isinstance(node_id, str):
            raise WorkflowFormatError(f"node id {node_id!r} is not a string")
        if not isinstance(node, dict):
            raise WorkflowFormatError(f"node {node_id} is not an object: {node!r:.80}")
        for key, kind in (("inputs", dict), ("_meta", dict), ("class_type", str)):
            if key in node and not isinstance(node[key], kind):
                raise WorkflowFormatError(f"node {node_id}: {key!r} must be a {kind.__name__}")
        try:
            copied = _json(node)
        except _NotJson as error:
            raise WorkflowFormatError(f"node {node_id}: {error}") from None
        assert isinstance(copied, dict)
        nodes[node_id] = copied
    return nodes


def input_spec(catalogue: Catalogue, node_id: str, class_type: str, name: str) -> NodeInput | None:
    """The schema of input ``name``, ``None`` when it cannot be checked (unknown class, dynamic).

    Raises UnknownInputError for a name the class does not declare, or a hidden input.
    """
    schema = catalogue.get(class_type)
    if schema is None:
        return None
    if name in schema.inputs:
        return schema.inputs[name]
    if name in schema.hidden:
        raise UnknownInputError(
            node_id, name, f"a hidden input of {class_type}, filled by the server; never sent"
        )
    head = name.split(".", 1)[0]
    spec = schema.inputs.get(head)
    if "." in name and isinstance(spec, RawInput) and spec.is_dynamic:
        return None
    listed = ", ".join(schema.inputs) or "none"
    raise UnknownInputError(node_id, name, f"{class_type} has inputs: {listed}")


def literal_value(
    nodes: Mapping[str, Mapping[str, JsonValue]],
    catalogue: Catalogue | None,
    node_id: str,
    name: str,
    value: object,
) -> JsonValue:
    """The stored form of a literal for input ``name`` (lists wrapped as ``__value__``)."""
    class_type = nodes[node_id].get("class_type")
    if catalogue is not None and isinstance(class_type, str):
        spec = input_spec(catalogue, node_id, class_type, name)
        if isinstance(spec, LinkInput):
            raise WorkflowError(
                f"input {name!r} of node {node_id} ({class_type}) takes a link "
                f"({spec.type}); use Link(node_id, output)"
            )
    checked = check_value(node_id, name, value)
    # A two-item list would read as a link (protocol doc §4.1): the server unwraps this form.
    return {"__value__": checked} if isinstance(checked, list) else checked


def link_value(
    nodes: Mapping[str, Mapping[str, JsonValue]],
    catalogue: Catalogue | None,
    node_id: str,
    name: str,
    link: Link,
) -> JsonValue:
    """The stored form ``[source, output]`` of a link, checked against the graph and catalogue."""
    class_type = nodes[node_id].get("class_type")
    if catalogue is not None and isinstance(class_type, str):
        input_spec(catalogue, node_id, class_type, name)
    source = str(link.node_id)
    if source not in nodes:
        raise UnknownNodeError(source, f"node {node_id} input {name!r} links to it")
    if type(link.output) is not int or link.output < 0:
        raise WorkflowError(f"node {node_id} input {name!r}: bad output index {link.output!r}")
    source_class = nodes[source].get("class_type")
    if catalogue is not None and isinstance(source_class, str):
        if source_class not in catalogue:
            raise UnknownNodeError(source_class, f"node {source}'s class is not in the catalogue")
        outputs = catalogue.node(source_class).outputs
        if link.output >= len(outputs):
            raise WorkflowError(
                f"node {node_id} input {name!r}: node {source} ({source_class}) has "
                f"{len(outputs)} outputs, not {link.output + 1}"
            )
    return [source, link.output]
