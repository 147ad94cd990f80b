"""What ``POST /prompt`` answers for a prompt, worked out offline (protocol doc §4.1, §4.2).

Two users: :meth:`comfy_async.workflow.Workflow.validate` turns the outcome into a flat list of
:class:`Problem` (every problem at once, unknown classes included), and the fake server
(``comfy_async.testing``) renders the exact answer of a real server with :func:`server_response`
(a prompt) or :func:`request_response` (a whole request body, adding the HTTP layer's
``no_prompt`` and ``invalid_prompt_id`` checks). The validation itself is in
:mod:`comfy_async._graph.validation_engine`. No I/O.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import msgspec

from comfy_async._graph.json_values import JsonValue, clone
from comfy_async._graph.validation_engine import (
    ErrorDict,
    NodeResult,
    PromptValidation,
    ServerException,
    traceback_lines,
)
from comfy_async.catalogue import Catalogue
from comfy_async.errors import WorkflowFormatError

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

__all__ = [
    "CatalogueValidator",
    "Problem",
    "ServerOutcome",
    "find_problems",
    "request_response",
    "server_response",
]

_NO_OUTPUTS: ErrorDict = {
    "type": "prompt_no_outputs",
    "message": "Prompt has no outputs",
    "details": "",
    "extra_info": {},
}


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """One problem the server would report for a workflow, in the server's terms.

    ``type`` is the server's error type (``required_input_missing``, ``value_not_in_list``,
    ``missing_node_type``, ``prompt_no_outputs``…); ``message``, ``details`` and ``extra_info``
    are worded as the server words them. ``node_id`` is ``None`` for a problem of the whole
    prompt; ``dependent_outputs`` lists the output nodes the server would drop because of it.
    """

    type: str
    message: str
    node_id: str | None = None
    class_type: str | None = None
    input_name: str | None = None
    details: str = ""
    extra_info: dict[str, JsonValue] = {}
    dependent_outputs: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = "prompt" if self.node_id is None else f"node {self.node_id} ({self.class_type})"
        if self.input_name:
            where += f" input {self.input_name!r}"
        return f"{where}: {self.type}: {self.details or self.message}"


class ServerOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """The server's answer to one prompt: 400 with an error, or 200 with the outputs to run.

    ``body`` is the JSON body of a 400 (``{"error", "node_errors"}``); for a 200 use
    :meth:`response_body` with the id and number the server assigns. ``coerced_prompt`` is the
    prompt as the server queues and stores it (literals coerced, ``__value__`` unwrapped).
    """

    status: int
    error: dict[str, JsonValue] | None
    node_errors: dict[str, JsonValue]
    outputs_to_execute: list[str]
    coerced_prompt: dict[str, JsonValue] | None = None

    @property
    def accepted(self) -> bool:
        """Whether the prompt was queued (200), possibly without some invalid outputs."""
        return self.status == 200

    @property
    def body(self) -> dict[str, JsonValue]:
        """The JSON body: ``{"error", "node_errors"}`` (400) or ``{"node_errors"}`` (200)."""
        if self.error is None:
            return {"node_errors": self.node_errors}
        return {"error": self.error, "node_errors": self.node_errors}

    @property
    def outputs(self) -> list[str]:
        """The output nodes to execute (the fake server's name for ``outputs_to_execute``)."""
        return self.outputs_to_execute

    @property
    def prompt(self) -> dict[str, JsonValue] | None:
        """The graph to queue (the fake server's name for ``coerced_prompt``)."""
        return self.coerced_prompt

    def response_body(self, prompt_id: str, number: float) -> dict[str, JsonValue]:
        """The body as sent: a 200 adds ``prompt_id`` and ``number`` before ``node_errors``."""
        if self.error is not None:
            return self.body
        return {"prompt_id": prompt_id, "number": number, "node_errors": self.node_errors}


def _missing_class(node_id: str, node: Mapping[str, JsonValue]) -> ErrorDict | None:
    meta = node.get("_meta")
    meta = meta if isinstance(meta, dict) else {}
    if "class_type" not in node:
        title = meta.get("title")
        return {
            "type": "missing_node_type",
            "message": f"Node '{title or f'ID #{node_id}'}' has no class_type. "
            "The workflow may be corrupted or a custom node is missing.",
            "details": f"Node ID '#{node_id}'",
            "extra_info": {"node_id": node_id, "class_type": None, "node_title": title},
        }
    class_type = node["class_type"]
    return {
        "type": "missing_node_type",
        "message": f"Node '{meta.get('title', class_type)}' not found. "
        "The custom node may not be installed.",
        "details": f"Node ID '#{node_id}'",
        "extra_info": {
            "node_id": node_id,
            "class_type": class_type,
            "node_title": meta.get("title", class_type),
        },
    }


class _Run(msgspec.Struct, kw_only=True):
    missing: list[ErrorDict]
    error: ErrorDict | None = None
    good: list[str] = []
    node_errors: dict[str, JsonValue] = {}


def _check_shape(prompt: Mapping[str, object]) -> dict[str, JsonValue]:
    """A working copy; shapes the real server answers with a 500 raise WorkflowFormatError."""
    if not isinstance(prompt, dict):
        raise WorkflowFormatError("the prompt must be a JSON object of nodes")
    for node_id, node in prompt.items():
        if not isinstance(node_id, str) or not isinstance(node, dict):
            raise WorkflowFormatError(f"node {node_id!r} is not a JSON object")
        class_type = node.get("class_type")
        if isinstance(class_type, list | dict):
            raise WorkflowFormatError(f"node {node_id!r} has an unhashable class_type")
    copied = clone(prompt)
    assert isinstance(copied, dict)
    return copied


def _run(
    prompt: dict[str, JsonValue],
    catalogue: Catalogue,
    targets: Sequence[object] | None,
    *,
    lenient: bool,
    input_files: Collection[str] | None = None,
) -> _Run:
    """The server's ``validate_prompt``; with ``lenient`` every unknown class is listed."""
    run = _Run(missing=[])
    outputs: list[str] = []
    for node_id, node in prompt.items():
        assert isinstance(node, dict)
        class_type = node.get("class_type")
        if not isinstance(class_type, str) or class_type not in catalogue:
            missing = _missing_class(node_id, node)
            assert missing is not None
            run.missing.append(missing)
            if not lenient:
                run.error = missing
                return run
            continue
        if catalogue.info(class_type).output_node and (targets is None or node_id in targets):
            outputs.append(node_id)
    if not outputs:
        if not run.missing:
            run.error = _NO_OUTPUTS
        return run
    validation = PromptValidation(
        prompt, catalogue, lenient_missing=lenient, input_files=input_files
    )
    failures: list[tuple[str, list[ErrorDict]]] = []
    for output in outputs:
        try:
            result: NodeResult = validation.node(output, [])
        except ServerException as crash:
            reasons: list[ErrorDict] = [
                {
                    "type": "exception_during_validation",
                    "message": "Exception when validating node",
                    "details": crash.text,
                    "extra_info": {
                        "exception_type": crash.type_name,
                        "traceback": traceback_lines(inner=False),
                    },
                }
            ]
            result = validation.validated[output] = (False, reasons, output)
        if result[0] is True:
            run.good.append(output)
            continue
        failures.append((output, result[1]))
        # As the server does: every node that failed so far (with errors of its own) lists
        # this output, including nodes found while validating earlier outputs.
        for node_id, (valid, errors, _) in validation.validated.items():
            if valid is True or not errors:
                continue
            entry = run.node_errors.get(node_id)
            if entry is None:
                node = prompt[node_id]
                assert isinstance(node, dict)
                entry = run.node_errors[node_id] = {
                    "errors": list(errors),
                    "dependent_outputs": [],
                    "class_type": node["class_type"],
                }
            assert isinstance(entry, dict)
            dependents = entry["dependent_outputs"]
            assert isinstance(dependents, list)
            dependents.append(output)
    if not run.good:
        details = "\n".join(
            f"{error['message']}: {error['details']}" for _, errors in failures for error in errors
        )
        run.error = {
            "type": "prompt_outputs_failed_validation",
            "message": "Prompt outputs failed validation",
            "details": details,
            "extra_info": {},
        }
    return run


def server_response(
    prompt: Mapping[str, object],
    catalogue: Catalogue,
    *,
    partial_execution_targets: Sequence[object] | None = None,
    input_files: Collection[str] | None = None,
) -> ServerOutcome:
    """What a real server answers to ``POST /prompt`` with this ``prompt`` (for the fake server).

    Covers ``missing_node_type`` (first offending node, as the server stops there),
    ``prompt_no_outputs`` (also when ``partial_execution_targets`` names no output node), every
    per-input error of §4.2, partial acceptance (200 with ``node_errors``, only the outputs whose
    whole dependency graph is valid in ``outputs_to_execute``), ``input_config`` left out of
    ``value_not_in_list`` for lists over 20 choices, and coerced values in ``coerced_prompt``.
    ``input_files`` (names in the input folder) turns on the loaders' file checks
    (``custom_validation_failed``); without it they pass. ``prompt`` is not modified.

    Outputs are validated in prompt order (the server uses a set, so its order can differ, which
    may reorder ``dependent_outputs``). Raises :class:`~comfy_async.errors.WorkflowFormatError`
    for prompts the real server answers with a 500 (not an object of objects).
    """
    working = _check_shape(prompt)
    run = _run(
        working, catalogue, partial_execution_targets, lenient=False, input_files=input_files
    )
    if run.error is not None:
        node_errors = {} if run.error["type"] == "missing_node_type" else run.node_errors
        return ServerOutcome(
            status=400, error=run.error, node_errors=node_errors, outputs_to_execute=[]
        )
    return ServerOutcome(
        status=200,
        error=None,
        node_errors=run.node_errors,
        outputs_to_execute=run.good,
        coerced_prompt=working,
    )


class CatalogueValidator:
    """The fake server's validator seam, answering as a real server does (:func:`server_response`).

    ``FakeComfyServer(validator=CatalogueValidator())`` calls :meth:`validate` with the fake's
    ``object_info``; the catalogue built from it is cached for as long as that object is the
    one passed. Give ``catalogue`` to use another, and ``input_files`` to check loader files.
    """

    def __init__(
        self, catalogue: Catalogue | None = None, *, input_files: Collection[str] | None = None
    ) -> None:
        self._catalogue = catalogue
        self._source: object = None
        self.input_files = input_files

    def catalogue_for(self, object_info: Mapping[str, Mapping[str, object]]) -> Catalogue:
        """The catalogue to validate against (built from ``object_info`` unless one was given)."""
        stale = self._source is not None and self._source is not object_info
        if self._catalogue is None or stale:
            self._catalogue = Catalogue.from_mapping(object_info)
            self._source = object_info
        return self._catalogue

    def validate(
        self,
        prompt: Mapping[str, object],
        object_info: Mapping[str, Mapping[str, object]],
        partial_execution_targets: Sequence[str] | None,
    ) -> ServerOutcome:
        """The server's outcome for ``prompt``; raises WorkflowFormatError where it 500s."""
        return server_response(
            prompt,
            self.catalogue_for(object_info),
            partial_execution_targets=partial_execution_targets,
            input_files=self.input_files,
        )


def _top_error(kind: str, message: str, details: str) -> ServerOutcome:
    error: dict[str, JsonValue] = {
        "type": kind,
        "message": message,
        "details": details,
        "extra_info": {},
    }
    return ServerOutcome(status=400, error=error, node_errors={}, outputs_to_execute=[])


def request_response(
    body: Mapping[str, object],
    catalogue: Catalogue,
    *,
    input_files: Collection[str] | None = None,
) -> ServerOutcome:
    """What a real server answers to a whole ``POST /prompt`` body (``prompt``, ``prompt_id``…).

    Adds the HTTP layer's checks to :func:`server_response`: ``no_prompt`` when there is no
    ``prompt`` key, ``invalid_prompt_id`` for an id that is not a canonical lowercase UUID, and
    ``partial_execution_targets``. Server-side ``on_prompt`` hooks and node replacements are not
    modelled.
    """
    if "prompt" not in body:
        return _top_error("no_prompt", "No prompt provided", "No prompt provided")
    prompt_id = body.get("prompt_id")
    if prompt_id is not None and not _canonical_uuid(prompt_id):
        return _top_error(
            "invalid_prompt_id",
            "prompt_id must be a valid UUID",
            "prompt_id must be a UUID string in canonical lowercase hyphenated form; "
            "omit it to let the server generate one",
        )
    prompt = body["prompt"]
    if not isinstance(prompt, dict):
        raise WorkflowFormatError("the prompt must be a JSON object of nodes")
    targets = body.get("partial_execution_targets")
    return server_response(
        prompt,
        catalogue,
        partial_execution_targets=targets if isinstance(targets, list) else None,
        input_files=input_files,
    )


def _canonical_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _upstream(prompt: Mapping[str, JsonValue], output: str) -> set[str]:
    """``output`` and every node it depends on through links present in the prompt."""
    seen: set[str] = set()
    stack = [output]
    while stack:
        node_id = stack.pop()
        if node_id in seen:
            continue
        seen.add(node_id)
        node = prompt.get(node_id)
        inputs = node.get("inputs") if isinstance(node, dict) else None
        values = inputs.values() if isinstance(inputs, dict) else ()
        stack.extend(
            value[0]
            for value in values
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
        )
    return seen


def find_problems(
    prompt: Mapping[str, object],
    catalogue: Catalogue,
    *,
    partial_execution_targets: Sequence[object] | None = None,
) -> list[Problem]:
    """Every problem the server would report, at once.

    Each unknown class (the server names only the first), then the per-input errors of the
    outputs whose classes are known.
    """
    working = _check_shape(prompt)
    run = _run(working, catalogue, partial_execution_targets, lenient=True)
    problems: list[Problem] = []
    for error in run.missing:
        extra = error["extra_info"]
        assert isinstance(extra, dict)
        class_type = extra.get("class_type")
        problems.append(
            Problem(
                type="missing_node_type",
                message=str(error["message"]),
                node_id=str(extra["node_id"]),
                class_type=class_type if isinstance(class_type, str) else None,
                details=str(error["details"]),
                extra_info=extra,
            )
        )
    if run.error is not None and run.error["type"] == "prompt_no_outputs":
        problems.append(Problem(type="prompt_no_outputs", message="Prompt has no outputs"))
    for node_id, entry in run.node_errors.items():
        assert isinstance(entry, dict)
        errors, dependents, class_type = (
            entry["errors"],
            entry["dependent_outputs"],
            entry["class_type"],
        )
        assert isinstance(errors, list)
        assert isinstance(dependents, list)
        # The server lists every output that failed after this node did; keep the real ones.
        real = tuple(
            str(output)
            for output in dependents
            if isinstance(output, str) and node_id in _upstream(working, output)
        )
        for item in errors:
            assert isinstance(item, dict)
            found = item.get("extra_info")
            extra = found if isinstance(found, dict) else {}
            name = extra.get("input_name")
            problems.append(
                Problem(
                    type=str(item["type"]),
                    message=str(item["message"]),
                    node_id=node_id,
                    class_type=class_type if isinstance(class_type, str) else None,
                    input_name=name if isinstance(name, str) else None,
                    details=str(item.get("details", "")),
                    extra_info=extra,
                    dependent_outputs=real,
                )
            )
    return problems
