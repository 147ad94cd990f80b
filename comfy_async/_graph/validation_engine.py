"""The server's prompt validation, reproduced offline from the node catalogue (protocol doc §4.2).

:class:`PromptValidation` walks an API-format prompt the way ComfyUI's ``validate_prompt`` and
``validate_inputs`` do (server v0.33.0): every class must exist, output nodes are validated one
by one with the nodes they depend on, each input is checked (missing, link shape, link type,
literal coercion, min/max, combo choice), and results are shared between outputs. Errors are
the server's own dicts (``type``, ``message``, ``details``, ``extra_info``) with its wording.

Where the server raises inside validation (a link to a node that does not exist, an output
index out of range) this module raises the same Python exception type with the same text, so
``exception_during_validation`` and ``exception_during_inner_validation`` come out as the server
reports them. Node-specific validators (``VALIDATE_INPUTS``) cannot run offline; the core ones
are listed in :data:`CUSTOM_VALIDATORS` so that their inputs skip the checks the server skips.
Literal coercions (``"5"`` → ``5`` for INT, ``{"__value__": [...]}`` unwrapped) are applied to the
prompt given, as the server does. No I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, TypeAlias, cast

from comfy_async._graph.dynamic_inputs import finalize_inputs
from comfy_async._graph.json_values import clone

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from comfy_async._graph.json_values import JsonValue
    from comfy_async.catalogue import Catalogue
    from comfy_async.models.object_info import NodeInfo

__all__ = ["CUSTOM_VALIDATORS", "ErrorDict", "NodeResult", "PromptValidation", "types_match"]

ErrorDict: TypeAlias = "dict[str, JsonValue]"
NodeResult: TypeAlias = "tuple[bool, list[ErrorDict], str]"

_ANY = "*"
_MATCHTYPE = "COMFY_MATCHTYPE_V3"
_ALL: frozenset[str] = frozenset({"**"})

CUSTOM_VALIDATORS: Mapping[str, frozenset[str]] = {
    "LoadImage": frozenset({"image"}),
    "LoadImageMask": frozenset({"image"}),
    "LoadImageOutput": frozenset({"image"}),
    "LoadLatent": frozenset({"latent"}),
    "LoadAudio": frozenset({"audio"}),
    "LoadVideo": frozenset({"file"}),
    "Load3D": _ALL,
    "Load3DAdvanced": _ALL,
    "CustomCombo": _ALL,
    "ComfySoftSwitchNode": frozenset({"switch", "on_false", "on_true"}),
    "ModelAttentionBackend": frozenset({"attention"}),
    "SelectModelDevice": frozenset({"device"}),
    "SelectCLIPDevice": frozenset({"device"}),
    "SelectVAEDevice": frozenset({"device"}),
    "FluxProUltraImageNode": frozenset({"aspect_ratio"}),
    "TripoConversionNode": frozenset({"input_types"}),
}
"""Core classes with their own validator → the inputs it takes (``{"**"}``: all of them).

The server skips the min/max and combo checks of those inputs (a validator taking ``**kwargs``
covers every input), and skips link type checks when the validator takes ``input_types``.
Custom node packs have validators too; this library cannot see them.
"""

#: Loader inputs whose validator checks that the named file exists in the input folder.
_FILE_INPUTS: Mapping[str, tuple[str, str]] = {
    "LoadImage": ("image", "Invalid image file: {}"),
    "LoadImageMask": ("image", "Invalid image file: {}"),
    "LoadAudio": ("audio", "Invalid audio file: {}"),
    "LoadVideo": ("file", "Invalid video file: {}"),
    "LoadLatent": ("latent", "Invalid latent file: {}"),
}

_FILE = '  File "ComfyUI/execution.py", line {line}, in {function}\n    <source line redacted>\n'
_OUTER_FRAMES = (("validate_prompt", 1184), ("validate_inputs", 933))
_INNER_FRAMES = (("validate_inputs", 955), ("validate_inputs", 933))


def types_match(received: object, expected: object) -> bool:
    """Whether an output of type ``received`` may feed an input of type ``expected``.

    The server's rule: equal, either is ``*`` or a v3 match type, a combo output into a
    ``COMBO`` input, or comma-separated unions that share a type.
    """
    if received == expected:
        return True
    if _ANY in (received, expected) or _MATCHTYPE in (received, expected):
        return True
    if isinstance(received, list) and expected == "COMBO":
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    got = {part.strip() for part in received.split(",")}
    want = {part.strip() for part in expected.split(",")}
    return _ANY in got or _ANY in want or bool(got & want)


class ServerException(Exception):
    """An exception the server raises while validating, recorded by type name and text."""

    def __init__(self, error: BaseException) -> None:
        self.type_name = type(error).__qualname__
        self.text = str(error)
        super().__init__(f"{self.type_name}: {self.text}")


def traceback_lines(*, inner: bool) -> list[JsonValue]:
    """A traceback in the server's layout (file paths and source lines are not reproducible)."""
    frames = _INNER_FRAMES if inner else _OUTER_FRAMES
    return [_FILE.format(function=function, line=line) for function, line in frames]


