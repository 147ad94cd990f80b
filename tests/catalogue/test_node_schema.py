"""Typed input specs, outputs and flags: every form of protocol doc §4.6, and hostile ones."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from comfy_async import Catalogue
from comfy_async._graph.node_schema import parse_input
from comfy_async.catalogue import (
    BooleanInput,
    ComboInput,
    FloatInput,
    IntInput,
    LinkInput,
    NodeSchema,
    RawInput,
    StringInput,
)
from tests.conftest import REAL_COMFYUI


@pytest.fixture(scope="module")
def recorded() -> Catalogue:
    return Catalogue.from_file(REAL_COMFYUI / "object_info.json")


def test_int_with_max_beyond_int64_and_control(recorded: Catalogue) -> None:
    seed = recorded["KSampler"].inputs["seed"]
    assert isinstance(seed, IntInput)
    assert seed.max == 2**64 - 1
    assert seed.min == 0
    assert seed.default == 0
    assert seed.control_after_generate is True
    assert seed.required
    assert seed.is_widget
    assert seed.tooltip == "The random seed used for creating the noise."
    value = recorded["PrimitiveInt"].inputs["value"]
    assert isinstance(value, IntInput)
    assert value.control_after_generate == "fixed"


def test_float_with_step_and_round(recorded: Catalogue) -> None:
    cfg = recorded["KSampler"].inputs["cfg"]
    assert isinstance(cfg, FloatInput)
    assert (cfg.default, cfg.min, cfg.max, cfg.step, cfg.round) == (8.0, 0.0, 100.0, 0.1, 0.01)


def test_string_multiline_and_dynamic_prompts(recorded: Catalogue) -> None:
    text = recorded["CLIPTextEncode"].inputs["text"]
    assert isinstance(text, StringInput)
    assert text.multiline
    assert text.dynamic_prompts
    prefix = recorded["SaveImage"].inputs["filename_prefix"]
    assert isinstance(prefix, StringInput)
    assert prefix.default == "ComfyUI"
    assert not prefix.multiline


def test_boolean_with_labels(recorded: Catalogue) -> None:
    flag = recorded["ByteDanceSeedreamLayerSeparationNode"].inputs["crop_layers"]
    assert isinstance(flag, BooleanInput)
    assert flag.default is False
    assert (flag.label_on, flag.label_off) == ("minimal size", "full canvas")


def test_legacy_combo(recorded: Catalogue) -> None:
    sampler = recorded["KSampler"].inputs["sampler_name"]
    assert isinstance(sampler, ComboInput)
    assert sampler.legacy
    assert sampler.options is not None
    assert "euler" in sampler.options
    assert not sampler.multiselect


def test_new_combo_and_an_empty_one(recorded: Catalogue) -> None:
    model = recorded["UpscaleModelLoader"].inputs["model_name"]
    assert isinstance(model, ComboInput)
    assert not model.legacy
    assert model.options == ()


def test_remote_combo_without_options(recorded: Catalogue) -> None:
    image = recorded["LoadImageOutput"].inputs["image"]
    assert isinstance(image, ComboInput)
    assert image.options is None
    assert image.remote is not None
    assert image.remote["route"] == "/internal/files/output"
    assert image.upload == "image"


def test_upload_combos(recorded: Catalogue) -> None:
    image = recorded["LoadImage"].inputs["image"]
    assert isinstance(image, ComboInput)
    assert image.upload == "image"
    audio = recorded["LoadAudio"].inputs["audio"]
    assert isinstance(audio, ComboInput)
    assert audio.upload == "audio"
    assert recorded["KSampler"].inputs["scheduler"].kind == "COMBO"


def test_sockets_and_unions(recorded: Catalogue) -> None:
    model = recorded["KSampler"].inputs["model"]
    assert isinstance(model, LinkInput)
    assert model.types == ("MODEL",)
    assert not model.is_widget
    clip = recorded["CLIPTextEncode"].inputs["clip"]
    assert isinstance(clip, LinkInput)
    spec = parse_input("input", ["IMAGE,MASK", {}], required=True)
    assert isinstance(spec, LinkInput)
    assert spec.types == ("IMAGE", "MASK")


def test_dynamic_v3_types_are_kept_raw(recorded: Catalogue) -> None:
    resize = recorded["ResizeImageMaskNode"].inputs["resize_type"]
    assert isinstance(resize, RawInput)
    assert resize.type == "COMFY_DYNAMICCOMBO_V3"
    assert resize.is_dynamic
    assert isinstance(resize.config["options"], list)
    grow = recorded["ComfyMathExpression"].inputs["values"]
    assert isinstance(grow, RawInput)
    assert grow.type == "COMFY_AUTOGROW_V3"
    match = recorded["ComfySwitchNode"].inputs["on_false"]
    assert isinstance(match, RawInput)
    assert match.type == "COMFY_MATCHTYPE_V3"


def test_hidden_inputs_in_both_shapes(recorded: Catalogue) -> None:
    assert recorded["SaveImage"].hidden == {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
    assert recorded["SaveGLB"].hidden == {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
    assert "prompt" not in recorded["SaveImage"].inputs


def test_sections_and_widgets(recorded: Catalogue) -> None:
    schema = recorded["CreateVideo"]
    assert list(schema.required) == ["images", "fps"]
    assert list(schema.optional) == ["audio", "bit_depth"]
    assert list(schema.widgets) == ["fps", "bit_depth"]
    assert list(schema.inputs) == ["images", "fps", "audio", "bit_depth"]


def test_outputs_with_lengths_that_differ(recorded: Catalogue) -> None:
    outputs = recorded["LoraLoaderModelOnly"].outputs  # two tooltips for one output
    assert len(outputs) == 1
    assert outputs[0].type == "MODEL"
    assert outputs[0].tooltip == "The modified diffusion model."
    odd = Catalogue.from_mapping(
        {
            "Odd": {
                "name": "Odd",
                "output": ["IMAGE", ["a", "b"], "MASK"],
                "output_name": ["picture"],
                "output_is_list": [True, None],
                "output_tooltips": [None],
            }
        }
    )["Odd"]
    assert [(o.index, o.type, o.name, o.is_list) for o in odd.outputs] == [
        (0, "IMAGE", "picture", True),
        (1, "COMBO", "COMBO", False),
        (2, "MASK", "MASK", False),
    ]
    assert odd.outputs[1].choices == ("a", "b")
    assert odd.return_types == ("IMAGE", "COMBO", "MASK")


def test_match_type_outputs(recorded: Catalogue) -> None:
    (output,) = recorded["ResizeImageMaskNode"].outputs
    assert output.matchtype == "input_type"


def test_flags(recorded: Catalogue) -> None:
    assert recorded["ClaudeNode"].api_node
    assert recorded["ImageBatch"].deprecated
    assert recorded["LoadImageOutput"].experimental
    assert recorded["RebatchLatents"].is_input_list
    assert recorded["SaveImage"].output_node
    assert not recorded["KSampler"].output_node
    assert not recorded["KSampler"].deprecated
    assert recorded["EmptyImage"].display_name == "Empty Image"


def test_a_three_item_spec_uses_its_first_two() -> None:
    spec = parse_input(
        "output_path", ["STRING", {"default": "x"}, "a stray description"], required=True
    )
    assert isinstance(spec, StringInput)
    assert spec.default == "x"


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ([], "raw"),
        ([None], "raw"),
        ([42, {}], "raw"),
        (["INT", "not a dict"], "INT"),
        (["COMBO", {"options": "nope"}], "COMBO"),
        (["FLOAT", {"min": "low", "round": False}], "FLOAT"),
        (["BOOLEAN", {"default": "yes"}], "BOOLEAN"),
        (["CUSTOM_THING", {"socketless": True}], "link"),
    ],
)
def test_odd_specs_are_typed_not_refused(spec: list[Any], kind: str) -> None:
    typed = parse_input("x", spec, required=False)
    assert typed.kind == kind
    assert not typed.required


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.lists(json_values, max_size=4))
def test_any_json_spec_parses(spec: list[Any]) -> None:
    typed = parse_input("x", spec, required=True)
    assert typed.spec == spec
    assert isinstance(typed.config, dict)
    assert isinstance(typed.is_widget, bool)


@given(
    st.dictionaries(
        st.sampled_from(["required", "optional"]),
        st.dictionaries(
            st.text(min_size=1, max_size=6), st.lists(json_values, max_size=3), max_size=4
        ),
        max_size=2,
    )
)
def test_any_node_builds_a_schema(sections: dict[str, dict[str, list[Any]]]) -> None:
    schema = Catalogue.from_mapping({"N": {"name": "N", "input": sections}})["N"]
    assert isinstance(schema, NodeSchema)
    assert set(schema.inputs) == {name for section in sections.values() for name in section}
