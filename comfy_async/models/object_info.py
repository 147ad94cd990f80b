"""The node schema of ``GET /object_info`` and ``GET /object_info/{class}`` (§2.3, §4.6).

:class:`NodeInfo` types one class of the dump. Input specs are kept as decoded JSON lists (or
the bare strings of legacy hidden inputs): interpreting their forms (``[TYPE]``,
``[TYPE, {opts}]``, legacy and new combos, dynamic v3 types) is the node catalogue's job, not
this module's.

The full dump is large (1.6 MB bare, tens of MB with big model folders), so two entry points
exist: :func:`decode_object_info` types every class at once, :func:`decode_object_info_index`
only splits the dump into ``{class: raw}`` and :func:`decode_node_info` types one class when it
is needed (design §7).

"Schema-based" (v3) nodes send every key, with ``null`` for the absent ones; legacy nodes omit
them. Every field below that either kind may omit or null has a default that says "not stated".
"""

from __future__ import annotations

from typing import Any

import msgspec

from comfy_async.models._base import JsonBuffer, Model

__all__ = [
    "NodeInfo",
    "NodeInputOrder",
    "NodeInputs",
    "decode_node_info",
    "decode_object_info",
    "decode_object_info_index",
]


class NodeInputs(Model, frozen=True):
    """The ``input`` sections of a node: input name → spec.

    ``required`` and ``optional`` specs are lists (``["INT", {"min": 0}]``, ``[["a", "b"]]``…).
    ``hidden`` specs are a bare string on legacy nodes (``"PROMPT"``) and a one-element list on
    schema-based ones (``["UNIQUE_ID"]``). Never send hidden inputs in a prompt.
    """

    required: dict[str, list[Any]] = {}
    optional: dict[str, list[Any]] = {}
    hidden: dict[str, str | list[Any]] = {}


class NodeInputOrder(Model, frozen=True):
    """``input_order``: the input names of each section, in display order."""

    required: list[str] = []
    optional: list[str] = []
    hidden: list[str] = []


class NodeInfo(Model, frozen=True):
    """One node class of ``/object_info``: its inputs, outputs and labels.

    ``output`` items are a type name, or a list of choices for a combo output.
    ``output_is_list``, ``output_tooltips`` and ``output_matchtypes`` may contain ``null``.
    ``display_name`` can be ``null`` on schema-based nodes: use :attr:`title`.
    ``price_badge`` describes the price of partner (API) nodes
    (``{"engine": "jsonata", "depends_on", "expr"}``).
    """

    name: str
    display_name: str | None = None
    description: str = ""
    python_module: str = ""
    category: str = ""
    input: NodeInputs = NodeInputs()
    input_order: NodeInputOrder = NodeInputOrder()
    is_input_list: bool = False
    output: list[str | list[str]] = []
    output_is_list: list[bool | None] = []
    output_name: list[str] = []
    output_tooltips: list[str | None] = []
    output_node: bool = False
    has_intermediate_output: bool = False
    search_aliases: list[str] | None = None
    deprecated: bool | None = None
    experimental: bool | None = None
    dev_only: bool | None = None
    api_node: bool | None = None
    price_badge: dict[str, Any] | None = None
    essentials_category: str | None = None
    output_matchtypes: list[str | None] | None = None

    @property
    def title(self) -> str:
        """The name to show: ``display_name``, or the class ``name`` when that is empty."""
        return self.display_name or self.name


_OBJECT_INFO = msgspec.json.Decoder(dict[str, NodeInfo])
_OBJECT_INFO_INDEX = msgspec.json.Decoder(dict[str, msgspec.Raw])
_NODE_INFO = msgspec.json.Decoder(NodeInfo)


def decode_object_info(buf: JsonBuffer) -> dict[str, NodeInfo]:
    """Decode ``GET /object_info`` (or ``/object_info/{class}``, ``{}`` if unknown) at once."""
    return _OBJECT_INFO.decode(buf)


def decode_object_info_index(buf: JsonBuffer) -> dict[str, msgspec.Raw]:
    """Split ``GET /object_info`` into ``{class: raw schema}`` without decoding any schema."""
    return _OBJECT_INFO_INDEX.decode(buf)


def decode_node_info(raw: JsonBuffer) -> NodeInfo:
    """Decode one class's schema, e.g. a value of :func:`decode_object_info_index`."""
    return _NODE_INFO.decode(raw)
