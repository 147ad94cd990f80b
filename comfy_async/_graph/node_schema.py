"""Typed views of one node class of ``/object_info``: its inputs by kind, its outputs and flags.

This module owns the interpretation of the input spec forms of protocol doc §4.6: ``[TYPE]`` and
``[TYPE, {opts}]`` sockets, ``INT``/``FLOAT``/``STRING``/``BOOLEAN`` widgets, legacy combos
``[[choices], {opts}]``, new combos ``["COMBO", {"options": [...]}]`` (with or without options),
the dynamic v3 types, and the two shapes of hidden inputs. It builds a frozen
:class:`NodeSchema` from a decoded :class:`~comfy_async.models.NodeInfo`; it does no I/O and never
raises on an unknown form (invariant 12): what it cannot interpret is kept as a :class:`RawInput`.
The public names are re-exported by :mod:`comfy_async.catalogue`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, TypeAlias

import msgspec

from comfy_async._graph.json_values import JsonValue
from comfy_async.models.object_info import NodeInfo

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "BooleanInput",
    "ComboInput",
    "FloatInput",
    "IntInput",
    "LinkInput",
    "NodeInput",
    "NodeOutput",
    "NodeSchema",
    "RawInput",
    "StringInput",
    "node_schema",
]

#: The dynamic input types of schema-based (v3) nodes; the server expands them per prompt.
DYNAMIC_TYPES = frozenset(
    {"COMFY_DYNAMICCOMBO_V3", "COMFY_AUTOGROW_V3", "COMFY_DYNAMICSLOT_V3", "COMFY_MATCHTYPE_V3"}
)
#: Config keys that ask the UI for an upload button beside a combo, and the kind they upload.
UPLOAD_KEYS = {
    "image_upload": "image",
    "animated_image_upload": "image",
    "video_upload": "video",
    "audio_upload": "audio",
}

Number: TypeAlias = int | float


class _Input(msgspec.Struct, frozen=True, kw_only=True):
    """Fields every input kind has."""

    kind: ClassVar[str] = "raw"
    #: The input's name, as sent in a prompt's ``inputs``.
    name: str
    #: Whether the input is in the ``required`` section (else ``optional``).
    required: bool
    #: The spec exactly as the server listed it, e.g. ``["INT", {"min": 0}]``.
    spec: list[JsonValue]
    #: The spec's option dict (``{}`` when it has none), the server's ``extra_info``.
    config: dict[str, JsonValue] = {}

    @property
    def tooltip(self) -> str | None:
        """The input's tooltip, if the node gives one."""
        value = self.config.get("tooltip")
        return value if isinstance(value, str) else None

    @property
    def force_input(self) -> bool:
        """Whether a widget kind is shown as a socket only (``forceInput``): no widget value."""
        return self.config.get("forceInput") is True

    @property
    def is_widget(self) -> bool:
        """Whether the UI shows a widget (a stored value) for this input rather than a socket."""
        return False


class _Widget(_Input, frozen=True, kw_only=True):
    """A widget input (it holds a value) unless ``forceInput`` makes it a socket."""

    @property
    def is_widget(self) -> bool:
        """See :attr:`_Input.is_widget`."""
        return not self.force_input


class LinkInput(_Input, frozen=True, kw_only=True):
    """A socket: the value comes from another node's output (``["MODEL"]``, ``["IMAGE,MASK"]``)."""

    kind: ClassVar[str] = "link"
    #: The type name as listed; may be a comma-separated union or ``*`` (any).
    type: str

    @property
    def types(self) -> tuple[str, ...]:
        """The accepted type names (``"IMAGE,MASK"`` → ``("IMAGE", "MASK")``)."""
        return tuple(part.strip() for part in self.type.split(","))


class IntInput(_Widget, frozen=True, kw_only=True):
    """An ``INT`` widget. ``max`` may exceed ``2**63`` (seeds go up to ``2**64 - 1``)."""

    kind: ClassVar[str] = "INT"
    default: Number | None = None
    min: Number | None = None
    max: Number | None = None
    step: Number | None = None
    #: ``True``, or the default mode (``"fixed"``, ``"randomize"``…), when the UI adds a
    #: control_after_generate value after this widget; ``False`` when it does not say.
    control_after_generate: bool | str = False


class FloatInput(_Widget, frozen=True, kw_only=True):
    """A ``FLOAT`` widget."""

    kind: ClassVar[str] = "FLOAT"
    default: Number | None = None
    min: Number | None = None
    max: Number | None = None
    step: Number | None = None
    #: The rounding the UI applies (a number), or ``False`` for none; ``None`` when unstated.
    round: Number | bool | None = None
    control_after_generate: bool | str = False


class StringInput(_Widget, frozen=True, kw_only=True):
    """A ``STRING`` widget."""

    kind: ClassVar[str] = "STRING"
    default: str | None = None
    multiline: bool = False
    #: Whether the UI expands ``{a|b}`` choices in the text before queueing.
    dynamic_prompts: bool = False


