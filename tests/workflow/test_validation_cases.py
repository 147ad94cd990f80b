"""Server validation rules beyond the recorded cases: ranges, coercion, cycles, crashes, v3 inputs.

Each expectation follows the server's ``validate_prompt``/``validate_inputs`` (v0.33.0) for the
same graph; the graphs use classes of the recorded ``object_info.json``.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import pytest

from comfy_async._graph.validation import find_problems, server_response
from comfy_async._graph.validation_engine import types_match
from comfy_async.catalogue import Catalogue
from comfy_async.errors import WorkflowFormatError
from tests.conftest import REAL_COMFYUI


@cache
def catalogue() -> Catalogue:
    return Catalogue.from_file(REAL_COMFYUI / "object_info.json")


def image(width: Any = 8, **extra: Any) -> dict[str, Any]:
    inputs = {"width": width, "height": 8, "batch_size": 1, "color": 0, **extra}
    return {"class_type": "EmptyImage", "inputs": inputs}


def preview(source: str = "1") -> dict[str, Any]:
    return {"class_type": "PreviewImage", "inputs": {"images": [source, 0]}}


def only_error(outcome_errors: dict[str, Any], node_id: str) -> dict[str, Any]:
    (error,) = outcome_errors[node_id]["errors"]
    assert isinstance(error, dict)
    return error


def test_value_bigger_than_max() -> None:
    outcome = server_response({"1": image(99999), "2": preview()}, catalogue())
    assert outcome.status == 400
    error = only_error(outcome.node_errors, "1")
    assert error["type"] == "value_bigger_than_max"
    assert error["message"] == "Value 99999 bigger than max of 16384"
    assert error["details"] == "width"


def test_literals_are_coerced_as_the_server_stores_them() -> None:
    prompt = {
        "1": image("64", color=True),
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": 7}},
    }
    original = copy.deepcopy(prompt)
    outcome = server_response(prompt, catalogue())
    assert outcome.accepted
    assert outcome.coerced_prompt is not None
    stored = outcome.coerced_prompt
    assert stored["1"]["inputs"]["width"] == 64  # type: ignore[index]
    assert stored["1"]["inputs"]["color"] == 1  # type: ignore[index]
    assert stored["2"]["inputs"]["filename_prefix"] == "7"  # type: ignore[index]
    assert prompt == original  # the caller's prompt is left alone
    assert find_problems(prompt, catalogue()) == []


def test_a_float_string_is_not_an_int() -> None:
    outcome = server_response({"1": image("5.5"), "2": preview()}, catalogue())
    error = only_error(outcome.node_errors, "1")
    assert error["type"] == "invalid_input_type"
    assert error["details"] == "width, 5.5, invalid literal for int() with base 10: '5.5'"


def test_a_wrapped_literal_list_is_unwrapped() -> None:
    prompt = {"1": image({"__value__": [3]}), "2": preview()}
    outcome = server_response(prompt, catalogue())
    error = only_error(outcome.node_errors, "1")
    assert error["type"] == "invalid_input_type"
    assert error["extra_info"]["received_value"] == [3]


def test_a_long_combo_list_is_left_out_of_the_answer() -> None:
    ksampler = {
        "class_type": "KSampler",
        "inputs": {
            "model": ["9", 0],
            "seed": 1,
            "steps": 1,
            "cfg": 1.0,
            "sampler_name": "nope",
            "scheduler": "normal",
            "positive": ["9", 0],
            "negative": ["9", 0],
            "latent_image": ["9", 0],
            "denoise": 1.0,
        },
    }
    save = {"class_type": "SaveLatent", "inputs": {"samples": ["3", 0], "filename_prefix": "x"}}
    outcome = server_response({"3": ksampler, "9": image(), "4": save}, catalogue())
    errors = outcome.node_errors["3"]["errors"]  # type: ignore[index]
    combo = next(item for item in errors if item["type"] == "value_not_in_list")  # type: ignore[union-attr]
    count = len(catalogue()["KSampler"].inputs["sampler_name"].spec[0])  # type: ignore[arg-type]
    assert combo["details"] == f"sampler_name: 'nope' not in (list of length {count})"
    assert combo["extra_info"]["input_config"] is None
    mismatches = {
        item["extra_info"]["input_name"]
        for item in errors
        if item["type"] == "return_type_mismatch"
    }  # type: ignore[index]
    assert mismatches == {"model", "positive", "negative", "latent_image"}


def test_a_dependency_cycle() -> None:
    prompt = {
        "1": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": preview(),
    }
    outcome = server_response(prompt, catalogue())
    assert outcome.status == 400
    assert set(outcome.node_errors) == {"1", "2"}
    error = only_error(outcome.node_errors, "1")
    assert error["type"] == "dependency_cycle"
    assert error["details"] == "1 (ImageInvert) -> 2 (ImageInvert) -> 1 (ImageInvert)"
    assert error["extra_info"] == {"node_id": "1", "cycle_nodes": ["1", "2"]}
    kinds = {(p.type, p.node_id) for p in find_problems(prompt, catalogue())}
    assert kinds == {("dependency_cycle", "1"), ("dependency_cycle", "2")}


def test_a_link_to_a_missing_node_below_an_output() -> None:
    prompt = {
        "5": {"class_type": "ImageInvert", "inputs": {"image": ["99", 0]}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "x"}},
    }
    outcome = server_response(prompt, catalogue())
    assert outcome.status == 400
    error = only_error(outcome.node_errors, "5")
    assert error["type"] == "exception_during_inner_validation"
    assert error["details"] == "'99'"
    extra = error["extra_info"]
    assert (extra["input_name"], extra["linked_node"], extra["exception_type"]) == (
        "images",
        ["5", 0],
        "KeyError",
    )
    assert outcome.error is not None
    assert outcome.error["details"] == ""  # the output's own reasons are empty


def test_an_output_index_out_of_range() -> None:
    prompt = {"1": image(), "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 5]}}}
    error = only_error(server_response(prompt, catalogue()).node_errors, "2")
    assert error["type"] == "exception_during_validation"
    assert error["details"] == "tuple index out of range"
    assert error["extra_info"]["exception_type"] == "IndexError"


def test_an_output_node_without_inputs_key() -> None:
    prompt = {"2": {"class_type": "PreviewImage"}}
    error = only_error(server_response(prompt, catalogue()).node_errors, "2")
    assert (error["type"], error["details"]) == ("exception_during_validation", "'inputs'")


def test_loaders_with_their_own_validator_skip_the_combo_check() -> None:
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "uploaded.png"}}, "2": preview()}
    assert server_response(prompt, catalogue()).node_errors == {}
    outcome = server_response(prompt, catalogue(), input_files={"other.png"})
    error = only_error(outcome.node_errors, "1")
    assert error["type"] == "custom_validation_failed"
    assert error["details"] == "image - Invalid image file: uploaded.png"
    assert server_response(prompt, catalogue(), input_files={"uploaded.png"}).accepted
    assert server_response(prompt, catalogue(), input_files={"uploaded.png"}).node_errors == {}


def test_partial_execution_targets_choose_the_outputs() -> None:
    prompt = {"1": image(), "2": preview(), "3": preview()}
    outcome = server_response(prompt, catalogue(), partial_execution_targets=["3"])
    assert outcome.outputs_to_execute == ["3"]
    outcome = server_response(prompt, catalogue(), partial_execution_targets=[3])
    assert outcome.error is not None
    assert outcome.error["type"] == "prompt_no_outputs"  # ids are compared as sent


def test_a_dynamic_combo_expands_into_dotted_inputs() -> None:
    resize = {
        "class_type": "ResizeImageMaskNode",
        "inputs": {
            "input": ["1", 0],
            "resize_type": "scale dimensions",
            "resize_type.height": 16,
            "resize_type.crop": "center",
            "scale_method": "area",
        },
    }
    outcome = server_response({"1": image(), "2": resize, "3": preview("2")}, catalogue())
    error = only_error(outcome.node_errors, "2")
    assert error["type"] == "required_input_missing"
    assert error["details"] == "width"  # the server names the last dotted part
    assert error["extra_info"] == {"input_name": "resize_type.width"}
    resize["inputs"]["resize_type.width"] = 16  # type: ignore[index]
    assert (
        server_response({"1": image(), "2": resize, "3": preview("2")}, catalogue()).node_errors
        == {}
    )


def test_an_autogrow_input_needs_its_first_copies() -> None:
    math = {"class_type": "ComfyMathExpression", "inputs": {"expression": "a"}}
    show = {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}
    error = only_error(server_response({"1": math, "2": show}, catalogue()).node_errors, "1")
    assert (error["type"], error["details"]) == ("required_input_missing", "a")
    math["inputs"]["values.a"] = 2  # type: ignore[index]
    assert server_response({"1": math, "2": show}, catalogue()).accepted


def test_return_types_by_the_servers_rule() -> None:
    assert types_match("IMAGE", "IMAGE")
    assert types_match("IMAGE", "IMAGE,MASK")
    assert types_match("FLOAT,INT", "INT")
    assert types_match("IMAGE", "*")
    assert types_match("*", "LATENT")
    assert types_match("COMFY_MATCHTYPE_V3", "IMAGE")
    assert types_match(["a", "b"], "COMBO")
    assert not types_match(["a", "b"], "STRING")
    assert not types_match("IMAGE", "STRING")
    assert not types_match("IMAGE", ["IMAGE"])


def test_offline_validation_reports_every_missing_class_and_goes_on() -> None:
    prompt = {
        "1": image(0),
        "2": {"class_type": "Mystery", "inputs": {"x": ["1", 0]}},
        "3": {"class_type": "AlsoMissing", "inputs": {}, "_meta": {"title": "Other"}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "a"}},
        "5": preview(),
    }
    problems = find_problems(prompt, catalogue())
    assert [(p.type, p.node_id) for p in problems] == [
        ("missing_node_type", "2"),
        ("missing_node_type", "3"),
        ("value_smaller_than_min", "1"),
    ]
    assert problems[1].message == "Node 'Other' not found. The custom node may not be installed."
    assert problems[2].dependent_outputs == ("5",)
    assert str(problems[2]) == "node 1 (EmptyImage) input 'width': value_smaller_than_min: width"
    outcome = server_response(prompt, catalogue())
    assert outcome.error is not None
    assert outcome.error["extra_info"] == {  # the server stops at the first unknown class
        "node_id": "2",
        "class_type": "Mystery",
        "node_title": "Mystery",
    }


def test_offline_dependents_are_the_outputs_that_really_depend() -> None:
    prompt = {"1": image(0), "2": preview(), "3": image(0), "4": preview("3")}
    outcome = server_response(prompt, catalogue())
    # The server appends every later failing output to every node that failed before.
    assert outcome.node_errors["1"]["dependent_outputs"] == ["2", "4"]  # type: ignore[index]
    problems = {p.node_id: p.dependent_outputs for p in find_problems(prompt, catalogue())}
    assert problems == {"1": ("2",), "3": ("4",)}


def test_no_outputs_offline() -> None:
    problems = find_problems({"1": image()}, catalogue())
    assert [(p.type, p.node_id) for p in problems] == [("prompt_no_outputs", None)]
    assert str(problems[0]) == "prompt: prompt_no_outputs: Prompt has no outputs"


@pytest.mark.parametrize("prompt", [[], {"1": "node"}, {"1": {"class_type": ["x"]}}])
def test_shapes_the_server_answers_with_500(prompt: Any) -> None:
    with pytest.raises(WorkflowFormatError):
        server_response(prompt, catalogue())


def test_answers_do_not_share_the_catalogues_objects() -> None:
    outcome = server_response({"1": image(0), "2": preview()}, catalogue())
    error = only_error(outcome.node_errors, "1")
    error["extra_info"]["input_config"][1]["min"] = 99
    assert catalogue().info("EmptyImage").input.required["width"][1]["min"] == 1
