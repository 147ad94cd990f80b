"""Workflow editing: load, address nodes, set inputs and links, seeds, images, serialise."""

from __future__ import annotations

import json
import random
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from comfy_async import Catalogue, Problem, PromptValidationError, Workflow
from comfy_async.errors import (
    AmbiguousNodeError,
    ConfigurationError,
    UnknownInputError,
    UnknownNodeError,
    UnsupportedWorkflowError,
    WorkflowError,
    WorkflowFormatError,
)
from comfy_async.models import FileRef, UploadResult
from comfy_async.workflow import KNOWN_OUTPUT_CLASSES, Link
from tests.conftest import REAL_COMFYUI

TXT2IMG: dict[str, Any] = {
    "1": {"inputs": {"ckpt_name": "model.safetensors"}, "class_type": "CheckpointLoaderSimple"},
    "2": {
        "inputs": {"text": "a cat", "clip": ["1", 1]},
        "class_type": "CLIPTextEncode",
        "_meta": {"title": "Positive"},
    },
    "3": {
        "inputs": {"text": "blurry", "clip": ["1", 1]},
        "class_type": "CLIPTextEncode",
        "_meta": {"title": "Negative"},
    },
    "4": {
        "inputs": {"width": 512, "height": 512, "batch_size": 1},
        "class_type": "EmptyLatentImage",
    },
    "5": {
        "inputs": {
            "seed": 7,
            "steps": 20,
            "cfg": 8.0,
            "sampler_name": "euler",
            "scheduler": "normal",
            "denoise": 1.0,
            "model": ["1", 0],
            "positive": ["2", 0],
            "negative": ["3", 0],
            "latent_image": ["4", 0],
        },
        "class_type": "KSampler",
    },
    "6": {"inputs": {"samples": ["5", 0], "vae": ["1", 2]}, "class_type": "VAEDecode"},
    "7": {
        "inputs": {"filename_prefix": "out", "images": ["6", 0]},
        "class_type": "SaveImage",
        "_meta": {"title": "Save"},
    },
}


@cache
def recorded() -> Catalogue:
    return Catalogue.from_file(REAL_COMFYUI / "object_info.json")


def test_load_from_dict_json_bytes_and_file(tmp_path: Path) -> None:
    text = json.dumps(TXT2IMG)
    path = tmp_path / "api.json"
    path.write_text(text)
    loaded = [
        Workflow(TXT2IMG),
        Workflow.from_dict(TXT2IMG),
        Workflow.from_json(text),
        Workflow.from_json(text.encode()),
        Workflow.from_file(path),
    ]
    assert all(workflow == loaded[0] for workflow in loaded)
    assert loaded[0].to_prompt() == TXT2IMG
    assert len(loaded[0]) == 7
    assert list(loaded[0]) == loaded[0].ids() == list(TXT2IMG)
    assert "5" in loaded[0]
    assert repr(loaded[0]) == "<Workflow 7 nodes>"


def test_the_prompt_is_copied_both_ways() -> None:
    source = json.loads(json.dumps(TXT2IMG))
    workflow = Workflow(source)
    source["5"]["inputs"]["steps"] = 99
    assert workflow.get("5", "steps") == 20
    prompt = workflow.to_prompt()
    prompt["5"]["inputs"]["steps"] = 98  # type: ignore[index]
    assert workflow.get("5", "steps") == 20


def test_save_round_trips(tmp_path: Path) -> None:
    workflow = Workflow(TXT2IMG)
    workflow.save(tmp_path / "out.json")
    assert Workflow.from_file(tmp_path / "out.json") == workflow
    assert json.loads(workflow.to_json()) == TXT2IMG


def test_integers_beyond_64_bits_survive() -> None:
    text = '{"1": {"class_type": "KSampler", "inputs": {"seed": 36893488147419103232}}}'
    workflow = Workflow.from_json(text)
    assert workflow.get("1", "seed") == 2**65
    assert json.loads(workflow.to_json()) == json.loads(text)