class BooleanInput(_Widget, frozen=True, kw_only=True):
    """A ``BOOLEAN`` widget (a toggle), with optional labels for its two states."""

    kind: ClassVar[str] = "BOOLEAN"
    default: bool | None = None
    label_on: str | None = None
    label_off: str | None = None


class ComboInput(_Widget, frozen=True, kw_only=True):
    """A choice among ``options``: the legacy ``[[...]]`` form or ``["COMBO", {"options"}]``.

    ``options`` is ``None`` for a remote combo whose list the UI fetches from another route
    (``remote``); the server then accepts only values in an empty list, unless the node has its
    own validator (``LoadImageOutput`` does).
    """

    kind: ClassVar[str] = "COMBO"
    options: tuple[JsonValue, ...] | None = None
    multiselect: bool = False
    default: JsonValue = None
    #: Whether the spec used the legacy form (the choices list as the type).
    legacy: bool = False
    control_after_generate: bool | str = False

    @property
    def remote(self) -> dict[str, JsonValue] | None:
        """The remote-list config (``{"route": …}``) when the UI loads the options itself."""
        value = self.config.get("remote")
        return value if isinstance(value, dict) else None

    @property
    def upload(self) -> str | None:
        """``"image"``, ``"video"`` or ``"audio"`` when the UI shows an upload button for it."""
        for key, kind in UPLOAD_KEYS.items():
            if self.config.get(key) is True:
                return kind
        return None


class RawInput(_Input, frozen=True, kw_only=True):
    """An input the server interprets per prompt, kept as sent.

    The dynamic v3 types (``COMFY_DYNAMICCOMBO_V3`` with ``options: [{key, inputs}]``,
    ``COMFY_AUTOGROW_V3`` with a ``template``, ``COMFY_MATCHTYPE_V3``, ``COMFY_DYNAMICSLOT_V3``)
    and any form this library does not know. ``type`` is the spec's first item as text.
    """

    kind: ClassVar[str] = "raw"
    type: str = ""

    @property
    def is_dynamic(self) -> bool:
        """Whether this is one of the dynamic v3 types."""
        return self.type in DYNAMIC_TYPES


NodeInput: TypeAlias = (
    LinkInput | IntInput | FloatInput | StringInput | BooleanInput | ComboInput | RawInput
)
"""One input of a node, typed by its kind."""


class NodeOutput(msgspec.Struct, frozen=True, kw_only=True):
    """One output slot of a node.

    ``output``, ``output_name``, ``output_is_list`` and ``output_tooltips`` may have different
    lengths in custom nodes: the slot count is the length of ``output`` and missing items take
    their defaults (the name falls back to the type).
    """

    index: int
    #: The type name (``"IMAGE"``); ``"COMBO"`` for an output that lists its choices.
    type: str
    name: str
    is_list: bool = False
    tooltip: str | None = None
    #: For a combo output, its choices.
    choices: tuple[str, ...] | None = None
    #: For a v3 match-type output, the template id it follows.
    matchtype: str | None = None


class NodeSchema(msgspec.Struct, frozen=True, kw_only=True):
    """The typed schema of one node class, built from its ``/object_info`` entry.

    ``inputs`` lists the required inputs then the optional ones, in ``input_order``. Hidden
    inputs are filled by the server and must never be sent in a prompt.
    """

    name: str
    display_name: str
    category: str
    description: str
    python_module: str
    inputs: dict[str, NodeInput]
    hidden: dict[str, str]
    outputs: tuple[NodeOutput, ...]
    output_node: bool = False
    has_intermediate_output: bool = False
    is_input_list: bool = False
    deprecated: bool = False
    experimental: bool = False
    dev_only: bool = False
    api_node: bool = False
    search_aliases: tuple[str, ...] = ()
    #: The decoded ``/object_info`` entry this schema was built from.
    info: NodeInfo | None = None

    @property
    def required(self) -> dict[str, NodeInput]:
        """The required inputs, in order."""
        return {name: spec for name, spec in self.inputs.items() if spec.required}

    @property
    def optional(self) -> dict[str, NodeInput]:
        """The optional inputs, in order."""
        return {name: spec for name, spec in self.inputs.items() if not spec.required}

    @property
    def widgets(self) -> dict[str, NodeInput]:
        """The inputs the UI shows as widgets (stored values), in order."""
        return {name: spec for name, spec in self.inputs.items() if spec.is_widget}

    @property
    def return_types(self) -> tuple[str, ...]:
        """The output type names, in slot order."""
        return tuple(output.type for output in self.outputs)


def _number(value: JsonValue) -> Number | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: JsonValue) -> str | None:
    return value if isinstance(value, str) else None


def _control(config: Mapping[str, JsonValue]) -> bool | str:
    value = config.get("control_after_generate")
    if isinstance(value, str):
        return value
    return value is True


