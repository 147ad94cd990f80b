"""The recorded ``POST /prompt`` validation answers of a real server, reproduced offline.

Each case of ``http/03_validation_errors.json`` is replayed twice against the recorded
``object_info.json``: through offline validation (same error types on the same nodes and
inputs) and through the fake server's function (the same status and body, byte for byte except
the traceback, whose file paths belong to the machine that ran the server).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from comfy_async._graph.validation import (
    CatalogueValidator,
    find_problems,
    request_response,
    server_response,
)
from comfy_async.catalogue import Catalogue
from tests.conftest import REAL_COMFYUI
from tests.recordings import find

RECORDING = REAL_COMFYUI / "http" / "03_validation_errors.json"
PREFIX = "POST /prompt validation case: "


@cache
def recorded_catalogue() -> Catalogue:
    return Catalogue.from_file(REAL_COMFYUI / "object_info.json")


@cache
def raw_exchanges() -> tuple[dict[str, Any], ...]:
    return tuple(json.loads(RECORDING.read_text()))


def cases() -> list[str]:
    return [raw["label"] for raw in raw_exchanges() if raw["label"].startswith(PREFIX)]


def request_body(label: str) -> dict[str, Any]:
    (raw,) = [raw for raw in raw_exchanges() if raw["label"] == label]
    body = raw["request"]["json"]
    assert isinstance(body, dict)
    return body


def without_tracebacks(value: Any) -> Any:
    """The body with each traceback replaced by its frame count (paths are per machine)."""
    if isinstance(value, dict):
        return {
            key: len(item) if key == "traceback" else without_tracebacks(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [without_tracebacks(item) for item in value]
    return value


def expected_problems(body: dict[str, Any]) -> set[tuple[str, str | None, str | None]]:
    """(type, node id, input name) of what the server reported, as offline validation lists it."""
    if "error" in body and not body["node_errors"]:
        error = body["error"]
        node_id = error["extra_info"].get("node_id")
        return {(error["type"], node_id, None)}
    return {
        (item["type"], node_id, item["extra_info"].get("input_name"))
        for node_id, entry in body["node_errors"].items()
        for item in entry["errors"]
    }


GRAPH_CASES = [
    label
    for label in cases()
    if not label.endswith(("no prompt key", "not a UUID", "uppercase UUID"))
]


def test_every_recorded_case_is_covered() -> None:
    assert len(cases()) == 16
    assert len(GRAPH_CASES) == 13


@pytest.mark.parametrize("label", GRAPH_CASES, ids=lambda label: label[len(PREFIX) :])
def test_offline_validation_finds_what_the_server_reported(label: str) -> None:
    body = request_body(label)
    answer = find("03", label).json
    targets = body.get("partial_execution_targets")
    problems = find_problems(
        body["prompt"], recorded_catalogue(), partial_execution_targets=targets
    )
    found = {(problem.type, problem.node_id, problem.input_name) for problem in problems}
    assert found == expected_problems(answer)


@pytest.mark.parametrize("label", cases(), ids=lambda label: label[len(PREFIX) :])
def test_the_server_outcome_reproduces_the_recorded_answer(label: str) -> None:
    exchange = find("03", label)
    outcome = request_response(request_body(label), recorded_catalogue())
    assert outcome.status == exchange.status
    if outcome.accepted:
        sent = outcome.response_body(exchange.json["prompt_id"], exchange.json["number"])
    else:
        sent = outcome.body
    assert without_tracebacks(sent) == without_tracebacks(exchange.json)
    assert list(sent) == list(exchange.json)  # key order as sent


def test_the_traceback_has_the_servers_layout() -> None:
    label = PREFIX + "link to nonexistent node"
    recorded = find("03", label).json["node_errors"]["2"]["errors"][0]["extra_info"]["traceback"]
    outcome = request_response(request_body(label), recorded_catalogue())
    node_errors = outcome.node_errors["2"]
    assert isinstance(node_errors, dict)
    errors = node_errors["errors"]
    assert isinstance(errors, list)
    first = errors[0]
    assert isinstance(first, dict)
    extra = first["extra_info"]
    assert isinstance(extra, dict)
    ours = extra["traceback"]
    assert isinstance(ours, list)
    for mine, theirs in zip(ours, recorded, strict=True):
        assert isinstance(mine, str)
        assert mine.split(", ", 1)[1] == theirs.split(", ", 1)[1]  # "line N, in function…"


def test_partial_acceptance_keeps_only_the_valid_output() -> None:
    outcome = request_response(
        request_body(PREFIX + "one output invalid, another valid (partial acceptance)"),
        recorded_catalogue(),
    )
    assert outcome.accepted
    assert outcome.outputs_to_execute == ["4"]
    assert outcome.outputs == ["4"]
    assert outcome.prompt == outcome.coerced_prompt
    assert set(outcome.node_errors) == {"1"}


def test_the_fake_servers_seam_gives_the_same_answer() -> None:
    object_info = json.loads((REAL_COMFYUI / "object_info.json").read_text())
    validator = CatalogueValidator()
    for label in GRAPH_CASES:
        body = request_body(label)
        outcome = validator.validate(
            body["prompt"], object_info, body.get("partial_execution_targets")
        )
        direct = server_response(
            body["prompt"],
            recorded_catalogue(),
            partial_execution_targets=body.get("partial_execution_targets"),
        )
        assert outcome == direct
        assert outcome.accepted is (outcome.error is None)
    first = validator.catalogue_for(object_info)
    assert validator.catalogue_for(object_info) is first  # built once per object_info
    assert validator.catalogue_for(dict(object_info)) is not first