def test_nodes_by_id_title_and_class() -> None:
    workflow = Workflow(TXT2IMG)
    assert workflow.resolve("5") == "5"
    assert workflow.resolve(5) == "5"
    assert workflow.resolve("KSampler") == "5"
    assert workflow.resolve("Positive") == "2"
    assert workflow.find(class_type="CLIPTextEncode") == ["2", "3"]
    assert workflow.find(title="Save") == ["7"]
    node = workflow.node("Save")
    assert (node.id, node.class_type, node.title) == ("7", "SaveImage", "Save")
    assert node.links() == {"images": Link("6", 0)}
    with pytest.raises(AmbiguousNodeError, match=r"'CLIPTextEncode' matches 2 nodes \(2, 3\)"):
        workflow.resolve("CLIPTextEncode")
    with pytest.raises(UnknownNodeError, match="'nope'") as raised:
        workflow.resolve("nope")
    assert raised.value.reference == "nope"


def test_set_inputs_by_id_title_and_class() -> None:
    workflow = Workflow(TXT2IMG)
    workflow.set("Positive", text="a dog")
    workflow.set("KSampler", steps=30, cfg=6.5)
    workflow.set_input("4", "width", 768)
    assert workflow.get("2", "text") == "a dog"
    assert (workflow.get("5", "steps"), workflow.get("5", "cfg")) == (30, 6.5)
    assert workflow.get("4", "width") == 768
    with pytest.raises(AmbiguousNodeError):
        workflow.set("CLIPTextEncode", text="x")


def test_links_and_literal_lists() -> None:
    workflow = Workflow(TXT2IMG, catalogue=recorded())
    workflow.set("5", positive=Link("3", 0), negative=Link("2"))
    assert workflow.get("5", "positive") == Link("3", 0)
    assert workflow.to_prompt()["5"]["inputs"]["negative"] == ["2", 0]
    workflow.connect("7", "images", "6", 0)
    custom = Workflow({"1": {"class_type": "X", "inputs": {"tags": {"__value__": ["a"]}}}})
    custom.set("1", tags=["a", "b"])
    assert custom.to_prompt()["1"]["inputs"]["tags"] == {"__value__": ["a", "b"]}
    assert custom.get("1", "tags") == ["a", "b"]
    custom.set("1", tags=("c",))
    assert custom.to_prompt()["1"]["inputs"]["tags"] == {"__value__": ["c"]}


def test_bad_edits_name_the_node_and_input() -> None:
    workflow = Workflow(TXT2IMG, catalogue=recorded())
    with pytest.raises(UnknownInputError, match="node 5 has no input 'stpes'") as raised:
        workflow.set("5", stpes=3)
    assert (raised.value.node_id, raised.value.input_name) == ("5", "stpes")
    with pytest.raises(UnknownNodeError, match=r"'99'.*node 5 input 'model' links to it"):
        workflow.set("5", model=Link("99", 0))
    with pytest.raises(
        WorkflowError, match=r"node 1 .CheckpointLoaderSimple. has 3 outputs, not 4"
    ):
        workflow.set("5", model=Link("1", 3))
    with pytest.raises(WorkflowError, match="takes a link"):
        workflow.set("5", model="a model")
    with pytest.raises(UnknownInputError, match="hidden input"):
        workflow.set("7", prompt={})
    with pytest.raises(WorkflowError, match="is not a JSON value"):
        workflow.set("2", text=object())
    with pytest.raises(WorkflowError, match="bad output index"):
        workflow.set("5", model=Link("1", -1))
    before = workflow.to_prompt()
    with pytest.raises(UnknownInputError):
        workflow.set("5", steps=5, nope=1)  # nothing changes when one input fails
    assert workflow.to_prompt() == before


def test_without_a_catalogue_only_present_inputs_can_be_set() -> None:
    workflow = Workflow(TXT2IMG)
    workflow.set("5", steps=1)
    with pytest.raises(UnknownInputError, match="give the workflow a catalogue"):
        workflow.set("5", stpes=1)
    with pytest.raises(UnknownInputError, match="not set on this node"):
        workflow.get("5", "stpes")


