"""Workflow edits asked for on the command line: ``--set``, ``--seed``, ``--upload``.

``--set NODE.INPUT=VALUE`` addresses a node by id, title or class (as
:meth:`~comfy_async.Workflow.resolve` does) and an input by name; since titles and input names
may contain dots, the split is the first one whose left part names a node of the workflow.
VALUE is typed by the input's kind in the catalogue (text for ``STRING`` and choices, numbers for
``INT``/``FLOAT``, ``true``/``false`` for ``BOOLEAN``); without a catalogue, JSON if it parses
(``5``, ``true``, ``[1, 2]``) and text otherwise. ``--seed random|N`` sets every seed-like input;
``--upload NODE[.INPUT]=PATH`` uploads a file and points the node at it. The edits go through
the :class:`~comfy_async.Workflow` API, which checks them against the catalogue.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from comfy_async._graph.json_values import JsonValue, loads
from comfy_async._graph.node_schema import (
    BooleanInput,
    ComboInput,
    FloatInput,
    IntInput,
    LinkInput,
    StringInput,
)
from comfy_async.cli.failures import UsageError
from comfy_async.errors import AmbiguousNodeError, WorkflowError

if TYPE_CHECKING:
    from comfy_async.client import ComfyClient
    from comfy_async.workflow import Workflow

__all__ = ["Assignment", "SeedChoice", "apply_uploads", "apply_values", "parse_seed", "typed_value"]

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True, slots=True)
class Assignment:
    """One ``TARGET=VALUE`` argument, split at its first ``=``."""

    target: str
    value: str
    option: str

    @classmethod
    def parse(cls, text: str, option: str) -> Assignment:
        """Split ``text``; UsageError when it has no ``=`` or no target."""
        target, sep, value = text.partition("=")
        if not sep or not target:
            raise UsageError(f"{option} expects NODE.INPUT=VALUE, got {text!r}")
        return cls(target, value, option)

    def locate(self, workflow: Workflow, *, input_required: bool = True) -> tuple[str, str | None]:
        """The node id and input name the target names (the input may be absent for uploads)."""
        if not input_required and self.target in workflow:
            return self.target, None
        ambiguous: AmbiguousNodeError | None = None
        splits = [i for i, char in enumerate(self.target) if char == "."]
        candidates = [(self.target[:i], self.target[i + 1 :]) for i in splits]
        if not input_required:
            candidates.append((self.target, ""))
        for node, name in candidates:
            if not node or (input_required and not name):
                continue
            try:
                return workflow.resolve(node), name or None
            except AmbiguousNodeError as error:
                ambiguous = ambiguous or error
            except WorkflowError:
                continue
        if ambiguous is not None:
            raise UsageError(f"{self.option} {self.target!r}: {ambiguous}")
        raise UsageError(
            f"{self.option} {self.target!r}: no node of the workflow has that id, title or class "
            "(write NODE.INPUT, e.g. 6.text or KSampler.steps)"
        )


def typed_value(workflow: Workflow, node_id: str, name: str, text: str) -> JsonValue:
    """VALUE typed for input ``name`` of ``node_id`` (see the module docstring)."""
    spec = None
    if workflow.catalogue is not None:
        class_type = workflow.node(node_id).class_type
        schema = workflow.catalogue.get(class_type) if class_type else None
        spec = schema.inputs.get(name) if schema is not None else None
    if isinstance(spec, LinkInput):
        raise UsageError(
            f"node {node_id} input {name!r} takes a link ({spec.type}) from another node; "
            "--set sets values only"
        )
    if isinstance(spec, StringInput):
        return text
    if isinstance(spec, IntInput | FloatInput):
        try:
            return int(text) if isinstance(spec, IntInput) else float(text)
        except ValueError:
            raise UsageError(
                f"node {node_id} input {name!r} takes a number ({spec.kind}), got {text!r}"
            ) from None
    if isinstance(spec, BooleanInput):
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise UsageError(f"node {node_id} input {name!r} takes true or false, got {text!r}")
    if isinstance(spec, ComboInput) and (spec.options is None or text in spec.options):
        return text
    try:
        return loads(text)
    except ValueError:
        return text


def apply_values(workflow: Workflow, items: list[str]) -> None:
    """Apply every ``--set NODE.INPUT=VALUE`` to ``workflow``."""
    for item in items:
        assignment = Assignment.parse(item, "--set")
        node_id, name = assignment.locate(workflow)
        assert name is not None
        workflow.set_input(node_id, name, typed_value(workflow, node_id, name, assignment.value))


@dataclass(frozen=True, slots=True)
class SeedChoice:
    """``--seed``: a new random seed for every run, or seeds counting up from a number."""

    random: bool
    start: int = 0

    def apply(self, workflow: Workflow, run: int) -> dict[str, int]:
        """Set the seeds of one run (``run`` counts from 0); returns ``{"node.input": seed}``."""
        if self.random:
            chosen = workflow.randomize_seeds()
            return {f"{node}.{name}": value for (node, name), value in chosen.items()}
        seed = self.start + run
        return {f"{node}.{name}": seed for node, name in workflow.set_seed(seed)}


def parse_seed(text: str) -> SeedChoice:
    """``random`` or a non-negative integer (argparse type)."""
    if text == "random":
        return SeedChoice(random=True)
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 'random' or a non-negative integer: {text!r}")
    return SeedChoice(random=False, start=value)


async def apply_uploads(workflow: Workflow, items: list[str], client: ComfyClient) -> list[str]:
    """Upload each ``--upload NODE[.INPUT]=PATH`` and point the node at it; returns the names."""
    names: list[str] = []
    for item in items:
        assignment = Assignment.parse(item, "--upload")
        node_id, name = assignment.locate(workflow, input_required=False)
        if not assignment.value:
            raise UsageError(f"--upload {item!r}: no file named after '='")
        uploaded = await client.files.upload_image(assignment.value)
        workflow.set_image(node_id, uploaded, input_name=name)
        names.append(uploaded.path)
    return names
