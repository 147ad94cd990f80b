"""UI-format workflows: recognised, and converted to the API format as the UI queues them.

The shared UI templates are converted against every catalogue: each either converts, or fails
with UnsupportedWorkflowError naming the node and the reason, and a converted graph validates
with only problems explained by the server's missing model files. Small hand-made graphs pin
each rule: muted, bypassed, reroute and primitive nodes, control values, uploads, subgraphs.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from comfy_async._graph.ui_format import convert_ui_workflow, is_ui_format
from comfy_async._graph.validation import find_problems
from comfy_async.catalogue import Catalogue
from comfy_async.errors import UnsupportedWorkflowError, WorkflowFormatError
from tests.conftest import REAL_COMFYUI, SHARED_FIXTURES

DUMPS = {
    "recorded": REAL_COMFYUI / "object_info.json",
    "autoflow": SHARED_FIXTURES / "object_info" / "autoflow_2026-02_904-nodes.json",
    "redlip": SHARED_FIXTURES / "object_info" / "redlip-app_2025-08_2093-nodes.json",
    "yuzuki": SHARED_FIXTURES / "object_info" / "yuzuki-phone_2026-05_1686-nodes.json",
    "synthetic": SHARED_FIXTURES / "object_info" / "synthetic_25MB_2650-nodes.json.gz",
}
FLUX = "flux_dev_full_text_to_image.json"
QWEN = "image_qwen_image_edit_2511.json"
ANGLES = "templates-1_click_multiple_character_angles-v1.0.json"
LTX = "video_ltx2_3_i2v.json"

# What each template gives against each catalogue: node count, or the node and reason refused.
EXPECTED: dict[tuple[str, str], int | tuple[str, str]] = {
    (FLUX, "recorded"): 9,
    (FLUX, "autoflow"): 9,
    (FLUX, "redlip"): 9,
    (FLUX, "yuzuki"): 9,
    (FLUX, "synthetic"): 9,
    (QWEN, "recorded"): 25,
    # CFGNorm gained a widget (pre_cfg) after these dumps were taken: the values do not fit.
    (QWEN, "autoflow"): ("170:152 (CFGNorm)", "stores 2 widget values"),
    (QWEN, "redlip"): ("170:147 (FluxKontextMultiReferenceLatentMethod)", "not in the catalogue"),
    (QWEN, "yuzuki"): ("170:152 (CFGNorm)", "stores 2 widget values"),
    (QWEN, "synthetic"): ("170:152 (CFGNorm)", "stores 2 widget values"),
    (ANGLES, "recorded"): 193,
    (ANGLES, "autoflow"): 193,
    (ANGLES, "redlip"): (
        "427:221:147 (FluxKontextMultiReferenceLatentMethod)",
        "not in the catalogue",
    ),
    (ANGLES, "yuzuki"): 193,
    (ANGLES, "synthetic"): 193,
    # The template's CreateVideo has a third widget (a colour space) no catalogue here knows.
    (LTX, "recorded"): ("320:310 (CreateVideo)", "stores 3 widget values"),
    (LTX, "autoflow"): ("320:292 (ComfyMathExpression)", "not in the catalogue"),
    (LTX, "redlip"): ("320:281 (ManualSigmas)", "not in the catalogue"),
    (LTX, "yuzuki"): ("320:310 (CreateVideo)", "stores 3 widget values"),
    (LTX, "synthetic"): ("320:310 (CreateVideo)", "stores 3 widget values"),
}
MODEL_INPUTS = {
    "unet_name",
    "clip_name",
    "clip_name1",
    "clip_name2",
    "vae_name",
    "lora_name",
    "ckpt_name",
    "model_name",
    "image",
}


@cache
def catalogue(name: str) -> Catalogue:
    return Catalogue.from_file(DUMPS[name])


def template(shared_fixtures: Path, name: str) -> dict[str, Any]:
    data = json.loads((shared_fixtures / "workflows" / "ui" / name).read_text())
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize(("name", "dump"), sorted(EXPECTED))
def test_templates_convert_or_say_why_not(shared_fixtures: Path, name: str, dump: str) -> None:
    if not DUMPS[dump].exists():
        pytest.skip(f"{dump} is not present")
    data = template(shared_fixtures, name)
    assert is_ui_format(data)
    expected = EXPECTED[name, dump]
    if isinstance(expected, tuple):
        where, reason = expected
        with pytest.raises(UnsupportedWorkflowError) as raised:
            convert_ui_workflow(data, catalogue(dump))
        assert f"node {where}" in str(raised.value)
        assert reason in str(raised.value)
        return
    prompt = convert_ui_workflow(data, catalogue(dump))
    assert len(prompt) == expected
    # Every problem left is a model or input file this server does not have.
    for problem in find_problems(prompt, catalogue(dump)):
        assert problem.type == "value_not_in_list", problem
        assert problem.input_name in MODEL_INPUTS, problem


def test_the_flux_template_as_the_ui_queues_it(shared_fixtures: Path) -> None:
    prompt = convert_ui_workflow(template(shared_fixtures, FLUX), catalogue("recorded"))
    assert list(prompt) == [f"194:{n}" for n in (45, 46, 47, 48, 49, 50, 51, 52)] + ["9"]
    assert prompt["194:50"] == {
        "inputs": {
            "seed": 0,  # "randomize" is the control value: never sent
            "steps": 20,
            "cfg": 1,
            "sampler_name": "euler",
            "scheduler": "simple",
            "denoise": 1,
            "model": ["194:46", 0],
            "positive": ["194:49", 0],
            "negative": ["194:52", 0],
            "latent_image": ["194:48", 0],
        },
        "class_type": "KSampler",
        "_meta": {"title": "KSampler"},
    }
    assert prompt["9"]["inputs"] == {"filename_prefix": "ComfyUI", "images": ["194:51", 0]}
    assert prompt["194:47"]["inputs"]["device"] == "default"  # an advanced widget, kept
    assert prompt["194:45"]["_meta"] == {"title": "Load VAE"}  # the class's display name


def test_the_qwen_template_links_through_the_subgraph_ports(shared_fixtures: Path) -> None:
    prompt = convert_ui_workflow(template(shared_fixtures, QWEN), catalogue("recorded"))
    encoder = prompt["170:151"]
    assert encoder["class_type"] == "TextEncodeQwenImageEditPlus"
    # image1 comes from a scaler inside fed by LoadImage 41 outside, image2 straight from
    # LoadImage 83 through the port, image3's port is unconnected outside: left unset.
    assert encoder["inputs"]["image1"] == ["170:160", 0]
    assert encoder["inputs"]["image2"] == ["83", 0]
    assert "image3" not in encoder["inputs"]
    assert prompt["170:160"]["inputs"] == {"image": ["41", 0]}
    assert prompt["170:169"]["inputs"]["steps"] == ["170:167", 0]  # a widget fed by a link
    loads = {node_id for node_id, node in prompt.items() if node["class_type"] == "LoadImage"}
    assert loads == {"41", "83"}
    assert all("upload" not in prompt[node_id]["inputs"] for node_id in loads)


# --------------------------------------------------------------------------- small graphs


def slot(name: str, kind: str, link: int | None = None, *, widget: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "type": kind, "link": link}
    if widget:
        entry["widget"] = {"name": name}
    return entry


def node(
    node_id: int,
    kind: str,
    *,
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[str] | None = None,
    values: Any = None,
    mode: int = 0,
    title: str | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": node_id,
        "type": kind,
        "mode": mode,
        "inputs": inputs or [],
        "outputs": [{"name": name, "type": name, "links": []} for name in outputs or []],
        "widgets_values": values,
    }
    if title is not None:
        entry["title"] = title
    return entry


def graph(nodes: list[dict[str, Any]], links: list[list[Any]], **extra: Any) -> dict[str, Any]:
    return {"nodes": nodes, "links": links, "version": 0.4, **extra}


def empty_image(node_id: int = 1, width: int = 8, **kw: Any) -> dict[str, Any]:
    return node(node_id, "EmptyImage", outputs=["IMAGE"], values=[width, 8, 1, 0], **kw)


def recorded() -> Catalogue:
    return catalogue("recorded")


def convert(nodes: list[dict[str, Any]], links: list[list[Any]], **extra: Any) -> dict[str, Any]:
    return convert_ui_workflow(graph(nodes, links, **extra), recorded())


def test_widget_values_map_to_names_and_titles_are_kept() -> None:
    prompt = convert(
        [empty_image(title="Canvas"), node(2, "PreviewImage", inputs=[slot("images", "IMAGE", 1)])],
        [[1, 1, 0, 2, 0, "IMAGE"]],
    )
    assert prompt == {
        "1": {
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
            "class_type": "EmptyImage",
            "_meta": {"title": "Canvas"},
        },
        "2": {
            "inputs": {"images": ["1", 0]},
            "class_type": "PreviewImage",
            "_meta": {"title": "Preview Image"},
        },
    }


def test_a_muted_node_is_left_out_with_its_links() -> None:
    prompt = convert(
        [empty_image(mode=2), node(2, "PreviewImage", inputs=[slot("images", "IMAGE", 1)])],
        [[1, 1, 0, 2, 0, "IMAGE"]],
    )
    assert list(prompt) == ["2"]
    assert prompt["2"]["inputs"] == {}


def test_a_bypassed_node_passes_its_matching_input_through() -> None:
    invert = node(2, "ImageInvert", inputs=[slot("image", "IMAGE", 1)], outputs=["IMAGE"], mode=4)
    show = node(3, "PreviewImage", inputs=[slot("images", "IMAGE", 2)])
    prompt = convert(
        [empty_image(), invert, show], [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"]]
    )
    assert set(prompt) == {"1", "3"}
    assert prompt["3"]["inputs"] == {"images": ["1", 0]}


def test_a_bypassed_node_with_no_matching_input_leaves_the_target_unset() -> None:
    scale = node(
        2,
        "ImageScaleBy",
        inputs=[slot("image", "IMAGE", None)],
        outputs=["IMAGE"],
        values=["nearest-exact", 1.0],
        mode=4,
    )
    show = node(3, "PreviewImage", inputs=[slot("images", "IMAGE", 2)])
    prompt = convert([scale, show], [[2, 2, 0, 3, 0, "IMAGE"]])
    assert prompt["3"]["inputs"] == {}


def test_reroutes_are_followed() -> None:
    reroute = node(5, "Reroute", inputs=[slot("", "*", 1)], outputs=["IMAGE"])
    second = node(6, "Reroute", inputs=[slot("", "*", 2)], outputs=["IMAGE"])
    show = node(3, "PreviewImage", inputs=[slot("images", "IMAGE", 3)])
    links = [[1, 1, 0, 5, 0, "IMAGE"], [2, 5, 0, 6, 0, "IMAGE"], [3, 6, 0, 3, 0, "IMAGE"]]
    prompt = convert([empty_image(), reroute, second, show], links)
    assert prompt["3"]["inputs"] == {"images": ["1", 0]}
    assert set(prompt) == {"1", "3"}


def test_a_primitive_node_writes_its_value_into_the_widget() -> None:
    primitive = node(7, "PrimitiveNode", outputs=["INT"], values=[640, "fixed"])
    image = empty_image(inputs=[slot("width", "INT", 4, widget=True)])
    show = node(3, "PreviewImage", inputs=[slot("images", "IMAGE", 1)])
    prompt = convert([primitive, image, show], [[4, 7, 0, 1, 0, "INT"], [1, 1, 0, 3, 0, "IMAGE"]])
    assert prompt["1"]["inputs"]["width"] == 640
    assert "7" not in prompt


def test_control_values_and_upload_buttons_are_not_sent() -> None:
    sampler = node(
        3,
        "KSampler",
        inputs=[
            slot(name, kind, None)
            for name, kind in (
                ("model", "MODEL"),
                ("positive", "CONDITIONING"),
                ("negative", "CONDITIONING"),
                ("latent_image", "LATENT"),
            )
        ],
        outputs=["LATENT"],
        values=[42, "increment", 20, 7.5, "euler", "normal", 1.0],
    )
    loader = node(4, "LoadImage", outputs=["IMAGE", "MASK"], values=["cat.png", "image"])
    prompt = convert([sampler, loader], [])
    assert prompt["3"]["inputs"] == {
        "seed": 42,
        "steps": 20,
        "cfg": 7.5,
        "sampler_name": "euler",
        "scheduler": "normal",
        "denoise": 1.0,
    }
    assert prompt["4"]["inputs"] == {"image": "cat.png"}


def test_widget_values_stored_by_name() -> None:
    prompt = convert(
        [
            node(
                1,
                "EmptyImage",
                values={"width": 32, "height": 16, "batch_size": 2, "color": 5, "extra": 1},
            )
        ],
        [],
    )
    assert prompt["1"]["inputs"] == {"width": 32, "height": 16, "batch_size": 2, "color": 5}


def test_missing_trailing_values_take_the_schema_default() -> None:
    prompt = convert([node(1, "CreateVideo", inputs=[slot("images", "IMAGE")], values=[24])], [])
    assert prompt["1"]["inputs"] == {"fps": 24, "bit_depth": 8}


def test_a_literal_list_value_is_wrapped() -> None:
    custom = Catalogue.from_mapping(
        {
            "Pick": {
                "name": "Pick",
                "input": {
                    "required": {"tags": ["COMBO", {"options": ["a", "b"], "multiselect": True}]}
                },
            }
        }
    )
    prompt = convert_ui_workflow(graph([node(1, "Pick", values=[["a", "b"]])], []), custom)
    assert prompt["1"]["inputs"] == {"tags": {"__value__": ["a", "b"]}}


def test_a_dynamic_combo_stores_its_choice_then_the_choices_widgets() -> None:
    resize = node(
        2,
        "ResizeImageMaskNode",
        inputs=[slot("input", "IMAGE,MASK", 1)],
        outputs=["IMAGE"],
        values=["scale dimensions", 1920, 1088, "center", "lanczos"],
    )
    prompt = convert([empty_image(), resize], [[1, 1, 0, 2, 0, "IMAGE"]])
    assert prompt["2"]["inputs"] == {
        "resize_type": "scale dimensions",
        "resize_type.width": 1920,
        "resize_type.height": 1088,
        "resize_type.crop": "center",
        "scale_method": "lanczos",
        "input": ["1", 0],
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([8, 8, 1, 0, 99], "stores 5 widget values but this server's EmptyImage has 4 widgets"),
        (["wide", 8, 1, 0], "does not fit widget 'width' (INT)"),
    ],
)
def test_values_that_do_not_fit_are_refused(values: list[Any], message: str) -> None:
    with pytest.raises(UnsupportedWorkflowError, match=re.escape(message)):
        convert([node(1, "EmptyImage", values=values)], [])


def test_a_misplaced_control_value_is_refused() -> None:
    values = [42, 20, 7.5, "euler", "normal", 1.0, "fixed"]  # saved without the control value
    with pytest.raises(UnsupportedWorkflowError, match="control_after_generate"):
        convert([node(3, "KSampler", values=values)], [])


def test_unknown_classes_and_group_nodes_are_refused_by_name() -> None:
    with pytest.raises(
        UnsupportedWorkflowError, match=r"node 4 \(SetNode\): its class is not in the catalogue"
    ):
        convert([node(4, "SetNode", values=["x"])], [])
    with pytest.raises(
        UnsupportedWorkflowError, match=r"node 5 \(workflow>Upscale\): a legacy group node"
    ):
        convert([node(5, "workflow>Upscale")], [], extra={"groupNodes": {"Upscale": {}}})


def test_notes_and_muted_unknown_nodes_are_ignored() -> None:
    prompt = convert(
        [
            node(1, "Note", values=["hello"]),
            node(2, "MarkdownNote", values=["# hi"]),
            node(3, "SetNode", mode=2),
            empty_image(4),
        ],
        [],
    )
    assert list(prompt) == ["4"]


def test_broken_structure_is_a_format_error() -> None:
    with pytest.raises(WorkflowFormatError):
        convert_ui_workflow({"nodes": [{"id": 1}], "links": []}, recorded())
    with pytest.raises(WorkflowFormatError):
        convert_ui_workflow({"prompt": {}}, recorded())
    with pytest.raises(UnsupportedWorkflowError, match="link 9, not found"):
        convert([node(2, "PreviewImage", inputs=[slot("images", "IMAGE", 9)])], [])


def test_the_format_is_recognised() -> None:
    assert is_ui_format({"nodes": [], "links": []})
    assert not is_ui_format({"1": {"class_type": "EmptyImage", "inputs": {}}})
    assert not is_ui_format([])


# --------------------------------------------------------------------------- subgraphs


def subgraph(
    graph_id: str,
    nodes: list[dict[str, Any]],
    links: list[dict[str, Any]],
    inputs: list[tuple[str, str, list[int]]],
    outputs: list[tuple[str, str, list[int]]],
) -> dict[str, Any]:
    return {
        "id": graph_id,
        "name": graph_id,
        "nodes": nodes,
        "links": links,
        "inputs": [{"name": n, "type": t, "linkIds": ids} for n, t, ids in inputs],
        "outputs": [{"name": n, "type": t, "linkIds": ids} for n, t, ids in outputs],
    }


def link(
    link_id: int, origin: int, origin_slot: int, target: int, target_slot: int
) -> dict[str, Any]:
    return {
        "id": link_id,
        "origin_id": origin,
        "origin_slot": origin_slot,
        "target_id": target,
        "target_slot": target_slot,
        "type": "*",
    }


INNER = subgraph(
    "inner-def",
    [
        node(1, "ImageInvert", inputs=[slot("image", "IMAGE", 11)], outputs=["IMAGE"]),
        node(
            2,
            "ImageScaleBy",
            inputs=[slot("image", "IMAGE", 12), slot("scale_by", "FLOAT", 13, widget=True)],
            outputs=["IMAGE"],
            values=["nearest-exact", 0.5],
        ),
    ],
    [link(11, -10, 0, 1, 0), link(12, 1, 0, 2, 0), link(13, -10, 1, 2, 1), link(14, 2, 0, -20, 0)],
    [("image", "IMAGE", [11]), ("scale_by", "FLOAT", [13])],
    [("IMAGE", "IMAGE", [14])],
)


def with_instance(values: list[Any] | None) -> dict[str, Any]:
    instance = node(
        10,
        "inner-def",
        inputs=[slot("image", "IMAGE", 1), slot("scale_by", "FLOAT", None, widget=True)],
        outputs=["IMAGE"],
        values=values,
    )
    show = node(3, "PreviewImage", inputs=[slot("images", "IMAGE", 2)])
    return graph(
        [empty_image(), instance, show],
        [[1, 1, 0, 10, 0, "IMAGE"], [2, 10, 0, 3, 0, "IMAGE"]],
        definitions={"subgraphs": [INNER]},
    )


def test_a_subgraph_is_flattened_with_path_ids() -> None:
    prompt = convert_ui_workflow(with_instance(None), recorded())
    assert set(prompt) == {"1", "10:1", "10:2", "3"}
    assert prompt["10:1"]["inputs"] == {"image": ["1", 0]}
    assert prompt["10:2"]["inputs"] == {
        "upscale_method": "nearest-exact",
        "scale_by": 0.5,
        "image": ["10:1", 0],
    }
    assert prompt["3"]["inputs"] == {"images": ["10:2", 0]}
    assert find_problems(prompt, recorded()) == []


def test_a_value_promoted_on_the_instance_wins() -> None:
    prompt = convert_ui_workflow(with_instance([2.0]), recorded())
    assert prompt["10:2"]["inputs"]["scale_by"] == 2.0
    with pytest.raises(
        UnsupportedWorkflowError, match="stores 2 promoted values for 1 widget ports"
    ):
        convert_ui_workflow(with_instance([2.0, 3.0]), recorded())


def test_nested_subgraphs_get_nested_ids() -> None:
    outer = subgraph(
        "outer-def",
        [node(20, "inner-def", inputs=[slot("image", "IMAGE", 21)], outputs=["IMAGE"])],
        [link(21, -10, 0, 20, 0), link(22, 20, 0, -20, 0)],
        [("image", "IMAGE", [21])],
        [("IMAGE", "IMAGE", [22])],
    )
    instance = node(30, "outer-def", inputs=[slot("image", "IMAGE", 1)], outputs=["IMAGE"])
    show = node(3, "PreviewImage", inputs=[slot("images", "IMAGE", 2)])
    data = graph(
        [empty_image(), instance, show],
        [[1, 1, 0, 30, 0, "IMAGE"], [2, 30, 0, 3, 0, "IMAGE"]],
        definitions={"subgraphs": [INNER, outer]},
    )
    prompt = convert_ui_workflow(data, recorded())
    assert set(prompt) == {"1", "30:20:1", "30:20:2", "3"}
    assert prompt["30:20:1"]["inputs"] == {"image": ["1", 0]}
    assert prompt["3"]["inputs"] == {"images": ["30:20:2", 0]}


def test_a_muted_subgraph_instance_is_refused() -> None:
    data = with_instance(None)
    data["nodes"][1]["mode"] = 2
    with pytest.raises(
        UnsupportedWorkflowError, match=r"node 10 \(inner-def\): a muted or bypassed subgraph"
    ):
        convert_ui_workflow(data, recorded())


def test_dynamic_prompt_choices_are_refused() -> None:
    text = node(2, "CLIPTextEncode", inputs=[slot("clip", "CLIP")], values=["a {red|blue} car"])
    with pytest.raises(
        UnsupportedWorkflowError, match=r"node 2 \(CLIPTextEncode\).*dynamic-prompt"
    ):
        convert([text], [])
    plain = node(2, "CLIPTextEncode", inputs=[slot("clip", "CLIP")], values=["a {red} car"])
    assert convert([plain], [])["2"]["inputs"]["text"] == "a {red} car"