def test_optional_and_dynamic_inputs_with_a_catalogue() -> None:
    workflow = Workflow(
        {"1": {"class_type": "ResizeImageMaskNode", "inputs": {}}}, catalogue=recorded()
    )
    workflow.set_input("1", "resize_type", "scale dimensions")
    workflow.set_input("1", "resize_type.width", 64)
    assert workflow.get("1", "resize_type.width") == 64
    with pytest.raises(UnknownInputError):
        workflow.set_input("1", "scale_method.width", 64)


def test_remove_input_and_add_node() -> None:
    workflow = Workflow(TXT2IMG, catalogue=recorded())
    node_id = workflow.add_node("PreviewImage", {"images": Link("6", 0)}, title="Look")
    assert node_id == "8"
    assert workflow.node("Look").inputs == {"images": ["6", 0]}
    workflow.remove_input("Look", "images")
    assert workflow.node("8").inputs == {}
    with pytest.raises(UnknownInputError):
        workflow.remove_input("8", "images")
    with pytest.raises(UnknownNodeError):
        workflow.add_node("NoSuchClass")
    with pytest.raises(WorkflowError, match="already used"):
        workflow.add_node("PreviewImage", node_id="8")
    with pytest.raises(UnknownInputError):
        workflow.add_node("PreviewImage", {"imgs": Link("6")})
    assert len(workflow) == 8  # the refused node was not kept


def test_seed_helpers() -> None:
    workflow = Workflow(TXT2IMG)
    assert workflow.seed_inputs() == [("5", "seed")]
    chosen = workflow.randomize_seeds(rng=random.Random(1))
    assert list(chosen) == [("5", "seed")]
    assert 0 <= chosen["5", "seed"] <= 2**32 - 1
    assert workflow.get("5", "seed") == chosen["5", "seed"]
    assert workflow.set_seed(1234) == [("5", "seed")]
    assert workflow.get("KSampler", "seed") == 1234
    with pytest.raises(UnknownInputError, match="no literal seed input"):
        workflow.set_seed(1, "7")


def test_seeds_with_a_catalogue_stay_in_range() -> None:
    prompt = {
        "1": {"class_type": "RandomNoise", "inputs": {"noise_seed": 1}},
        "2": {"class_type": "KSampler", "inputs": {"seed": ["9", 0]}},  # a linked seed: left alone
        "3": {"class_type": "EmptyImage", "inputs": {"width": 8, "fake_seed": 3}},  # not declared
    }
    workflow = Workflow(prompt, catalogue=recorded())
    assert workflow.seed_inputs() == [("1", "noise_seed")]
    for value in workflow.randomize_seeds(rng=random.Random(3)).values():
        assert 0 <= value <= 2**50
    assert Workflow(prompt).seed_inputs() == [("1", "noise_seed"), ("3", "fake_seed")]


def test_set_image_from_a_name_an_upload_and_a_file_ref() -> None:
    workflow = Workflow(
        {"1": {"class_type": "LoadImage", "inputs": {"image": "old.png"}}}, catalogue=recorded()
    )
    workflow.set_image("LoadImage", "new.png")
    assert workflow.get("1", "image") == "new.png"
    workflow.set_image("1", UploadResult(name="cat (1).png", subfolder="pets"))
    assert workflow.get("1", "image") == "pets/cat (1).png"
    workflow.set_image("1", FileRef(filename="render.png", type="output"))
    assert workflow.get("1", "image") == "render.png [output]"
    plain = Workflow(
        {"1": {"class_type": "LoadImageMask", "inputs": {"image": "a.png", "channel": "alpha"}}}
    )
    plain.set_image("1", "b.png")
    assert plain.get("1", "image") == "b.png"


def test_output_nodes_with_and_without_a_catalogue() -> None:
    prompt = dict(TXT2IMG)
    prompt["8"] = {"class_type": "ProbeTextOutput", "inputs": {"value": "x"}}
    assert Workflow(prompt).output_nodes() == ["7"]  # the probe node is not a known saver
    assert Workflow(prompt, catalogue=recorded()).output_nodes() == ["7", "8"]
    assert {"SaveImage", "PreviewImage", "SaveVideo"} <= KNOWN_OUTPUT_CLASSES


