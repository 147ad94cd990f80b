"""The inputs a schema-based (v3) node really has for one prompt, as the server works them out.

Dynamic v3 inputs are declared once in ``/object_info`` and expanded by the server from the
values the prompt sends (protocol doc §4.6): a ``COMFY_DYNAMICCOMBO_V3`` adds the inputs of the
chosen option under dotted names (``resize_type.width``), a ``COMFY_AUTOGROW_V3`` adds numbered or
named copies of its template (``values.a``, ``values.b``…), a ``COMFY_DYNAMICSLOT_V3`` adds its
inputs once the slot is used. :func:`finalize_inputs` reproduces that expansion from the raw specs
so that offline validation checks the same inputs as the server. Pure functions, no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from comfy_async._graph.json_values import JsonValue

__all__ = ["Sections", "finalize_inputs"]

Sections: TypeAlias = "dict[str, dict[str, list[JsonValue]]]"
"""Input sections (``required``, ``optional``) → input name → raw spec list."""

_Expander: TypeAlias = "Callable[[_Expansion, list[JsonValue], str, list[str]], None]"


def _join(prefix: list[str], name: str | None = None) -> str:
    parts = [*prefix, name] if name is not None else prefix
    return ".".join(parts)


def _config(spec: list[JsonValue]) -> dict[str, JsonValue]:
    config = spec[1] if len(spec) > 1 else None
    return config if isinstance(config, dict) else {}


class _Expansion:
    """One expansion: the finalized sections and whether any dynamic path was recorded."""

    def __init__(self, live: Mapping[str, JsonValue]) -> None:
        self.live = live
        self.sections: Sections = {"required": {}, "optional": {}}
        self.dynamic = False

    def parse(self, sections: Mapping[str, JsonValue], prefix: list[str]) -> None:
        for section, specs in sections.items():
            if not isinstance(specs, dict):
                continue
            for name, spec in specs.items():
                if not isinstance(spec, list) or not spec:
                    continue
                io_type = spec[0]
                expander = _EXPANDERS.get(io_type) if isinstance(io_type, str) else None
                if expander is not None:
                    expander(self, spec, section, [*prefix, name])
                else:
                    self.sections.setdefault(section, {})[_join(prefix, name)] = spec
                    if prefix:
                        self.dynamic = True


def _autogrow(run: _Expansion, spec: list[JsonValue], section: str, prefix: list[str]) -> None:
    template = _config(spec).get("template")
    if not isinstance(template, dict):
        return
    low = template.get("min", 1)
    minimum = low if isinstance(low, int) else 1
    names_value = template.get("names")
    if isinstance(names_value, list):
        names = [str(name) for name in names_value]
    else:
        high = template.get("max", 1)
        names = [f"{template.get('prefix', '')}{index}" for index in range(int(str(high)))]
    template_input: list[JsonValue] | None = None
    template_required = True
    inner = template.get("input")
    for inner_section, specs in inner.items() if isinstance(inner, dict) else ():
        if isinstance(specs, dict) and specs:
            first = next(iter(specs.values()))
            template_input = first if isinstance(first, list) else None
            template_required = inner_section == "required"
            break
    if template_input is None:
        return
    live_copies: dict[str, JsonValue] = {}
    for index, name in enumerate(names):
        expected = _join(prefix, name)
        target = "required" if index < minimum and template_required else "optional"
        run.sections[target][expected] = template_input
        if expected in run.live:
            copies = live_copies.setdefault(target, {})
            assert isinstance(copies, dict)
            copies[name] = template_input
    # Even with no copy sent the server records a default path: the node is "dynamic".
    run.dynamic = True
    run.parse(live_copies, prefix)


def _dynamic_combo(run: _Expansion, spec: list[JsonValue], section: str, prefix: list[str]) -> None:
    path = _join(prefix)
    if path not in run.live:
        return
    key = run.live[path]
    options = _config(spec).get("options")
    for option in options if isinstance(options, list) else ():
        if isinstance(option, dict) and option.get("key") == key:
            inputs = option.get("inputs")
            run.parse(inputs if isinstance(inputs, dict) else {}, prefix)
            run.sections.setdefault(section, {})[path] = spec
            run.dynamic = True
            return


def _dynamic_slot(run: _Expansion, spec: list[JsonValue], section: str, prefix: list[str]) -> None:
    path = _join(prefix)
    if path not in run.live:
        return
    inputs = _config(spec).get("inputs")
    run.parse(inputs if isinstance(inputs, dict) else {}, prefix)
    run.sections.setdefault(section, {})[path] = spec
    run.dynamic = True


_EXPANDERS: dict[str, _Expander] = {
    "COMFY_AUTOGROW_V3": _autogrow,
    "COMFY_DYNAMICCOMBO_V3": _dynamic_combo,
    "COMFY_DYNAMICSLOT_V3": _dynamic_slot,
}


def finalize_inputs(
    required: Mapping[str, list[JsonValue]],
    optional: Mapping[str, list[JsonValue]],
    live: Mapping[str, JsonValue],
) -> tuple[Sections, bool]:
    """The node's ``required`` and ``optional`` inputs for the values ``live`` sends.

    Returns the finalized sections and whether the node has dynamic paths (the server then names
    a missing input by its last dotted part in ``required_input_missing`` details).
    """
    run = _Expansion(live)
    run.parse({"required": dict(required), "optional": dict(optional)}, [])
    return run.sections, run.dynamic
