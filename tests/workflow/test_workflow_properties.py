"""Properties: load → dump is the identity; editing a valid graph keeps it valid."""

from __future__ import annotations

import json
import random
from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from comfy_async import Catalogue, Workflow
from comfy_async.catalogue import ComboInput, FloatInput, IntInput
from comfy_async.workflow import Link
from tests.conftest import REAL_COMFYUI

# ------------------------------------------------------------------ round trip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
node_ids = st.integers(min_value=1, max_value=400).map(str)
links = st.tuples(node_ids, st.integers(min_value=0, max_value=5)).map(list)
nodes = st.fixed_dictionaries(
    {
        "class_type": st.text(min_size=1, max_size=20),
        "inputs": st.dictionaries(st.text(max_size=10), links | values, max_size=6),
    },
    optional={"_meta": st.fixed_dictionaries({"title": st.text(max_size=20)})},
)
graphs = st.dictionaries(node_ids, nodes, max_size=8)


@given(graphs)
def test_load_then_dump_is_the_identity(graph: dict[str, Any]) -> None:
    workflow = Workflow(graph)
    assert workflow.to_prompt() == graph
    assert list(workflow.to_prompt()) == list(graph)  # node order kept
    text = workflow.to_json()
    assert Workflow.from_json(text) == workflow
    assert Workflow.from_json(text).to_prompt() == graph
    assert Workflow.from_json(json.dumps(graph)).to_prompt() == graph
    assert workflow.copy() == workflow


# ------------------------------------------------------------------ edits keep validity


@cache
def catalogue() -> Catalogue:
    return Catalogue.from_file(REAL_COMFYUI / "object_info.json")


def base() -> Workflow:
    prompt = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 0},
        },
        "2": {"class_type": "LoadImage", "inputs": {"image": "probe_upload.png"}},
        "3": {
            "class_type": "ImageScale",
            "inputs": {
                "image": ["1", 0],
                "upscale_method": "bilinear",
                "width": 32,
                "height": 32,
                "crop": "disabled",
            },
        },
        "4": {
            "class_type": "ImageAddNoise",
            "inputs": {"image": ["3", 0], "seed": 1, "strength": 0.5},
        },
        "5": {"class_type": "ImageInvert", "inputs": {"image": ["4", 0]}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "out"}},
        "7": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    workflow = Workflow(prompt, catalogue=catalogue())
    assert workflow.validate() == []
    return workflow


def literal_for(data: st.DataObject, class_type: str, name: str) -> object:
    """A value the server accepts for one widget input, drawn from the catalogue's schema."""
    spec = catalogue()[class_type].inputs[name]
    if isinstance(spec, IntInput):
        low = int(spec.min if spec.min is not None else -(2**31))
        high = int(spec.max if spec.max is not None else 2**31)
        return data.draw(st.integers(min_value=low, max_value=high))
    if isinstance(spec, FloatInput):
        low = float(spec.min if spec.min is not None else -1e6)
        high = float(spec.max if spec.max is not None else 1e6)
        return data.draw(st.floats(min_value=low, max_value=high, allow_nan=False))
    if isinstance(spec, ComboInput):
        assert spec.options
        return data.draw(st.sampled_from(spec.options))
    return data.draw(st.text(max_size=20))


EDITABLE = [
    ("1", "EmptyImage", "width"),
    ("1", "EmptyImage", "height"),
    ("1", "EmptyImage", "batch_size"),
    ("1", "EmptyImage", "color"),
    ("3", "ImageScale", "upscale_method"),
    ("3", "ImageScale", "width"),
    ("3", "ImageScale", "crop"),
    ("4", "ImageAddNoise", "strength"),
    ("6", "SaveImage", "filename_prefix"),
]
OPERATIONS = ["set", "seed", "randomize", "preview", "relink", "image", "copy"]


@settings(max_examples=60)
@given(st.data())
def test_edits_keep_a_valid_graph_valid(data: st.DataObject) -> None:
    workflow = base()
    image_sources = ["1", "2", "3", "4", "5"]  # nodes with an IMAGE output, in dependency order
    for operation in data.draw(st.lists(st.sampled_from(OPERATIONS), max_size=8)):
        if operation == "set":
            node_id, class_type, name = data.draw(st.sampled_from(EDITABLE))
            workflow.set(node_id, **{name: literal_for(data, class_type, name)})
        elif operation == "seed":
            workflow.set_seed(data.draw(st.integers(min_value=0, max_value=2**64 - 1)))
        elif operation == "randomize":
            workflow.randomize_seeds(rng=random.Random(data.draw(st.integers())))
        elif operation == "preview":
            source = data.draw(st.sampled_from(image_sources))
            workflow.add_node("PreviewImage", {"images": Link(source, 0)})
        elif operation == "relink":
            # Point ImageInvert at any source before it: never a cycle.
            workflow.connect("5", "image", data.draw(st.sampled_from(image_sources[:4])))
        elif operation == "image":
            name = data.draw(st.sampled_from(catalogue().model_files("input")))
            workflow.set_image("2", name)
        else:
            workflow = workflow.copy()
        assert workflow.validate() == []
    assert Workflow.from_json(workflow.to_json(), catalogue=catalogue()) == workflow
    workflow.check()
