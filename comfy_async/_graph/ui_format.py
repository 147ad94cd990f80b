"""UI-format workflows: recognise them, and convert them to the API format the way the UI does.

The UI queues a workflow by compiling its litegraph graph into a prompt: every node that runs
becomes ``{"inputs", "class_type", "_meta": {"title"}}``, its widget values mapped to input
names (:mod:`comfy_async._graph.ui_widgets`), its links followed to the node that really
produces the value.
This module reproduces that compilation from the saved file and a node catalogue:

- muted nodes (mode 2) are left out, and inputs linked to them are dropped;
- bypassed nodes (mode 4) pass a matching input through (same slot first, then the first input of
  the target's type, as the UI picks);
- ``Reroute`` nodes are followed, ``PrimitiveNode`` values are written into the widgets they feed,
  notes are ignored;
- subgraphs are flattened: inner nodes get ids ``"<instance>:<inner>"`` (nested ones
  ``"a:b:c"``), links through subgraph ports are rebuilt, and an unconnected port takes the
  value promoted on the instance (or the inner widget's own value);
- ``_meta.title`` keeps the node's title (the class's display name when the UI kept the default).

What it cannot translate faithfully raises :class:`~comfy_async.errors.UnsupportedWorkflowError`
naming the node: legacy group nodes, classes the catalogue lacks, muted or bypassed subgraph
instances, stored values that do not fit the schema, dynamic-prompt choices (``{a|b}``, which
the UI resolves at random when queueing). No I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from comfy_async._graph.formats import is_ui_format
from comfy_async._graph.ui_graph import (
    BYPASS,
    MUTED,
    SUBGRAPH_INPUT,
    SUBGRAPH_OUTPUT,
    UiDocument,
    UiGraph,
    UiNode,
    UiSlot,
    read_document,
)
from comfy_async._graph.ui_widgets import widget_inputs
from comfy_async.errors import UnsupportedWorkflowError, WorkflowFormatError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from comfy_async._graph.json_values import JsonValue
    from comfy_async.catalogue import Catalogue

__all__ = ["FRONTEND_ONLY_CLASSES", "convert_ui_workflow", "is_ui_format"]

FRONTEND_ONLY_CLASSES = frozenset(
    {"Note", "MarkdownNote", "Label (rgthree)", "Bookmark (rgthree)", "Note Plus (mtb)"}
)
"""Display-only node classes of the UI: never part of a prompt, safe to ignore."""

_REROUTE = "Reroute"
_PRIMITIVE = "PrimitiveNode"


class _Link(NamedTuple):
    node_id: str
    slot: int


class _Value(NamedTuple):
    value: JsonValue


class _Scope(NamedTuple):
    """Where a node lives: a graph, reached through a chain of subgraph instances."""

    graph: UiGraph
    path: tuple[str, ...]
    instance: UiNode | None
    parent: _Scope | None

    def execution_id(self, node: UiNode) -> str:
        return ":".join((*self.path, node.id))


def _valid_connection(first: str, second: str) -> bool:
    """The rule of litegraph: ``*``/empty match anything, else equal or sharing a union member."""
    if first in ("", "*") or second in ("", "*") or first == second:
        return True
    left, right = first.lower(), second.lower()
    if "," not in left and "," not in right:
        return left == right
    return any(_valid_connection(a, b) for a in left.split(",") for b in right.split(","))


def _wrap(value: JsonValue) -> JsonValue:
    return {"__value__": value} if isinstance(value, list) else value


class _Converter:
    def __init__(self, document: UiDocument, catalogue: Catalogue) -> None:
        self.document = document
        self.catalogue = catalogue
        self.prompt: dict[str, dict[str, JsonValue]] = {}

    def fail(self, scope: _Scope, node: UiNode, problem: str) -> UnsupportedWorkflowError:
        where = f"node {scope.execution_id(node)} ({node.type})"
        return UnsupportedWorkflowError(f"{where}: {problem}")

    # ------------------------------------------------------------------ nodes

    def is_instance(self, node: UiNode) -> bool:
        return node.type in self.document.subgraphs

    def runtime_inputs(self, scope: _Scope, node: UiNode) -> tuple[UiSlot, ...]:
        """An instance's inputs are its definition's ports, linked as the saved slots say."""
        if not self.is_instance(node):
            return node.inputs
        definition = self.document.subgraphs[node.type]
        saved = {slot.name: slot for slot in node.inputs}
        by_slot = {
            link.target_slot: link.id
            for link in scope.graph.links.values()
            if link.target == node.id
        }
        slots: list[UiSlot] = []
        for index, port in enumerate(definition.inputs):
            slot = saved.get(port.name)
            link = slot.link if slot is not None else by_slot.get(index)
            widget = slot.widget if slot is not None else None
            slots.append(UiSlot(port.name, port.type, link, widget))
        return tuple(slots)

    def visit(self, scope: _Scope) -> None:
        for node in sorted(scope.graph.nodes.values(), key=lambda item: item.order):
            if self.is_instance(node):
                if node.mode in (MUTED, BYPASS):
                    raise self.fail(scope, node, "a muted or bypassed subgraph (not supported)")
                definition = self.document.subgraphs[node.type]
                self.visit(_Scope(definition, (*scope.path, node.id), node, scope))
                continue
            if node.type.startswith(("workflow>", "workflow/")) or (
                node.type in self.document.group_nodes
            ):
                raise self.fail(scope, node, "a legacy group node (convert it to a subgraph)")
            if node.mode in (MUTED, BYPASS) or node.type in (_REROUTE, _PRIMITIVE):
                continue
            if node.type in FRONTEND_ONLY_CLASSES:
                continue
            if node.type not in self.catalogue:
                raise self.fail(scope, node, "its class is not in the catalogue")
            self.emit(scope, node)

    def emit(self, scope: _Scope, node: UiNode) -> None:
        schema = self.catalogue.node(node.type)
        stored = widget_inputs(node, schema, scope.execution_id(node))
        inputs = {name: _wrap(value) for name, value in stored.items()}
        for index, slot in enumerate(node.inputs):
            resolved = self.resolve_input(scope, node, index, None, set())
            if isinstance(resolved, _Value):
                inputs[slot.name] = _wrap(resolved.value)
            elif isinstance(resolved, _Link):
                inputs[slot.name] = [resolved.node_id, resolved.slot]
        self.prompt[scope.execution_id(node)] = {
            "inputs": inputs,
            "class_type": node.type,
            "_meta": {"title": node.title or schema.display_name},
        }

    # ------------------------------------------------------------------ links

    def resolve_input(
        self, scope: _Scope, node: UiNode, index: int, wanted: str | None, seen: set[str]
    ) -> _Link | _Value | None:
        """What feeds input ``index`` of ``node``: a producing output, a value, or nothing."""
        key = f"{scope.execution_id(node)}[I]{index}"
        if key in seen:
            raise self.fail(scope, node, "its links form a loop through reroutes or bypasses")
        seen.add(key)
        slots = self.runtime_inputs(scope, node)
        if index >= len(slots):
            raise self.fail(scope, node, f"a link targets input slot {index}, which it lacks")
        slot = slots[index]
        if slot.link is None:
            return None
        link = scope.graph.links.get(slot.link)
        if link is None:
            raise self.fail(scope, node, f"input {slot.name!r} uses link {slot.link}, not found")
        if link.origin == SUBGRAPH_INPUT and scope.instance is not None:
            return self.through_port(scope, link.origin_slot, seen)
        origin = scope.graph.nodes.get(link.origin)
        if origin is None:
            raise self.fail(scope, node, f"input {slot.name!r} links from missing node")
        return self.resolve_output(scope, origin, link.origin_slot, wanted or slot.type, seen)

    def through_port(self, scope: _Scope, port: int, seen: set[str]) -> _Link | _Value | None:
        """An inner input fed by the subgraph's input port ``port``: look outside the instance."""
        instance, parent = scope.instance, scope.parent
        assert instance is not None
        assert parent is not None
        slots = self.runtime_inputs(parent, instance)
        if port >= len(slots):
            raise self.fail(parent, instance, f"its subgraph uses input port {port}, not defined")
        if slots[port].link is not None:
            return self.resolve_input(parent, instance, port, None, seen)
        return self.promoted_value(parent, instance, port)

    def promoted_value(self, scope: _Scope, instance: UiNode, port: int) -> _Value | None:
        """The value shown on the instance for an unconnected port, if the file stores one.

        Older files store promoted values on the instance, one per port that feeds a widget;
        newer ones (``proxyWidgets``) leave the value in the inner widget itself (``None``).
        """
        values = instance.widgets_values
        if not isinstance(values, list) or not values:
            return None
        definition = self.document.subgraphs[instance.type]
        fed = [
            index
            for index, port_info in enumerate(definition.inputs)
            if _feeds_widget(definition, port_info.links)
        ]
        if len(values) != len(fed):
            raise self.fail(
                scope,
                instance,
                f"it stores {len(values)} promoted values for {len(fed)} widget ports",
            )
        if port not in fed:
            return None
        return _Value(values[fed.index(port)])

    def resolve_output(
        self, scope: _Scope, node: UiNode, slot: int, wanted: str, seen: set[str]
    ) -> _Link | _Value | None:
        key = f"{scope.execution_id(node)}[O]{slot}"
        if key in seen:
            raise self.fail(scope, node, "its links form a loop through reroutes or bypasses")
        seen.add(key)
        if self.is_instance(node):
            if node.mode in (MUTED, BYPASS):
                raise self.fail(scope, node, "a muted or bypassed subgraph (not supported)")
            return self.instance_output(scope, node, slot, wanted, seen)
        if node.mode == BYPASS:
            index = self.bypass_input(scope, node, slot, wanted)
            return None if index < 0 else self.resolve_input(scope, node, index, None, seen)
        if node.type == _REROUTE:
            if slot < len(node.inputs):
                return self.resolve_input(scope, node, slot, wanted, seen)
            return None
        if node.type == _PRIMITIVE:
            values = node.widgets_values
            return _Value(values[0]) if isinstance(values, list) and values else None
        if node.type in FRONTEND_ONLY_CLASSES:
            return None
        return _Link(scope.execution_id(node), slot)

    def instance_output(
        self, scope: _Scope, node: UiNode, slot: int, wanted: str, seen: set[str]
    ) -> _Link | _Value | None:
        definition = self.document.subgraphs[node.type]
        if slot >= len(definition.outputs):
            raise self.fail(scope, node, f"a link uses output {slot}, which its subgraph lacks")
        inner = _Scope(definition, (*scope.path, node.id), node, scope)
        for link_id in definition.outputs[slot].links:
            link = definition.links.get(link_id)
            if link is None or link.target != SUBGRAPH_OUTPUT:
                continue
            if link.origin == SUBGRAPH_INPUT:
                raise self.fail(scope, node, "a subgraph output wired straight to an input")
            origin = definition.nodes.get(link.origin)
            if origin is None:
                raise self.fail(scope, node, f"subgraph output {slot} comes from a missing node")
            return self.resolve_output(inner, origin, link.origin_slot, wanted, seen)
        return None

    def bypass_input(self, scope: _Scope, node: UiNode, slot: int, wanted: str) -> int:
        """The input a bypassed node passes to output ``slot`` (the UI's choice), or -1."""
        inputs = node.inputs
        if slot >= len(node.outputs):
            raise self.fail(scope, node, f"a link uses output {slot}, which it lacks")
        if not inputs:
            return -1
        if wanted in ("*", ""):
            return slot if len(inputs) > slot else 0
        produced = node.outputs[slot].type
        if slot < len(inputs):
            same = inputs[slot].type
            if _valid_connection(same, produced) and _valid_connection(same, wanted):
                return slot
        for index, item in enumerate(inputs):
            if item.type == wanted:
                return index
        for index, item in enumerate(inputs):
            if _valid_connection(item.type, produced) and _valid_connection(item.type, wanted):
                return index
        return -1


