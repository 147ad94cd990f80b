from __future__ import annotations

import gzip
import json
from pathlib import Path

import msgspec
import pytest

from comfy_async.models import (
    NodeInfo,
    decode_node_info,
    decode_object_info,
    decode_object_info_index,
)
from tests.recordings import find

RECORDED = Path(__file__).resolve().parent.parent / "data" / "real_comfyui" / "object_info.json"

SHARED_DUMPS = [
    "autoflow_2026-02_904-nodes.json",
    "redlip-app_2025-08_2093-nodes.json",
    "yuzuki-phone_2026-05_1686-nodes.json",
    "synthetic_25MB_2650-nodes.json.gz",
]


def _check_every_class(raw: bytes) -> dict[str, NodeInfo]:
    nodes = decode_object_info(raw)
    index = decode_object_info_index(raw)
    assert list(index) == list(nodes)
    for class_name, node in nodes.items():
        assert node.name == class_name
        assert node.title
        assert decode_node_info(index[class_name]) == node
    return nodes


def test_recorded_dump_has_890_classes() -> None:
    nodes = _check_every_class(RECORDED.read_bytes())
    assert len(nodes) == 890
    assert {"ProbeSleepProgress", "ProbeRaise", "ProbeTextOutput", "ProbeBlock"} <= set(nodes)


@pytest.mark.parametrize("name", SHARED_DUMPS)
def test_every_class_of_every_shared_dump_decodes(shared_fixtures: Path, name: str) -> None:
    path = shared_fixtures / "object_info" / name
    if not path.exists():
        pytest.skip(f"{name} is not present")
    raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    nodes = _check_every_class(raw)
    assert len(nodes) == int(name.rsplit("_", 1)[1].split("-", 1)[0])


def test_legacy_node() -> None:
    (node,) = decode_object_info(
        find("10", "GET /object_info/SaveImage legacy output node").body
    ).values()
    assert node.display_name == "Save Image"
    assert node.title == "Save Image"
    assert node.output_node is True
    assert node.category == "image"
    assert node.python_module == "nodes"
    assert node.input.required["filename_prefix"][0] == "STRING"
    assert node.input.hidden == {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
    assert node.input.optional == {}
    assert node.input_order.required == ["images", "filename_prefix"]
    assert node.input_order.hidden == ["prompt", "extra_pnginfo"]
    assert node.output == ["IMAGE"]
    assert node.output_is_list == [False]
    assert node.essentials_category == "Basics"
    assert "save image" in (node.search_aliases or [])
    # legacy nodes omit what they do not state
    assert node.deprecated is None
    assert node.price_badge is None


def test_custom_node_combo_spec_is_kept_as_decoded_json() -> None:
    body = find("10", "GET /object_info/ProbeSleepProgress custom node").body
    node = decode_object_info(body)["ProbeSleepProgress"]
    assert node.input.required["preview_format"] == [["JPEG", "PNG", "none"], {"default": "JPEG"}]
    assert node.input.required["image"] == ["IMAGE"]
    assert node.input.hidden == {"unique_id": "UNIQUE_ID"}


def test_unknown_class_is_an_empty_dict() -> None:
    assert (
        decode_object_info(find("10", "GET /object_info/NoSuchNode unknown node -> {}").body) == {}
    )


def test_schema_facts_of_the_recorded_dump() -> None:
    nodes = decode_object_info(RECORDED.read_bytes())
    values = list(nodes.values())
    assert any(n.display_name is None for n in values)  # schema-based nodes may send null
    assert all(n.title == (n.display_name or n.name) for n in values)
    assert any(n.search_aliases is None for n in values)
    assert any(n.price_badge is not None and n.api_node for n in values)
    assert any(None in n.output_tooltips for n in values)
    # schema-based hidden inputs are one-element lists
    assert any(isinstance(spec, list) for n in values for spec in n.input.hidden.values())
    # the probe node added for the blocker scenario is there
    assert nodes["ProbeBlock"].python_module.startswith("custom_nodes")


def test_schema_based_node_with_every_key_null() -> None:
    body = json.dumps(
        {
            "V3Node": {
                "input": {"required": {"unique_id": ["UNIQUE_ID"]}, "hidden": {"u": ["UNIQUE_ID"]}},
                "input_order": {"required": ["unique_id"]},
                "is_input_list": False,
                "output": ["IMAGE", ["a", "b"]],
                "output_is_list": [None, False],
                "output_name": ["IMAGE", "CHOICE"],
                "output_tooltips": [None, "pick"],
                "output_matchtypes": None,
                "name": "V3Node",
                "display_name": None,
                "description": "",
                "python_module": "comfy_extras.nodes_x",
                "category": "x",
                "output_node": False,
                "has_intermediate_output": False,
                "search_aliases": None,
                "deprecated": False,
                "experimental": None,
                "dev_only": False,
                "api_node": False,
                "price_badge": None,
                "essentials_category": None,
            }
        }
    )
    node = decode_object_info(body)["V3Node"]
    assert node.title == "V3Node"
    assert node.output == ["IMAGE", ["a", "b"]]
    assert node.output_is_list == [None, False]
    assert node.experimental is None


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'{"X": {"display_name": "no name"}}',
        b'{"X": {"name": "X", "input": {"required": {"a": "INT"}}}}',
        b'{"X": {"name": "X", "output": [1]}}',
        b'{"X": {"name": "X", "output_node": "yes"}}',
        b'{"X": {"name": "X", "input_order": {"required": "a"}}}',
    ],
)
def test_wrong_shapes_are_validation_errors(body: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_object_info(body)


def test_index_rejects_a_non_object() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_object_info_index(b"[1, 2]")
    with pytest.raises(msgspec.ValidationError):
        decode_node_info(b'"EmptyImage"')
