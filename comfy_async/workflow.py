"""API-format workflows: load, find nodes, edit inputs, check offline, serialise for ``/prompt``.

A :class:`Workflow` is the ``prompt`` of ``POST /prompt`` (protocol doc §4.1): node id →
``{"class_type", "inputs", "_meta"?}``. An input whose value is a two-item list is a link
``[node_id, output_index]``; a literal list is sent wrapped as ``{"__value__": [...]}``. This
module edits that graph and nothing else: it is pure, and touches the disk only in
:meth:`Workflow.from_file` and :meth:`Workflow.save`, on the path the caller names.

A workflow saved from the UI (``nodes``/``links``) is not this format. Loading one raises
:class:`~comfy_async.errors.WorkflowFormatError` explaining how to export the API format, or is
converted when a :class:`~comfy_async.catalogue.Catalogue` is given
(:mod:`comfy_async._graph.ui_format`). Offline validation lives in
:mod:`comfy_async._graph.validation`.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from comfy_async._graph.json_values import JsonValue, clone, dumps, loads
from comfy_async._graph.node_schema import ComboInput
from comfy_async._graph.seeds import seed_bounds, seed_inputs
from comfy_async._graph.ui_format import convert_ui_workflow, is_ui_format
from comfy_async._graph.validation import Problem, find_problems, server_response
from comfy_async._graph.workflow_checks import (
    UI_FORMAT_HELP,
    Link,
    check_prompt_shape,
    check_value,
    link_value,
    literal_value,
)
from comfy_async.errors import (
    AmbiguousNodeError,
    ConfigurationError,
    PromptValidationError,
    UnknownInputError,
    UnknownNodeError,
    WorkflowError,
    WorkflowFormatError,
)
from comfy_async.models.files import FileRef, UploadResult
from comfy_async.models.prompts import NodeError, PromptErrorInfo

if TYPE_CHECKING:
    import os
    from collections.abc import Iterator, Mapping, Sequence

    from comfy_async.catalogue import Catalogue

__all__ = [
    "KNOWN_OUTPUT_CLASSES",
    "JsonValue",
    "Link",
    "Problem",
    "Workflow",
    "WorkflowNode",
    "is_ui_format",
]

KNOWN_OUTPUT_CLASSES = frozenset(
    {
        "SaveImage",
        "PreviewImage",
        "SaveAnimatedWEBP",
        "SaveAnimatedPNG",
        "SaveWEBM",
        "SaveVideo",
        "SaveAudio",
        "SaveAudioMP3",
        "SaveAudioOpus",
        "PreviewAudio",
        "SaveLatent",
        "SaveGLB",
        "Preview3D",
        "PreviewAny",
        "SaveImageWebsocket",
        "VHS_VideoCombine",
    }
)
"""Output classes recognised without a catalogue (core savers and previews, VideoHelperSuite).

