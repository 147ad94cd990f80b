"""Stored widget values of a UI-format node, mapped to input names through the node's schema.

The UI saves a node's widget values as a list in widget order (``widgets_values``), not by
name. The order is the node's input order (required then optional, ``input_order``) keeping the
inputs shown as widgets, plus values the UI adds that are never sent: a
``control_after_generate`` mode after seed-like numbers (and a filter after a controlled combo),
an ``upload`` button after the required inputs of a loader with an upload combo, an ``audioUI``
player on audio nodes. Dynamic v3 combos store the chosen key followed by the widgets of that
choice (``resize_type.width``…). Some nodes store an object keyed by widget name instead.

:func:`widget_inputs` walks that layout and checks every value against the kind of widget it
lands on; a value that does not fit, or more values than the schema has widgets, raises
:class:`~comfy_async.errors.UnsupportedWorkflowError` naming the node rather than producing a
wrong graph. Values missing at the end (a schema that grew since the file was saved) take the
schema default, as the UI does. Text widgets with ``dynamicPrompts`` that use ``{a|b}`` choices
are refused too: the UI picks a choice at random when it queues. No I/O.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from comfy_async._graph.node_schema import (
    BooleanInput,
    ComboInput,
    FloatInput,
    IntInput,
    LinkInput,
    RawInput,
    StringInput,
    parse_input,
)
from comfy_async.errors import UnsupportedWorkflowError

if TYPE_CHECKING:
    from comfy_async._graph.json_values import JsonValue
    from comfy_async._graph.node_schema import NodeInput, NodeSchema
    from comfy_async._graph.ui_graph import UiNode

__all__ = ["CONTROL_VALUES", "widget_inputs"]

CONTROL_VALUES = frozenset({"fixed", "increment", "decrement", "randomize", "increment-wrap"})
_AUDIO_UI_CLASSES = frozenset(
    {"LoadAudio", "SaveAudio", "PreviewAudio", "SaveAudioMP3", "SaveAudioOpus", "SaveAudioAdvanced"}
)
_SEED_NAMES = ("seed", "noise_seed")
#: Custom widget types the UI precedes with button widgets (stored as values too).
_BUTTONS_BEFORE = {"LOAD_3D": 3}
_MISSING = object()
#: A dynamic-prompt choice group, ``{a|b}``: the UI picks one option when it queues.
_CHOICES = re.compile(r"\{[^{}]*\|[^{}]*\}")
_KINDS: dict[str, type[NodeInput]] = {
    "INT": IntInput,
    "FLOAT": FloatInput,
    "STRING": StringInput,
    "BOOLEAN": BooleanInput,
    "COMBO": ComboInput,
}


class _Walk:
    """One pass over a node's stored values."""

    def __init__(self, node: UiNode, schema: NodeSchema, where: str) -> None:
        self.node = node
        self.where = where
        self.schema = schema
        values = node.widgets_values
        self.by_name = values if isinstance(values, dict) else None
        self.values: list[JsonValue] = values if isinstance(values, list) else []
        self.cursor = 0
        self.result: dict[str, JsonValue] = {}
        self.converted = {slot.name for slot in node.inputs if slot.widget is not None}
        self.linked = {slot.name for slot in node.inputs if slot.link is not None}

    def fail(self, problem: str) -> UnsupportedWorkflowError:
        return UnsupportedWorkflowError(f"node {self.where} ({self.node.type}): {problem}")

    def take(self, name: str | None) -> object:
        """The next stored value (positional), or the one named ``name`` (object form)."""
        if self.by_name is not None:
            return self.by_name.get(name, _MISSING) if name is not None else _MISSING
        if self.cursor >= len(self.values):
            return _MISSING
        value = self.values[self.cursor]
        self.cursor += 1
        return value

    def filler(self, what: str, allowed: frozenset[str] | None = None) -> None:
        """A stored value the UI keeps but never sends (control mode, upload button…)."""
        value = self.take(None)
        if allowed is not None and value is not _MISSING and value not in allowed:
            raise self.fail(f"expected a {what} value here, found {value!r:.60}")

    # ------------------------------------------------------------------ widgets

    def widget_spec(self, spec: NodeInput) -> NodeInput | None:
        """The widget this input shows, if any (socket-typed specs may still be widgets)."""
        if isinstance(spec, LinkInput):
            if spec.type in _BUTTONS_BEFORE:
                return spec
            shown = spec.config.get("widgetType")
            kind = _KINDS.get(shown) if isinstance(shown, str) else None
            if kind is not None and not spec.force_input:
                return parse_input(spec.name, [shown, spec.config], required=spec.required)
            if spec.config.get("socketless") is True and not spec.force_input:
                return spec  # a custom widget (colour, curve, bounding box…): value kept as is
            return None
        if isinstance(spec, RawInput):
            return None
        if spec.is_widget or spec.name in self.converted:
            return spec
        return None

    def value(self, spec: NodeInput) -> None:
        if isinstance(spec, LinkInput):
            for _ in range(_BUTTONS_BEFORE.get(spec.type, 0)):
                self.filler("button")
        stored = self.take(spec.name)
        if stored is _MISSING:
            stored = self.default(spec)
        self.check(spec, stored)
        self.result[spec.name] = stored  # type: ignore[assignment]
        if isinstance(spec, IntInput | FloatInput) and self.has_control(spec):
            self.filler("control_after_generate", CONTROL_VALUES)
        elif isinstance(spec, ComboInput) and spec.control_after_generate is not False:
            self.filler("control_after_generate", CONTROL_VALUES)
            if not spec.multiselect:
                self.filler("control_filter_list")

    @staticmethod
    def has_control(spec: IntInput | FloatInput) -> bool:
        if "control_after_generate" in spec.config:
            return spec.control_after_generate is not False
        return isinstance(spec, IntInput) and spec.name in _SEED_NAMES

    def default(self, spec: NodeInput) -> JsonValue:
        if isinstance(spec, StringInput):
            return spec.default if spec.default is not None else ""
        if isinstance(spec, BooleanInput):
            return spec.default if spec.default is not None else False
        if isinstance(spec, IntInput | FloatInput) and spec.default is not None:
            return spec.default
        if isinstance(spec, ComboInput):
            if spec.default is not None:
                return spec.default
            if spec.options:
                return spec.options[0]
        if isinstance(spec, LinkInput):
            # A custom widget the UI no longer stores (serialize: false) sends its default.
            return spec.config.get("default")
        raise self.fail(f"no stored value and no default for widget {spec.name!r}")

    def check(self, spec: NodeInput, value: object) -> None:
        fits = True
        if isinstance(spec, IntInput | FloatInput):
            fits = isinstance(value, int | float) and not isinstance(value, bool)
        elif isinstance(spec, BooleanInput):
            fits = isinstance(value, bool)
        elif isinstance(spec, StringInput):
            fits = isinstance(value, str)
        elif isinstance(spec, ComboInput):
            fits = value is not None and not isinstance(value, dict)
        if (
            isinstance(spec, StringInput)
            and spec.dynamic_prompts
            and isinstance(value, str)
            and _CHOICES.search(value)
        ):
            raise self.fail(
                f"widget {spec.name!r} uses dynamic-prompt choices ({{a|b}}), which the UI "
                "resolves at random when queueing; choose one in the text first"
            )
        if not fits:
            raise self.fail(
                f"the stored value {value!r:.60} does not fit widget {spec.name!r} "
                f"({spec.kind}): the file was saved with another version of this node"
            )

    # ------------------------------------------------------------------ layout

    def inputs(self, specs: list[NodeInput], *, top: bool) -> None:
        uploads = False
        for index, spec in enumerate(specs):
            if isinstance(spec, RawInput):
                self.dynamic(spec)
            else:
                shown = self.widget_spec(spec)
                if shown is not None:
                    self.value(shown)
                    uploads = uploads or (
                        isinstance(shown, ComboInput) and shown.upload is not None
                    )
            last_required = spec.required and (
                index + 1 == len(specs) or not specs[index + 1].required
            )
            if top and last_required:
                self.after_required(uploads=uploads)
        if top and not any(spec.required for spec in specs):
            self.after_required(uploads=False)

    def after_required(self, *, uploads: bool) -> None:
        # The UI appends these to the required inputs of the node definition.
        if self.node.type in _AUDIO_UI_CLASSES:
            self.filler("audioUI")
        if uploads:
            self.filler("upload")

    def dynamic(self, spec: RawInput) -> None:
        if spec.type == "COMFY_DYNAMICSLOT_V3" and spec.name in self.linked:
            raise self.fail(f"the dynamic slot {spec.name!r} is connected (not supported yet)")
        if spec.type != "COMFY_DYNAMICCOMBO_V3":
            return  # autogrow and match-type inputs are sockets only
        key = self.take(spec.name)
        options = spec.config.get("options")
        choices = (
            [item for item in options if isinstance(item, dict)]
            if isinstance(options, list)
            else []
        )
        if key is _MISSING:
            key = choices[0].get("key") if choices else None
        chosen = next((item for item in choices if item.get("key") == key), None)
        if chosen is None:
            raise self.fail(f"{key!r:.60} is not a choice of the dynamic combo {spec.name!r}")
        self.result[spec.name] = key  # type: ignore[assignment]
        inner = chosen.get("inputs")
        nested: list[NodeInput] = []
        for section in ("required", "optional"):
            specs = inner.get(section) if isinstance(inner, dict) else None
            for name, item in specs.items() if isinstance(specs, dict) else ():
                if isinstance(item, list):
                    full = f"{spec.name}.{name}"
                    nested.append(parse_input(full, item, required=section == "required"))
        self.inputs(nested, top=False)


def widget_inputs(node: UiNode, schema: NodeSchema, where: str) -> dict[str, JsonValue]:
    """The inputs a UI node's stored widget values stand for, by name, in widget order.

    ``where`` names the node in errors (its id in the prompt). Output nodes may store more
    values than their schema has widgets: the UI appends display widgets to them (previews,
    3D viewers). Raises UnsupportedWorkflowError when the values do not fit the schema.
    """
    walk = _Walk(node, schema, where)
    walk.inputs(list(schema.inputs.values()), top=True)
    extra = walk.by_name is None and walk.cursor < len(walk.values)
    if extra and not schema.output_node:
        raise walk.fail(
            f"it stores {len(walk.values)} widget values but this server's {node.type} has "
            f"{walk.cursor} widgets (saved with another version of the node, or widgets "
            "the UI adds that this converter does not know)"
        )
    return walk.result
