"""What each node class does when the fake server "runs" it: the behaviour registry.

A :class:`NodeBehaviour` says how long a node takes, whether it reports progress (and with which
previews), whether it sends a TEXT frame, what UI output it produces, and whether it fails or
returns an ``ExecutionBlocker``. A :class:`BehaviourRegistry` maps ``class_type`` to a behaviour
or to a function of the node's literal inputs that returns one.

Defaults, in order: an explicit registration; the probe nodes of the recordings
(``ProbeSleepProgress``, ``ProbeRaise``, ``ProbeTextOutput``, ``ProbeBlock``) reproduced from
their inputs; then a guess from ``object_info``: output nodes produce one image (``output`` when
they take a ``filename_prefix``, ``temp`` otherwise), nodes with a ``steps`` input report that
many progress steps (sampler previews only when ``extra_data.preview_method`` asks, protocol doc
§3.3), everything else does nothing for ``default_duration`` seconds.

All durations are in seconds *before* the server's ``time_scale`` is applied. This module does no
I/O and does not know about sockets or the queue.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final, Literal, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "PREVIEW_METHODS",
    "PROBE_BEHAVIOURS",
    "BehaviourRegistry",
    "BehaviourSource",
    "NodeBehaviour",
    "OutputKind",
    "PreviewFormat",
]

#: ``extra_data.preview_method`` values that turn sampler previews on (§3.3).
PREVIEW_METHODS: Final = frozenset({"auto", "latent2rgb", "taesd"})

OutputKind: TypeAlias = Literal["none", "save", "preview", "text"]
"""``save``: a PNG in ``output`` named from ``filename_prefix``; ``preview``: a PNG in ``temp``;
``text``: ``{"text": [value]}``; ``none``: no UI output (no ``executed`` event)."""

PreviewFormat: TypeAlias = Literal["image/jpeg", "image/png"]
"""The image type of the previews a node sends with its progress steps."""


@dataclass(frozen=True, slots=True)
class NodeBehaviour:
    """How one node behaves when executed.

    Attributes:
        duration: seconds the node takes (before ``time_scale``); with ``steps`` it is spread
            evenly over the steps.
        steps: progress steps to report (``0``: no ``progress`` events).
        preview: image type sent with the progress steps, or ``None``.
        preview_every: a preview goes with every n-th step only (the others send progress alone,
            throttled like any progress).
        preview_size: pad each preview to this many bytes (a large sampler preview).
        sampler_preview: the preview is sent only when the prompt's ``extra_data.preview_method``
            enables previews (samplers; previews are off by default on a real server).
        text: a TEXT frame (binary type 3) the node broadcasts after its steps.
        output: the UI output the node produces (see :data:`OutputKind`).
        text_value: the text of a ``text`` output (default: the node's ``value``/``text`` input).
        error: when set, the node raises with this message (an ``execution_error``).
        exception_type: the exception type reported with ``error``.
        block: when not ``None``, the node returns an ``ExecutionBlocker`` with this message
            (``""`` is a silent blocker: no error event downstream).

    """

    duration: float = 0.0
    steps: int = 0
    preview: PreviewFormat | None = None
    preview_every: int = 1
    preview_size: int | None = None
    sampler_preview: bool = False
    text: str | None = None
    output: OutputKind = "none"
    text_value: str | None = None
    error: str | None = None
    exception_type: str = "ValueError"
    block: str | None = None

    def __post_init__(self) -> None:
        if self.preview_every < 1:
            raise ValueError(f"preview_every must be at least 1, got {self.preview_every!r}")

    def with_duration(self, duration: float) -> NodeBehaviour:
        """A copy that takes ``duration`` seconds."""
        return replace(self, duration=duration)


BehaviourSource: TypeAlias = "NodeBehaviour | Callable[[Mapping[str, object]], NodeBehaviour]"
"""A fixed behaviour, or a function of the node's literal inputs returning one."""


def _int(value: object, default: int) -> int:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return default


def _float(value: object, default: float) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def _probe_sleep_progress(inputs: Mapping[str, object]) -> NodeBehaviour:
    steps = max(1, _int(inputs.get("steps"), 4))
    fmt = inputs.get("preview_format", "JPEG")
    preview: PreviewFormat | None = (
        "image/jpeg" if fmt == "JPEG" else "image/png" if fmt == "PNG" else None
    )
    text = inputs.get("text")
    return NodeBehaviour(
        duration=steps * _float(inputs.get("delay"), 0.25),
        steps=steps,
        preview=preview,
        text=text if isinstance(text, str) and text else None,
    )


def _probe_raise(inputs: Mapping[str, object]) -> NodeBehaviour:
    return NodeBehaviour(error=str(inputs.get("message", "")))


def _probe_text_output(inputs: Mapping[str, object]) -> NodeBehaviour:
    return NodeBehaviour(output="text", text_value=str(inputs.get("value", "")))


def _probe_block(inputs: Mapping[str, object]) -> NodeBehaviour:
    return NodeBehaviour(block=str(inputs.get("message", "")))


#: The probe nodes of the recordings, reproduced from their inputs (recordings README).
PROBE_BEHAVIOURS: Final[dict[str, BehaviourSource]] = {
    "ProbeSleepProgress": _probe_sleep_progress,
    "ProbeRaise": _probe_raise,
    "ProbeTextOutput": _probe_text_output,
    "ProbeBlock": _probe_block,
}


class BehaviourRegistry:
    """``class_type`` → behaviour, with defaults derived from ``object_info``.

    Usage::

        registry = BehaviourRegistry(object_info)
        registry.register("KSampler", NodeBehaviour(duration=2.0, steps=20, preview="image/jpeg"))
        registry.set_duration("VAEDecode", 0.5)
    """

    def __init__(
        self,
        object_info: Mapping[str, Mapping[str, object]],
        *,
        default_duration: float = 0.0,
        sampler_duration: float = 1.0,
    ) -> None:
        self._object_info = object_info
        self._default_duration = default_duration
        self._sampler_duration = sampler_duration
        self._sources: dict[str, BehaviourSource] = dict(PROBE_BEHAVIOURS)
        self._durations: dict[str, float] = {}

    def register(self, class_type: str, behaviour: BehaviourSource) -> None:
        """Make ``class_type`` behave as ``behaviour`` (replaces any earlier registration)."""
        self._sources[class_type] = behaviour

    def set_duration(self, class_type: str, seconds: float) -> None:
        """Override only the duration of ``class_type`` (before ``time_scale``)."""
        self._durations[class_type] = seconds

    def is_registered(self, class_type: str) -> bool:
        """Whether ``class_type`` has a registered behaviour (else one derived from its schema)."""
        return class_type in self._sources

    def is_output_node(self, class_type: str) -> bool:
        """Whether ``object_info`` marks ``class_type`` as an output node."""
        info = self._object_info.get(class_type)
        return bool(info and info.get("output_node") is True)

    def resolve(self, class_type: str, inputs: Mapping[str, object]) -> NodeBehaviour:
        """The behaviour of one node with these literal inputs."""
        source = self._sources.get(class_type)
        if source is None:
            behaviour = self._derive(class_type, inputs)
        elif isinstance(source, NodeBehaviour):
            behaviour = source
        else:
            behaviour = source(inputs)
        if class_type in self._durations:
            behaviour = behaviour.with_duration(self._durations[class_type])
        return behaviour

    def _derive(self, class_type: str, inputs: Mapping[str, object]) -> NodeBehaviour:
        info = self._object_info.get(class_type, {})
        required = _section(info, "required")
        optional = _section(info, "optional")
        if "steps" in required or "steps" in optional:
            steps = max(1, _int(inputs.get("steps"), 1))
            return NodeBehaviour(
                duration=self._sampler_duration,
                steps=steps,
                preview="image/jpeg",
                sampler_preview=True,
            )
        if info.get("output_node") is True:
            kind: OutputKind = "save" if "filename_prefix" in required else "preview"
            return NodeBehaviour(duration=self._default_duration, output=kind)
        return NodeBehaviour(duration=self._default_duration)


def _section(info: Mapping[str, object], name: str) -> Mapping[str, object]:
    inputs = info.get("input")
    if isinstance(inputs, dict):
        section = inputs.get(name)
        if isinstance(section, dict):
            return section
    return {}
