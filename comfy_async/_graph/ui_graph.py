"""The graph of a UI-format workflow (the ``nodes``/``links`` file the ComfyUI UI saves), read.

Parses the litegraph JSON into small typed records: nodes with their input and output slots and
stored widget values, links (both the list form ``[id, origin, slot, target, slot, type]`` and
the object form), and subgraph definitions (``definitions.subgraphs``) with their input and
output ports. Node ids are kept as text. Malformed structure raises
:class:`~comfy_async.errors.WorkflowFormatError`; nothing is interpreted against a catalogue
here. No I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from comfy_async.errors import WorkflowFormatError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from comfy_async._graph.json_values import JsonValue

__all__ = [
    "BYPASS",
    "MUTED",
    "SUBGRAPH_INPUT",
    "SUBGRAPH_OUTPUT",
    "UiDocument",
    "UiGraph",
    "UiLink",
    "UiNode",
    "UiOutput",
    "UiPort",
    "UiSlot",
    "read_document",
]

MUTED = 2  # litegraph mode NEVER: the node is left out of the prompt
BYPASS = 4  # the node is skipped and a matching input is passed through
SUBGRAPH_INPUT = "-10"  # the id of a subgraph's input port node in its links
SUBGRAPH_OUTPUT = "-20"  # the id of a subgraph's output port node


class UiSlot(NamedTuple):
    """An input slot of a node: its name, type, incoming link id and widget, if converted."""

    name: str
    type: str
    link: int | None
    widget: str | None


class UiOutput(NamedTuple):
    """An output slot of a node."""

    name: str
    type: str


class UiLink(NamedTuple):
    """A link from output ``origin_slot`` of ``origin`` to input ``target_slot`` of ``target``."""

    id: int
    origin: str
    origin_slot: int
    target: str
    target_slot: int


class UiPort(NamedTuple):
    """An input or output port of a subgraph definition and the inner links it carries."""

    name: str
    type: str
    links: tuple[int, ...]


class UiNode(NamedTuple):
    """One node as saved: class (or subgraph id) in ``type``, mode, title and widget values."""

    id: str
    type: str
    mode: int
    title: str | None
    order: int
    inputs: tuple[UiSlot, ...]
    outputs: tuple[UiOutput, ...]
    widgets_values: list[JsonValue] | dict[str, JsonValue] | None
    properties: dict[str, JsonValue]


class UiGraph(NamedTuple):
    """The root graph or one subgraph definition."""

    id: str
    name: str
    nodes: dict[str, UiNode]
    links: dict[int, UiLink]
    inputs: tuple[UiPort, ...]
    outputs: tuple[UiPort, ...]


class UiDocument(NamedTuple):
    """A whole UI-format file: the root graph, subgraph definitions and legacy group nodes."""

    root: UiGraph
    subgraphs: dict[str, UiGraph]
    group_nodes: frozenset[str]


def _int(value: JsonValue, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WorkflowFormatError(f"{what} is not a number: {value!r:.60}")
    return int(value)


def _id(value: JsonValue, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise WorkflowFormatError(f"{what} is not an id: {value!r:.60}")
    return str(int(value)) if isinstance(value, float) else str(value)


def _link(raw: JsonValue) -> UiLink:
    if isinstance(raw, list) and len(raw) >= 5:
        link_id, origin, origin_slot, target, target_slot = raw[:5]
    elif isinstance(raw, dict):
        link_id, origin, origin_slot = raw.get("id"), raw.get("origin_id"), raw.get("origin_slot")
        target, target_slot = raw.get("target_id"), raw.get("target_slot")
    else:
        raise WorkflowFormatError(f"a link is neither a list nor an object: {raw!r:.60}")
    return UiLink(
        id=_int(link_id, "link id"),
        origin=_id(origin, "link origin"),
        origin_slot=_int(origin_slot, "link origin slot"),
        target=_id(target, "link target"),
        target_slot=_int(target_slot, "link target slot"),
    )


def _text(value: JsonValue) -> str:
    return value if isinstance(value, str) else ""


def _slot(raw: JsonValue) -> UiSlot:
    if not isinstance(raw, dict):
        raise WorkflowFormatError(f"a node input is not an object: {raw!r:.60}")
    widget = raw.get("widget")
    widget_name = widget.get("name") if isinstance(widget, dict) else None
    link = raw.get("link")
    return UiSlot(
        name=_text(raw.get("name")),
        type=str(raw.get("type", "")),
        link=_int(link, "input link") if link is not None else None,
        widget=widget_name if isinstance(widget_name, str) else None,
    )


def _node(raw: JsonValue) -> UiNode:
    if not isinstance(raw, dict):
        raise WorkflowFormatError(f"a node is not an object: {raw!r:.60}")
    node_id = _id(raw.get("id"), "node id")
    node_type = raw.get("type")
    if not isinstance(node_type, str):
        raise WorkflowFormatError(f"node {node_id} has no type")
    inputs = raw.get("inputs") or []
    outputs = raw.get("outputs") or []
    values = raw.get("widgets_values")
    properties = raw.get("properties")
    title = raw.get("title")
    mode = raw.get("mode", 0)
    order = raw.get("order", 0)
    return UiNode(
        id=node_id,
        type=node_type,
        mode=mode if isinstance(mode, int) else 0,
        title=title if isinstance(title, str) else None,
        order=order if isinstance(order, int) else 0,
        inputs=tuple(_slot(item) for item in (inputs if isinstance(inputs, list) else [])),
        outputs=tuple(
            UiOutput(_text(item.get("name")), str(item.get("type", "")))
            for item in (outputs if isinstance(outputs, list) else [])
            if isinstance(item, dict)
        ),
        widgets_values=values if isinstance(values, list | dict) else None,
        properties=properties if isinstance(properties, dict) else {},
    )


def _ports(raw: JsonValue) -> tuple[UiPort, ...]:
    ports: list[UiPort] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        links = item.get("linkIds")
        ports.append(
            UiPort(
                name=_text(item.get("name")),
                type=str(item.get("type", "")),
                links=tuple(_int(link, "port link") for link in links)
                if isinstance(links, list)
                else (),
            )
        )
    return tuple(ports)


def _graph(raw: Mapping[str, JsonValue], graph_id: str) -> UiGraph:
    nodes_raw = raw.get("nodes")
    links_raw = raw.get("links")
    if not isinstance(nodes_raw, list) or not isinstance(links_raw, list):
        raise WorkflowFormatError(f"graph {graph_id!r} has no 'nodes' and 'links' lists")
    nodes: dict[str, UiNode] = {}
    for item in nodes_raw:
        node = _node(item)
        if node.id in nodes:
            raise WorkflowFormatError(f"node id {node.id} appears twice in graph {graph_id!r}")
        nodes[node.id] = node
    links = {link.id: link for link in map(_link, links_raw)}
    name = raw.get("name")
    return UiGraph(
        id=graph_id,
        name=name if isinstance(name, str) else graph_id,
        nodes=nodes,
        links=links,
        inputs=_ports(raw.get("inputs")),
        outputs=_ports(raw.get("outputs")),
    )


def read_document(data: Mapping[str, JsonValue]) -> UiDocument:
    """Read a UI-format workflow; raises WorkflowFormatError when its structure is broken."""
    subgraphs: dict[str, UiGraph] = {}
    definitions = data.get("definitions")
    found = definitions.get("subgraphs") if isinstance(definitions, dict) else None
    for item in found if isinstance(found, list) else []:
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            graph_id = str(item["id"])
            subgraphs[graph_id] = _graph(item, graph_id)
    extra = data.get("extra")
    groups = extra.get("groupNodes") if isinstance(extra, dict) else None
    return UiDocument(
        root=_graph(data, "root"),
        subgraphs=subgraphs,
        group_nodes=frozenset(groups) if isinstance(groups, dict) else frozenset(),
    )
