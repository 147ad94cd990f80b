"""Payloads of ``POST /prompt``: the accepted response and the 400 validation body (§4.1, §4.2)."""

from __future__ import annotations

from typing import Any

from comfy_async.models._base import Model

__all__ = ["InputError", "NodeError", "PromptErrorInfo", "PromptRejection", "PromptResponse"]


class InputError(Model, frozen=True):
    """One validation problem of one node, e.g. ``value_not_in_list`` for one input."""

    type: str
    message: str = ""
    details: str = ""
    extra_info: dict[str, Any] = {}

    @property
    def input_name(self) -> str | None:
        """The input the problem is about, when the server names one."""
        name = self.extra_info.get("input_name")
        return name if isinstance(name, str) else None

    @property
    def received_value(self) -> Any:
        """The value the server received for that input, if it says."""
        return self.extra_info.get("received_value")


class NodeError(Model, frozen=True):
    """Every problem of one node, and the output nodes that depend on it."""

    errors: list[InputError] = []
    dependent_outputs: list[str] = []
    class_type: str | None = None


class PromptErrorInfo(Model, frozen=True):
    """The top-level error of a refused prompt (``error.type`` such as ``missing_node_type``)."""

    type: str
    message: str = ""
    details: str = ""
    extra_info: dict[str, Any] = {}


class PromptResponse(Model, frozen=True):
    """200 from ``POST /prompt``: the prompt was queued.

    ``node_errors`` can be non-empty with a 200: outputs that failed validation were dropped and
    only the valid ones will run (protocol doc §4.2). Check :attr:`partially_rejected`.
    """

    prompt_id: str
    number: int | float = 0
    node_errors: dict[str, NodeError] = {}

    @property
    def partially_rejected(self) -> bool:
        """Whether some outputs were dropped because they failed validation."""
        return bool(self.node_errors)


class PromptRejection(Model, frozen=True):
    """400 from ``POST /prompt``: nothing was queued."""

    error: PromptErrorInfo
    node_errors: dict[str, NodeError] = {}