class _Context(NamedTuple):
    """What the checks of one node's inputs share."""

    node_id: str
    inputs: dict[str, JsonValue]
    dynamic: bool
    covered: frozenset[str]
    visiting: list[str]


def _schema_based(info: NodeInfo) -> bool:
    # Schema-based (v3) nodes send every flag, with false values; legacy nodes omit false ones.
    return False in (info.dev_only, info.experimental, info.deprecated)


class PromptValidation:
    """One validation run over a prompt (the server's ``validated`` cache lives here)."""

    def __init__(
        self,
        prompt: dict[str, JsonValue],
        catalogue: Catalogue,
        *,
        lenient_missing: bool = False,
        input_files: Collection[str] | None = None,
    ) -> None:
        """Validate ``prompt`` (coerced in place) against ``catalogue``.

        ``lenient_missing`` treats nodes of unknown classes as opaque instead of failing the
        whole prompt (offline use: report every problem at once). ``input_files`` turns on the
        loaders' file checks against these names of the input folder.
        """
        self.prompt = prompt
        self.catalogue = catalogue
        self.lenient_missing = lenient_missing
        self.input_files = input_files
        self.validated: dict[str, NodeResult] = {}

    # ------------------------------------------------------------------ helpers

    def _node(self, node_id: object) -> dict[str, JsonValue]:
        try:
            node = self.prompt[node_id]  # type: ignore[index]
        except (KeyError, TypeError) as error:  # a missing id, or an unhashable "id"
            raise ServerException(error) from error
        if not isinstance(node, dict):
            raise ServerException(TypeError(f"{type(node).__name__!r} object is not a node"))
        return node

    def _field(self, node: dict[str, JsonValue], key: str) -> JsonValue:
        try:
            return node[key]
        except KeyError as error:
            raise ServerException(error) from error

    def _known(self, class_type: JsonValue) -> bool:
        return isinstance(class_type, str) and class_type in self.catalogue

    def _return_type(self, link: list[JsonValue]) -> str | list[str] | None:
        """The type the linked output sends; ``None`` when its class is unknown (lenient)."""
        source = self._node(link[0])
        if self.lenient_missing and "class_type" not in source:
            return None
        class_type = self._field(source, "class_type")
        if not self._known(class_type):
            if self.lenient_missing:
                return None
            raise ServerException(KeyError(class_type))
        assert isinstance(class_type, str)
        info = self.catalogue.info(class_type)
        # Legacy RETURN_TYPES are a tuple, schema-based ones a list: their IndexError texts differ.
        outputs: Sequence[str | list[str]] = (
            list(info.output) if _schema_based(info) else tuple(info.output)
        )
        try:
            return outputs[link[1]]  # type: ignore[index]
        except (IndexError, TypeError) as error:
            raise ServerException(error) from error

    # ------------------------------------------------------------------ one node

    def node(self, node_id: str, visiting: list[str]) -> NodeResult:
        """Validate one node and, through its links, everything it depends on."""
        if node_id in self.validated:
            return self.validated[node_id]
        if node_id in visiting:
            return self._cycle(node_id, visiting)
        node = self._node(node_id)
        inputs = self._field(node, "inputs")
        class_type = self._field(node, "class_type")
        if not isinstance(inputs, dict):
            raise ServerException(TypeError(f"{type(inputs).__name__!r} object has no inputs"))
        assert isinstance(class_type, str)
        info = self.catalogue.info(class_type)
        covered = CUSTOM_VALIDATORS.get(class_type, frozenset())
        if _schema_based(info):
            sections, dynamic = finalize_inputs(info.input.required, info.input.optional, inputs)
        else:
            sections = {
                "required": dict(info.input.required),
                "optional": dict(info.input.optional),
            }
            dynamic = False
        errors: list[ErrorDict] = []
        valid = True
        seen: set[str] = set()
        context = _Context(node_id, inputs, dynamic, covered, visiting)
        for section in ("required", "optional"):
            for name, spec in sections.get(section, {}).items():
                if name in seen:
                    continue
                seen.add(name)
                outcome = self._input(context, name, spec, section)
                if outcome is False:
                    valid = False
                elif isinstance(outcome, dict):
                    errors.append(outcome)
        errors += self._custom_checks(class_type, inputs)
        previous = self.validated.get(node_id, (True, [], node_id))
        result: NodeResult = (
            previous[0] and valid and not errors,
            previous[1] + [error for error in errors if error not in previous[1]],
            node_id,
        )
        self.validated[node_id] = result
        return result

    def _cycle(self, node_id: str, visiting: list[str]) -> NodeResult:
        path = [*visiting[visiting.index(node_id) :], node_id]
        members = list(dict.fromkeys(path))
        text = " -> ".join(f"{item} ({self._node(item).get('class_type')})" for item in path)
        for member in members:
            error: ErrorDict = {
                "type": "dependency_cycle",
                "message": "Dependency cycle detected",
                "details": text,
                "extra_info": {"node_id": member, "cycle_nodes": list(members)},
            }
            self.validated[member] = (False, [error], member)
        return self.validated[node_id]

    def _input(
        self, context: _Context, name: str, spec: list[JsonValue], section: str
    ) -> ErrorDict | bool | None:
        """Check one input: an error dict, ``False`` (an upstream node failed) or ``None``."""
        inputs = context.inputs
        input_type: JsonValue = spec[0] if spec else None
        config = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        if name not in inputs:
            if section != "required":
                return None
            return {
                "type": "required_input_missing",
                "message": "Required input is missing",
                "details": name.rsplit(".", 1)[-1] if context.dynamic else name,
                "extra_info": {"input_name": name},
            }
        value = inputs[name]
        input_config: list[JsonValue] = [input_type, config]
        if isinstance(value, list):
            return self._link(context, name, value, input_type, input_config)
        # Lists are links, so the UI wraps literal lists as {"__value__": [...]} (§4.1).
        if isinstance(value, dict) and "__value__" in value:
            value = inputs[name] = value["__value__"]
        try:
            value = self._coerce(inputs, name, value, input_type)
        except (TypeError, ValueError, OverflowError) as error:
            return {
                "type": "invalid_input_type",
                "message": f"Failed to convert an input value to a {input_type} value",
                "details": f"{name}, {value}, {error}",
                "extra_info": {
                    "input_name": name,
                    "input_config": clone(input_config),
                    "received_value": value,
                    "exception_message": str(error),
                },
            }
        if name in context.covered or context.covered is _ALL:
            return None
        return self._range_and_choice(name, value, input_type, config, input_config)

    def _link(
        self,
        context: _Context,
        name: str,
        value: list[JsonValue],
        input_type: JsonValue,
        input_config: list[JsonValue],
    ) -> ErrorDict | bool | None:
        if len(value) != 2:
            return {
                "type": "bad_linked_input",
                "message": "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                "details": name,
                "extra_info": {
                    "input_name": name,
                    "input_config": clone(input_config),
                    "received_value": value,
                },
            }
        received = self._return_type(value)
        if received is None:  # lenient: the source's class is unknown, nothing more to check
            return None
        if "input_types" not in context.covered and not types_match(received, input_type):
            return {
                "type": "return_type_mismatch",
                "message": "Return type mismatch between linked nodes",
                "details": f"{name}, received_type({received}) mismatch input_type({input_type})",
                "extra_info": {
                    "input_name": name,
                    "input_config": clone(input_config),
                    "received_type": cast("JsonValue", received),
                    "linked_node": value,
                },
            }
        source = value[0]
        assert isinstance(source, str)  # _return_type found it in the prompt
        context.visiting.append(context.node_id)
        try:
            result = self.node(source, context.visiting)
        except ServerException as crash:
            self.validated[source] = (
                False,
                [
                    {
                        "type": "exception_during_inner_validation",
                        "message": "Exception when validating inner node",
                        "details": crash.text,
                        "extra_info": {
                            "input_name": name,
                            "input_config": clone(input_config),
                            "exception_message": crash.text,
                            "exception_type": crash.type_name,
                            "traceback": traceback_lines(inner=True),
                            "linked_node": value,
                        },
                    }
                ],
                source,
            )
            return False
        finally:
            context.visiting.pop()
        return False if result[0] is False else None

    @staticmethod
    def _coerce(
        inputs: dict[str, JsonValue], name: str, value: JsonValue, input_type: JsonValue
    ) -> JsonValue:
        if input_type == "INT":
            value = inputs[name] = int(value)  # type: ignore[arg-type]
        elif input_type == "FLOAT":
            value = inputs[name] = float(value)  # type: ignore[arg-type]
        elif input_type == "STRING":
            value = inputs[name] = str(value)
        elif input_type == "BOOLEAN":
            value = inputs[name] = bool(value)
        return value

    @staticmethod
    def _range_and_choice(
        name: str,
        value: JsonValue,
        input_type: JsonValue,
        config: dict[str, JsonValue],
        input_config: list[JsonValue],
    ) -> ErrorDict | None:
        try:
            if "min" in config and value < config["min"]:  # type: ignore[operator]
                return {
                    "type": "value_smaller_than_min",
                    "message": f"Value {value} smaller than min of {config['min']}",
                    "details": name,
                    "extra_info": {
                        "input_name": name,
                        "input_config": clone(input_config),
                        "received_value": value,
                    },
                }
            if "max" in config and value > config["max"]:  # type: ignore[operator]
                return {
                    "type": "value_bigger_than_max",
                    "message": f"Value {value} bigger than max of {config['max']}",
                    "details": name,
                    "extra_info": {
                        "input_name": name,
                        "input_config": clone(input_config),
                        "received_value": value,
                    },
                }
        except TypeError as error:  # the server compares blindly and raises on mixed types
            raise ServerException(error) from error
        if not (isinstance(input_type, list) or input_type == "COMBO"):
            return None
        choices = input_type if isinstance(input_type, list) else config.get("options", [])
        if not isinstance(choices, list):
            choices = []
        if config.get("multiselect", False) and isinstance(value, list):
            invalid = [item for item in value if item not in choices]
        else:
            invalid = [value] if value not in choices else []
        if not invalid:
            return None
        # The server leaves long lists (model folders) out of the answer.
        long_list = len(choices) > 20
        listing = f"(list of length {len(choices)})" if long_list else str(choices)
        return {
            "type": "value_not_in_list",
            "message": "Value not in list",
            "details": f"{name}: {', '.join(repr(item) for item in invalid)} not in {listing}",
            "extra_info": {
                "input_name": name,
                "input_config": None if long_list else clone(input_config),
                "received_value": value,
            },
        }

    def _custom_checks(self, class_type: str, inputs: dict[str, JsonValue]) -> list[ErrorDict]:
        if self.input_files is None or class_type not in _FILE_INPUTS:
            return []
        name, template = _FILE_INPUTS[class_type]
        value = inputs.get(name)
        if not isinstance(value, str):
            return []
        plain = value.removesuffix(" [input]")
        if plain.endswith("]") or plain in self.input_files:
            return []  # another folder's annotation ("x.png [output]") is not checked here
        return [
            {
                "type": "custom_validation_failed",
                "message": "Custom validation failed for node",
                "details": f"{name} - {template.format(value)}",
                "extra_info": {"input_name": name},
            }
        ]
