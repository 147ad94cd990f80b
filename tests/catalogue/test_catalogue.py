"""The catalogue: lazy index, decode on demand, buffer lifetime, search, model folders."""

from __future__ import annotations

import gc
import gzip
import weakref
from pathlib import Path

import msgspec
import pytest

from comfy_async import Catalogue
from comfy_async.catalogue import MODEL_FOLDER_INPUTS, ComboInput, NodeSchema
from comfy_async.errors import ConfigurationError
from tests.conftest import REAL_COMFYUI

RECORDED = REAL_COMFYUI / "object_info.json"
SHARED_DUMPS = [
    "autoflow_2026-02_904-nodes.json",
    "redlip-app_2025-08_2093-nodes.json",
    "yuzuki-phone_2026-05_1686-nodes.json",
    "synthetic_25MB_2650-nodes.json.gz",
]


class _Buffer(bytearray):
    """A response buffer we can hold a weak reference to."""


@pytest.fixture(scope="module")
def recorded() -> Catalogue:
    return Catalogue.from_file(RECORDED)


def shared_dump(shared_fixtures: Path, name: str) -> Path:
    path = shared_fixtures / "object_info" / name
    if not path.exists():
        pytest.skip(f"{name} is not present")
    return path


def test_the_index_decodes_no_class() -> None:
    catalogue = Catalogue.from_bytes(RECORDED.read_bytes())
    assert len(catalogue) == 890
    assert catalogue.decoded == 0
    assert "KSampler" in catalogue
    assert "NoSuchNode" not in catalogue
    assert ["KSampler"] not in catalogue
    assert catalogue.decoded == 0
    assert list(catalogue)[:3] == catalogue.names()[:3]


def test_one_class_is_decoded_when_asked_and_cached() -> None:
    catalogue = Catalogue.from_bytes(RECORDED.read_bytes())
    first = catalogue["KSampler"]
    assert isinstance(first, NodeSchema)
    assert catalogue.decoded == 1
    assert catalogue.node("KSampler") is first
    assert catalogue.info("KSampler") is first.info
    assert catalogue.decoded == 1


def test_an_absent_class_is_a_key_error() -> None:
    catalogue = Catalogue.from_bytes(RECORDED.read_bytes())
    with pytest.raises(KeyError):
        catalogue["NoSuchNode"]
    assert catalogue.get("NoSuchNode") is None


def test_the_buffer_lives_until_every_class_is_decoded() -> None:
    buffer = _Buffer(RECORDED.read_bytes())
    alive = weakref.ref(buffer)
    catalogue = Catalogue.from_bytes(buffer)
    del buffer
    gc.collect()
    assert alive() is not None  # the raw values reference it
    assert catalogue.holds_raw
    catalogue.decode_all()
    gc.collect()
    assert alive() is None
    assert not catalogue.holds_raw
    assert catalogue["SaveImage"].output_node  # still usable
    assert "SaveImage" in catalogue
    assert catalogue.search("Save Image")


def test_from_mapping_matches_from_bytes(recorded: Catalogue) -> None:
    raw = msgspec.json.decode(RECORDED.read_bytes())
    rebuilt = Catalogue.from_mapping(raw)
    assert rebuilt.names() == recorded.names()
    assert rebuilt["KSampler"] == recorded["KSampler"]


def test_gzip_file_equals_plain_bytes(tmp_path: Path) -> None:
    packed = tmp_path / "object_info.json.gz"
    packed.write_bytes(gzip.compress(RECORDED.read_bytes()))
    catalogue = Catalogue.from_file(packed)
    assert catalogue.names() == Catalogue.from_file(RECORDED).names()
    assert catalogue["KSampler"] == Catalogue.from_file(RECORDED)["KSampler"]


def test_a_gzip_file_with_several_members_still_reads(tmp_path: Path) -> None:
    body = RECORDED.read_bytes()
    packed = tmp_path / "two_members.json.gz"
    packed.write_bytes(gzip.compress(body[:1000]) + gzip.compress(body[1000:]))
    assert len(Catalogue.from_file(packed)) == 890


def test_search_by_name_display_name_category_and_alias(recorded: Catalogue) -> None:
    assert "KSampler" in recorded.search("ksampler")
    assert "EmptyImage" in recorded.search("empty image")  # its display name
    found = recorded.search("", category="model")  # KSampler is in "model/sampling"
    assert "KSampler" in found
    assert all(recorded.info(name).category.startswith("model") for name in found)
    assert "KSampler" in recorded.search("sampler", category="model/sampling")
    assert recorded.search("sampler", category="model/samp") == []
    assert set(recorded.search(output_node=True)) == set(recorded.output_nodes())
    assert "SaveImage" in recorded.output_nodes()
    assert "KSampler" not in recorded.output_nodes()
    assert recorded.display_name("EmptyImage") == "Empty Image"
    categories = recorded.categories()
    assert categories == sorted(categories)
    assert "model/sampling" in categories


def test_search_does_not_decode_schemas() -> None:
    catalogue = Catalogue.from_bytes(RECORDED.read_bytes())
    catalogue.search("image")
    catalogue.categories()
    assert catalogue.decoded == 0


def test_model_files_decode_only_the_loader(shared_fixtures: Path) -> None:
    catalogue = Catalogue.from_file(shared_dump(shared_fixtures, SHARED_DUMPS[3]))
    loras = catalogue.model_files("loras")
    assert catalogue.decoded == 1
    assert len(loras) > 3000  # the inflated lists of the synthetic dump (README: 3339)
    assert all(isinstance(name, str) for name in loras)
    assert len(catalogue.model_files("diffusion_models")) == 224
    assert catalogue.decoded == 2


def test_model_files_of_every_known_folder(recorded: Catalogue) -> None:
    for folder in MODEL_FOLDER_INPUTS:
        assert isinstance(recorded.model_files(folder), list)
    assert recorded.model_files("vae") == ["pixel_space"]  # the loader's built-in choice
    assert recorded.model_files("input") == [
        "probe_mask.png",
        "probe_upload (1).png",
        "probe_upload.png",
    ]


def test_model_files_of_an_unknown_folder_is_a_configuration_error(recorded: Catalogue) -> None:
    with pytest.raises(ConfigurationError, match="known folders"):
        recorded.model_files("nope")


def test_model_files_without_the_loader_is_empty() -> None:
    assert Catalogue.from_mapping({}).model_files("loras") == []


@pytest.mark.parametrize("name", SHARED_DUMPS)
def test_every_class_of_every_dump_has_a_typed_schema(shared_fixtures: Path, name: str) -> None:
    catalogue = Catalogue.from_file(shared_dump(shared_fixtures, name))
    for class_type in catalogue:
        schema = catalogue[class_type]
        assert schema.name == class_type
        assert schema.display_name
        info = schema.info
        assert info is not None
        assert len(schema.outputs) == len(info.output)
        sections = {**info.input.required, **info.input.optional}
        assert set(schema.inputs) == set(sections)
    assert not catalogue.holds_raw


def test_recorded_dump_schemas_are_all_typed(recorded: Catalogue) -> None:
    kinds = {spec.kind for name in recorded for spec in recorded[name].inputs.values()}
    assert kinds == {"link", "INT", "FLOAT", "STRING", "BOOLEAN", "COMBO", "raw"}
    combos = [
        spec
        for name in recorded
        for spec in recorded[name].inputs.values()
        if isinstance(spec, ComboInput)
    ]
    assert any(spec.legacy for spec in combos)
    assert any(not spec.legacy for spec in combos)
    assert any(spec.options is None for spec in combos)  # the remote combo
