"""The validation seam of the fake server: how a submitted graph is accepted or rejected.

``POST /prompt`` checks the envelope itself (``no_prompt``, ``invalid_prompt_id``, a non-JSON
body) and then hands the graph to a :class:`PromptValidator`. The validator returns a
:class:`ValidationOutcome`: either a rejection (the 400 body's ``error`` and ``node_errors``) or
an acceptance with the output nodes to execute, possibly with ``node_errors`` for outputs that
were dropped (a real server's "200 with node_errors", protocol doc §4.2).

The default, :class:`TopLevelValidator`, does only what the real server checks before looking
at inputs: every node has a known ``class_type`` (``missing_node_type``, titled from
``_meta.title``) and at least one output node is selected (``prompt_no_outputs``, honouring
``partial_execution_targets``). Per-input checks (missing inputs, combo values, ranges, link
types…) belong to the library's offline validator; plug it in by passing any object with a
``validate`` method of the same signature as ``FakeComfyServer(validator=...)``. This module
does no I/O and never raises on a bad graph: it reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["Outcome", "PromptValidator", "TopLevelValidator", "ValidationOutcome", "error_body"]


@dataclass(frozen=True, slots=True)
class ValidationOutcome:
    """What the server does with a graph.

    Attributes:
        error: ``None`` when accepted; else the top-level ``error`` object of the 400 body
            (``{"type", "message", "details", "extra_info"}``).
        node_errors: per-node errors (``{node_id: {"errors", "dependent_outputs",
            "class_type"}}``); with an acceptance, the outputs that were dropped.
        outputs: the output node ids to execute (empty when rejected).
        prompt: the graph to store and run (a validator may coerce values, as the real
            server does); ``None`` keeps the submitted graph.

    """

    error: dict[str, object] | None = None
    node_errors: dict[str, object] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    prompt: dict[str, object] | None = None

    @property
    def accepted(self) -> bool:
        """Whether the prompt is queued."""
        return self.error is None


class Outcome(Protocol):
    """What the server reads of a validator's answer (:class:`ValidationOutcome` has it all)."""

    @property
    def error(self) -> Mapping[str, object] | None:
        """The top-level error of a 400, or ``None`` when the prompt is queued."""
        ...

    @property
    def node_errors(self) -> Mapping[str, object]:
        """Per-node errors (with an acceptance: the outputs that were dropped)."""
        ...

    @property
    def outputs(self) -> Sequence[str]:
        """The output node ids to execute."""
        ...

    @property
    def prompt(self) -> Mapping[str, object] | None:
        """The graph to store and run, or ``None`` for the submitted one."""
        ...


class PromptValidator(Protocol):
    """Decides whether a submitted graph is accepted, and which outputs run."""

    def validate(
        self,
        prompt: Mapping[str, object],
        object_info: Mapping[str, Mapping[str, object]],
        partial_execution_targets: Sequence[str] | None,
    ) -> Outcome:
        """Validate ``prompt`` against ``object_info`` (the server's node catalogue)."""
        ...


def error_body(type_: str, message: str, details: str = "", **extra: object) -> dict[str, object]:
    """A top-level ``error`` object as the server writes it."""
    return {"type": type_, "message": message, "details": details, "extra_info": dict(extra)}


class TopLevelValidator:
    """The real server's checks that come before per-input validation (protocol doc §4.2)."""

    def validate(
        self,
        prompt: Mapping[str, object],
        object_info: Mapping[str, Mapping[str, object]],
        partial_execution_targets: Sequence[str] | None,
    ) -> ValidationOutcome:
        """Reject unknown or missing classes and graphs without a selected output node."""
        outputs: list[str] = []
        for node_id, node in prompt.items():
            node_map: Mapping[str, object] = node if isinstance(node, dict) else {}
            meta = node_map.get("_meta")
            title = meta.get("title") if isinstance(meta, dict) else None
            class_type = node_map.get("class_type")
            if class_type is None:
                return ValidationOutcome(
                    error=error_body(
                        "missing_node_type",
                        f"Node '{title or f'ID #{node_id}'}' has no class_type. The workflow "
                        "may be corrupted or a custom node is missing.",
                        f"Node ID '#{node_id}'",
                        node_id=node_id,
                        class_type=None,
                        node_title=title,
                    )
                )
            info = object_info.get(str(class_type))
            if info is None:
                return ValidationOutcome(
                    error=error_body(
                        "missing_node_type",
                        f"Node '{title or class_type}' not found. The custom node may not be "
                        "installed.",
                        f"Node ID '#{node_id}'",
                        node_id=node_id,
                        class_type=class_type,
                        node_title=title,
                    )
                )
            if info.get("output_node") is True and (
                partial_execution_targets is None or node_id in partial_execution_targets
            ):
                outputs.append(node_id)
        if not outputs:
            return ValidationOutcome(error=error_body("prompt_no_outputs", "Prompt has no outputs"))
        return ValidationOutcome(outputs=outputs)