def parse_input(name: str, spec: Sequence[JsonValue], *, required: bool) -> NodeInput:
    """Type one input spec; an unknown form becomes a :class:`RawInput`, never an error."""
    raw = list(spec)
    head: JsonValue = raw[0] if raw else None
    options = raw[1] if len(raw) > 1 else None
    config: dict[str, JsonValue] = options if isinstance(options, dict) else {}
    if isinstance(head, list) or head == "COMBO":
        choices = head if isinstance(head, list) else config.get("options")
        return ComboInput(
            name=name,
            required=required,
            spec=raw,
            config=config,
            options=tuple(choices) if isinstance(choices, list) else None,
            multiselect=config.get("multiselect") is True,
            default=config.get("default"),
            legacy=isinstance(head, list),
            control_after_generate=_control(config),
        )
    if not isinstance(head, str) or head in DYNAMIC_TYPES:
        text = head if isinstance(head, str) else repr(head)
        return RawInput(name=name, required=required, spec=raw, config=config, type=text)
    if head == "INT":
        return IntInput(
            name=name,
            required=required,
            spec=raw,
            config=config,
            default=_number(config.get("default")),
            min=_number(config.get("min")),
            max=_number(config.get("max")),
            step=_number(config.get("step")),
            control_after_generate=_control(config),
        )
    if head == "FLOAT":
        rounding = config.get("round")
        return FloatInput(
            name=name,
            required=required,
            spec=raw,
            config=config,
            default=_number(config.get("default")),
            min=_number(config.get("min")),
            max=_number(config.get("max")),
            step=_number(config.get("step")),
            round=rounding if isinstance(rounding, int | float) else None,
            control_after_generate=_control(config),
        )
    if head == "STRING":
        return StringInput(
            name=name,
            required=required,
            spec=raw,
            config=config,
            default=_text(config.get("default")),
            multiline=config.get("multiline") is True,
            dynamic_prompts=config.get("dynamicPrompts") is True,
        )
    if head == "BOOLEAN":
        default = config.get("default")
        return BooleanInput(
            name=name,
            required=required,
            spec=raw,
            config=config,
            default=default if isinstance(default, bool) else None,
            label_on=_text(config.get("label_on")),
            label_off=_text(config.get("label_off")),
        )
    return LinkInput(name=name, required=required, spec=raw, config=config, type=head)


def _ordered(section: Mapping[str, list[JsonValue]], order: list[str]) -> list[str]:
    """The section's names in ``input_order``, then any the order list forgot."""
    names = [name for name in order if name in section]
    names += [name for name in section if name not in names]
    return names


def _outputs(info: NodeInfo) -> tuple[NodeOutput, ...]:
    outputs: list[NodeOutput] = []
    for index, item in enumerate(info.output):
        name = info.output_name[index] if index < len(info.output_name) else None
        is_list = info.output_is_list[index] if index < len(info.output_is_list) else None
        tooltip = info.output_tooltips[index] if index < len(info.output_tooltips) else None
        matchtypes = info.output_matchtypes or []
        type_name = item if isinstance(item, str) else "COMBO"
        outputs.append(
            NodeOutput(
                index=index,
                type=type_name,
                name=name if isinstance(name, str) and name else type_name,
                is_list=is_list is True,
                tooltip=tooltip,
                choices=None if isinstance(item, str) else tuple(item),
                matchtype=matchtypes[index] if index < len(matchtypes) else None,
            )
        )
    return tuple(outputs)


def node_schema(info: NodeInfo) -> NodeSchema:
    """Build the typed :class:`NodeSchema` of one decoded ``/object_info`` entry."""
    inputs: dict[str, NodeInput] = {}
    sections = (
        (info.input.required, info.input_order.required, True),
        (info.input.optional, info.input_order.optional, False),
    )
    for section, order, required in sections:
        for name in _ordered(section, order):
            if name not in inputs:  # a name in both sections: the server reads "required" first
                inputs[name] = parse_input(name, section[name], required=required)
    hidden: dict[str, str] = {}
    for name, spec in info.input.hidden.items():
        # Legacy nodes give a bare string ("PROMPT"), schema-based ones a one-item list.
        value = spec[0] if isinstance(spec, list) and spec else spec
        hidden[name] = value if isinstance(value, str) else repr(value)
    return NodeSchema(
        name=info.name,
        display_name=info.title,
        category=info.category,
        description=info.description,
        python_module=info.python_module,
        inputs=inputs,
        hidden=hidden,
        outputs=_outputs(info),
        output_node=info.output_node,
        has_intermediate_output=info.has_intermediate_output,
        is_input_list=info.is_input_list,
        deprecated=info.deprecated is True,
        experimental=info.experimental is True,
        dev_only=info.dev_only is True,
        api_node=info.api_node is True,
        search_aliases=tuple(info.search_aliases or ()),
        info=info,
    )