With a catalogue, output nodes are the classes flagged ``output_node`` instead.
"""


class WorkflowNode(msgspec.Struct, frozen=True, kw_only=True):
    """A read-only snapshot of one node: its id, class, title and inputs (as stored)."""

    id: str
    class_type: str | None
    title: str | None
    inputs: dict[str, JsonValue]

    def links(self) -> dict[str, Link]:
        """The linked inputs, by name."""
        found = {name: _as_link(value) for name, value in self.inputs.items()}
        return {name: link for name, link in found.items() if link is not None}


def _as_link(value: object) -> Link | None:
    """The link a stored input value stands for, if it is one (``[node_id, output]``)."""
    if isinstance(value, list) and len(value) == 2:
        source, output = value
        if isinstance(source, str | int) and type(output) is int:
            return Link(str(source), output)
    return None


class Workflow:
    """An API-format ComfyUI workflow (the ``prompt`` of ``POST /prompt``), ready to edit.

    ::

        wf = Workflow.from_file("txt2img_api.json", catalogue=catalogue)
        wf.set("6", text="a lighthouse at dawn")        # by id
        wf.set("KSampler", steps=30)                    # by class (if only one node has it)
        wf.randomize_seeds()
        wf.set_image("Load Image", upload)              # an UploadResult or a file name
        problems = wf.validate()                        # what the server would reject
        body = {"prompt": wf.to_prompt()}

    Nodes are addressed by id, by ``_meta.title`` or by class type, in that order; a title or
    class shared by several nodes raises :class:`~comfy_async.errors.AmbiguousNodeError`. With a
    ``catalogue``, input names, link targets and output indexes are checked when editing.
    Workflows compare equal when their prompts are equal.
    """

    __slots__ = ("_nodes", "catalogue")

    def __init__(
        self, prompt: Mapping[str, object] | None = None, *, catalogue: Catalogue | None = None
    ) -> None:
        """Copy ``prompt`` (an API-format graph); raises WorkflowFormatError for anything else."""
        #: The node catalogue used to check edits and to validate, if any.
        self.catalogue = catalogue
        self._nodes: dict[str, dict[str, JsonValue]] = check_prompt_shape(
            {} if prompt is None else prompt
        )

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_dict(
        cls, data: Mapping[str, object], *, catalogue: Catalogue | None = None
    ) -> Workflow:
        """Load an API-format graph; a UI-format one is converted when ``catalogue`` is given."""
        if is_ui_format(data):
            if catalogue is None:
                raise WorkflowFormatError(UI_FORMAT_HELP)
            return cls.from_ui(data, catalogue)
        return cls(data, catalogue=catalogue)

    @classmethod
    def from_json(
        cls, text: str | bytes | bytearray, *, catalogue: Catalogue | None = None
    ) -> Workflow:
        """Load from JSON text (API format, or UI format with a ``catalogue``)."""
        try:
            data = loads(text)
        except ValueError as error:
            raise WorkflowFormatError(f"not JSON: {error}") from error
        if not isinstance(data, dict):
            raise WorkflowFormatError("a workflow must be a JSON object")
        return cls.from_dict(data, catalogue=catalogue)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, catalogue: Catalogue | None = None
    ) -> Workflow:
        """Load a workflow file (API format, or UI format with a ``catalogue``)."""
        return cls.from_json(Path(path).read_bytes(), catalogue=catalogue)

    @classmethod
    def from_ui(cls, data: Mapping[str, object], catalogue: Catalogue) -> Workflow:
        """Convert a UI-format workflow the way the UI queues it, using ``catalogue``.

        Raises :class:`~comfy_async.errors.UnsupportedWorkflowError` naming the node and the
        feature the converter cannot translate faithfully (group nodes, classes the catalogue
        lacks, widget values that do not fit the node's schema…).
        """
        return cls(convert_ui_workflow(data, catalogue), catalogue=catalogue)

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[str]:
        return iter(self._nodes)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Workflow):
            return NotImplemented
        return self._nodes == other._nodes

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"<Workflow {len(self._nodes)} nodes>"

    def ids(self) -> list[str]:
        """Every node id, in order."""
        return list(self._nodes)

    def find(self, *, class_type: str | None = None, title: str | None = None) -> list[str]:
        """Ids of the nodes of this class and/or with this ``_meta.title``."""
        return [
            node_id
            for node_id, node in self._nodes.items()
            if (class_type is None or node.get("class_type") == class_type)
            and (title is None or _title(node) == title)
        ]

    def resolve(self, ref: str | int) -> str:
        """The id of the node ``ref`` names: an id, else a unique title, else a unique class."""
        key = str(ref)
        if key in self._nodes:
            return key
        for matches in (self.find(title=key), self.find(class_type=key)):
            if len(matches) == 1:
                return matches[0]
            if matches:
                raise AmbiguousNodeError(key, matches)
        raise UnknownNodeError(key, "not an id, title or class type of this workflow")

    def node(self, ref: str | int) -> WorkflowNode:
        """A snapshot of the node ``ref`` names (see :meth:`resolve`)."""
        node_id = self.resolve(ref)
        node = self._nodes[node_id]
        class_type = node.get("class_type")
        inputs = node.get("inputs")
        return WorkflowNode(
            id=node_id,
            class_type=class_type if isinstance(class_type, str) else None,
            title=_title(node),
            inputs=clone(inputs) if isinstance(inputs, dict) else {},  # type: ignore[arg-type]
        )

    def get(self, ref: str | int, name: str) -> JsonValue | Link:
        """The value of one input: a :class:`Link`, or the literal (``__value__`` unwrapped)."""
        node_id = self.resolve(ref)
        inputs = self._inputs(node_id)
        if name not in inputs:
            raise UnknownInputError(node_id, name, "it is not set on this node")
        value = inputs[name]
        link = _as_link(value)
        if link is not None:
            return link
        if isinstance(value, dict) and set(value) == {"__value__"}:
            return clone(value["__value__"])
        return clone(value)

    def output_nodes(self) -> list[str]:
        """Ids of the output nodes (a prompt runs only what they need).

        With a catalogue: nodes of ``output_node`` classes. Without: nodes of the known savers
        and previews (:data:`KNOWN_OUTPUT_CLASSES`).
        """
        found: list[str] = []
        for node_id, node in self._nodes.items():
            class_type = node.get("class_type")
            if not isinstance(class_type, str):
                continue
            if self.catalogue is not None and class_type in self.catalogue:
                if self.catalogue.node(class_type).output_node:
                    found.append(node_id)
            elif class_type in KNOWN_OUTPUT_CLASSES:
                found.append(node_id)
        return found

    # ------------------------------------------------------------------ editing

    def _inputs(self, node_id: str) -> dict[str, JsonValue]:
        inputs = self._nodes[node_id].setdefault("inputs", {})
        if not isinstance(inputs, dict):
            raise WorkflowFormatError(f"node {node_id} has inputs that are not an object")
        return inputs

    def set(self, ref: str | int, /, **inputs: object) -> None:
        """Set inputs of one node: ``wf.set("6", text="…", seed=5)``.

        A list or tuple is a literal (sent wrapped as ``{"__value__": [...]}``); use
        :class:`Link` to link an input. For names that are not Python identifiers
        (``"resize_type.width"``) use :meth:`set_input`. Nothing is changed if any input fails.
        """
        node_id = self.resolve(ref)
        encoded = {name: self._encode(node_id, name, value) for name, value in inputs.items()}
        self._inputs(node_id).update(encoded)

    def set_input(self, ref: str | int, name: str, value: object) -> None:
        """Set one input by name (see :meth:`set`)."""
        node_id = self.resolve(ref)
        encoded = self._encode(node_id, name, value)
        self._inputs(node_id)[name] = encoded

    def connect(self, ref: str | int, name: str, source: str | int, output: int = 0) -> None:
        """Link input ``name`` of node ``ref`` to output ``output`` of node ``source``."""
        self.set_input(ref, name, Link(self.resolve(source), output))

    def remove_input(self, ref: str | int, name: str) -> None:
        """Remove an input from a node (an optional input the server then leaves unset)."""
        node_id = self.resolve(ref)
        inputs = self._inputs(node_id)
        if name not in inputs:
            raise UnknownInputError(node_id, name, "it is not set on this node")
        del inputs[name]

    def add_node(
        self,
        class_type: str,
        inputs: Mapping[str, object] | None = None,
        *,
        node_id: str | None = None,
        title: str | None = None,
    ) -> str:
        """Add a node and return its id (the next free integer id unless ``node_id`` is given)."""
        if self.catalogue is not None and class_type not in self.catalogue:
            raise UnknownNodeError(class_type, "the catalogue has no such class")
        if node_id is None:
            numbers = [int(key) for key in self._nodes if key.isdigit()]
            node_id = str(max(numbers, default=0) + 1)
        elif node_id in self._nodes:
            raise WorkflowError(f"node id {node_id!r} is already used")
        node: dict[str, JsonValue] = {"inputs": {}, "class_type": class_type}
        if title is not None:
            node["_meta"] = {"title": title}
        self._nodes[node_id] = node
        try:
            self.set(node_id, **dict(inputs or {}))
        except WorkflowError:
            del self._nodes[node_id]
            raise
        return node_id

    def _encode(self, node_id: str, name: str, value: object) -> JsonValue:
        if self.catalogue is None and name not in self._inputs(node_id):
            raise UnknownInputError(
                node_id,
                name,
                "it is not set on this node; give the workflow a catalogue to add inputs",
            )
        if isinstance(value, Link):
            return link_value(self._nodes, self.catalogue, node_id, name, value)
        return literal_value(self._nodes, self.catalogue, node_id, name, value)

    # ------------------------------------------------------------------ seeds and images

    def seed_inputs(self) -> list[tuple[str, str]]:
        """``(node id, input name)`` of every literal seed-like input.

        Seed-like: named ``seed``, ``noise_seed`` or ``*_seed`` and holding an integer; with a
        catalogue, also declared INT by the node's schema.
        """
        return seed_inputs(self._nodes, self.catalogue)

    def randomize_seeds(self, *, rng: random.Random | None = None) -> dict[tuple[str, str], int]:
        """Give every seed-like input a new random value; returns the values set.

        With a catalogue each value is within that input's min/max (capped at ``2**50``, as the
        UI does); without one, within ``0 … 2**32 - 1``, which every node accepts.
        """
        chooser = rng if rng is not None else random.SystemRandom()
        chosen: dict[tuple[str, str], int] = {}
        for node_id, name in self.seed_inputs():
            low, high = seed_bounds(self._nodes[node_id], name, self.catalogue)
            chosen[node_id, name] = value = chooser.randint(low, high)
            self._inputs(node_id)[name] = value
        return chosen

    def set_seed(self, seed: int, ref: str | int | None = None) -> list[tuple[str, str]]:
        """Set every seed-like input (of node ``ref`` only, if given) to ``seed``."""
        node_id = None if ref is None else self.resolve(ref)
        targets = [item for item in self.seed_inputs() if node_id in (None, item[0])]
        if ref is not None and not targets:
            raise UnknownInputError(str(node_id), "seed", "the node has no literal seed input")
        for target, name in targets:
            self._inputs(target)[name] = check_value(target, name, seed)
        return targets

    def set_image(
        self, ref: str | int, image: str | UploadResult | FileRef, *, input_name: str | None = None
    ) -> None:
        """Point an image loader at a file: a name, an upload's result, or a file reference.

        ``input_name`` defaults to the node's upload combo (with a catalogue), else ``image``.
        A file outside the input folder is written the way the server reads it,
        ``"name [output]"``.
        """
        node_id = self.resolve(ref)
        if isinstance(image, UploadResult):
            value = image.path
            folder = image.type
        elif isinstance(image, FileRef):
            value = f"{image.subfolder}/{image.filename}" if image.subfolder else image.filename
            folder = image.type
        else:
            value, folder = image, "input"
        if folder and folder != "input":
            value = f"{value} [{folder}]"
        self.set_input(node_id, input_name or self._upload_input(node_id), value)

    def _upload_input(self, node_id: str) -> str:
        class_type = self._nodes[node_id].get("class_type")
        if self.catalogue is not None and isinstance(class_type, str):
            schema = self.catalogue.get(class_type)
            for name, spec in (schema.inputs if schema is not None else {}).items():
                if isinstance(spec, ComboInput) and spec.upload is not None:
                    return name
        return "image"

    # ------------------------------------------------------------------ output

    def copy(self) -> Workflow:
        """An independent copy (sharing the catalogue)."""
        return Workflow(self._nodes, catalogue=self.catalogue)

    def to_prompt(self) -> dict[str, dict[str, JsonValue]]:
        """The ``prompt`` value for ``POST /prompt`` (a deep copy)."""
        return {node_id: clone(node) for node_id, node in self._nodes.items()}  # type: ignore[misc]

    def to_json(self, *, indent: bool = False) -> bytes:
        """The prompt as JSON bytes (compact unless ``indent``)."""
        return dumps(self._nodes, indent=indent)

    def save(self, path: str | os.PathLike[str], *, indent: bool = True) -> None:
        """Write the prompt as JSON to ``path`` (the API format that loads back identically)."""
        Path(path).write_bytes(self.to_json(indent=indent))

    # ------------------------------------------------------------------ validation

    def _catalogue(self, catalogue: Catalogue | None) -> Catalogue:
        chosen = catalogue or self.catalogue
        if chosen is None:
            raise ConfigurationError("validation needs a catalogue (await client.nodes())")
        return chosen

    def validate(
        self, catalogue: Catalogue | None = None, *, targets: Sequence[str] | None = None
    ) -> list[Problem]:
        """Every problem the server would report for this prompt, offline (``[]``: none).

        Uses the server's error types and wording (§4.2); unlike the server, every unknown
        class is reported at once and the rest of the graph is still checked. ``targets`` are
        the ``partial_execution_targets`` to send, if any. Node packs' own validators cannot
        run offline (file existence checks pass).
        """
        return find_problems(
            self._nodes, self._catalogue(catalogue), partial_execution_targets=targets
        )

    def check(
        self,
        catalogue: Catalogue | None = None,
        *,
        targets: Sequence[str] | None = None,
        allow_partial: bool = False,
    ) -> None:
        """Raise :class:`~comfy_async.errors.PromptValidationError` if the server would refuse.

        The error holds the body the server would send. Unless ``allow_partial``, a prompt the
        server would accept without some of its outputs (200 with ``node_errors``) raises too.
        """
        outcome = server_response(
            self._nodes, self._catalogue(catalogue), partial_execution_targets=targets
        )
        if outcome.error is None and not (outcome.node_errors and not allow_partial):
            return
        error = outcome.error or {
            "type": "prompt_outputs_failed_validation",
            "message": "Some outputs failed validation (the server would drop them)",
            "details": "",
            "extra_info": {},
        }
        raise PromptValidationError(
            msgspec.convert(error, PromptErrorInfo),
            msgspec.convert(outcome.node_errors, dict[str, NodeError]),
            body=dumps(outcome.body).decode(),
        )


def _title(node: Mapping[str, JsonValue]) -> str | None:
    meta = node.get("_meta")
    title = meta.get("title") if isinstance(meta, dict) else None
    return title if isinstance(title, str) else None