def test_copy_is_independent_and_equality_is_by_prompt() -> None:
    workflow = Workflow(TXT2IMG, catalogue=recorded())
    twin = workflow.copy()
    assert twin == workflow
    assert twin.catalogue is workflow.catalogue
    twin.set("5", steps=1)
    assert twin != workflow
    assert workflow.get("5", "steps") == 20
    assert workflow != TXT2IMG
    with pytest.raises(TypeError):
        hash(workflow)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "JSON object"),
        ({"1": "node"}, "not an object"),
        ({1: {"class_type": "X"}}, "not a string"),
        ({"1": {"class_type": 5}}, "'class_type' must be a str"),
        ({"1": {"inputs": []}}, "'inputs' must be a dict"),
        ({"1": {"inputs": {"x": {1, 2}}}}, "is not a JSON value"),
        ({"prompt": {"1": {}}, "client_id": "x"}, "whole POST /prompt body"),
    ],
)
def test_what_is_not_a_workflow(data: Any, message: str) -> None:
    with pytest.raises(WorkflowFormatError, match=message):
        Workflow(data)


def test_text_that_is_not_json() -> None:
    with pytest.raises(WorkflowFormatError, match="not JSON"):
        Workflow.from_json("{nope")
    with pytest.raises(WorkflowFormatError, match="JSON object"):
        Workflow.from_json("[1, 2]")


def test_a_ui_format_file_says_how_to_export_the_api_format() -> None:
    ui = {"nodes": [], "links": [], "version": 0.4}
    with pytest.raises(WorkflowFormatError, match=r"Export \(API\).*Dev mode options"):
        Workflow.from_dict(ui)
    with pytest.raises(WorkflowFormatError, match="UI-format"):
        Workflow(ui)
    assert len(Workflow.from_dict(ui, catalogue=recorded())) == 0


def test_a_ui_format_file_converts_with_a_catalogue(shared_fixtures: Path) -> None:
    path = shared_fixtures / "workflows" / "ui" / "flux_dev_full_text_to_image.json"
    workflow = Workflow.from_file(path, catalogue=recorded())
    assert workflow.catalogue is recorded()
    assert workflow.node("KSampler").id == "194:50"
    problems = workflow.validate()
    assert {p.type for p in problems} == {"value_not_in_list"}
    with pytest.raises(UnsupportedWorkflowError, match="CreateVideo"):
        Workflow.from_file(
            shared_fixtures / "workflows" / "ui" / "video_ltx2_3_i2v.json", catalogue=recorded()
        )


def test_validate_and_check() -> None:
    workflow = Workflow(TXT2IMG, catalogue=recorded())
    problems = workflow.validate()
    assert problems == [
        Problem(
            type="value_not_in_list",
            message="Value not in list",
            node_id="1",
            class_type="CheckpointLoaderSimple",
            input_name="ckpt_name",
            details="ckpt_name: 'model.safetensors' not in []",
            extra_info={
                "input_name": "ckpt_name",
                "input_config": [[], {"tooltip": "The name of the checkpoint (model) to load."}],
                "received_value": "model.safetensors",
            },
            dependent_outputs=("7",),
        )
    ]
    with pytest.raises(PromptValidationError) as raised:
        workflow.check()
    error = raised.value
    assert error.error_type == "prompt_outputs_failed_validation"
    assert error.problems() == [("1", "value_not_in_list", "ckpt_name", "Value not in list")]
    assert "ckpt_name" in str(error)
    with pytest.raises(ConfigurationError, match="needs a catalogue"):
        Workflow(TXT2IMG).validate()


def test_check_passes_a_valid_graph_and_can_allow_partial_acceptance() -> None:
    prompt = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
        },
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 1]}},
    }
    workflow = Workflow(prompt)
    with pytest.raises(PromptValidationError, match="drop"):
        workflow.check(recorded())
    workflow.check(recorded(), allow_partial=True)
    workflow.remove_input("3", "images")
    workflow.check(recorded(), targets=["2"])