def _feeds_widget(definition: UiGraph, links: tuple[int, ...]) -> bool:
    """Whether a subgraph input port feeds a widget inside (the UI then promotes a widget)."""
    for link_id in links:
        link = definition.links.get(link_id)
        target = definition.nodes.get(link.target) if link is not None else None
        if link is None or target is None or link.origin != SUBGRAPH_INPUT:
            continue
        if link.target_slot < len(target.inputs) and target.inputs[link.target_slot].widget:
            return True
    return False


def convert_ui_workflow(
    data: Mapping[str, object], catalogue: Catalogue
) -> dict[str, dict[str, JsonValue]]:
    """The API-format prompt the UI would queue for this UI-format workflow.

    Raises WorkflowFormatError when ``data`` is not a UI-format workflow, and
    UnsupportedWorkflowError (naming the node and the feature) when it cannot be converted
    faithfully.
    """
    if not is_ui_format(data):
        raise WorkflowFormatError("not a UI-format workflow: it needs 'nodes' and 'links' lists")
    document = read_document(data)  # type: ignore[arg-type]
    converter = _Converter(document, catalogue)
    converter.visit(_Scope(document.root, (), None, None))
    prompt = converter.prompt
    # As the UI does: drop links to nodes that are not in the prompt (muted ones).
    for node in prompt.values():
        inputs = node["inputs"]
        assert isinstance(inputs, dict)
        for name in [key for key, value in inputs.items() if _dangling(value, prompt)]:
            del inputs[name]
    return prompt


def _dangling(value: JsonValue, prompt: Mapping[str, object]) -> bool:
    return isinstance(value, list) and len(value) == 2 and value[0] not in prompt
