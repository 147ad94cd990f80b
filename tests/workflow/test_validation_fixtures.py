"""Offline validation of every shared API workflow against every object_info dump.

Each reported problem is checked against the raw dump by an independent reading (plain JSON,
not the library's typed schema): a missing class is absent, a bad combo value is not among the
choices, a missing input is declared required and not sent. Then a few problems are pinned by
hand (see the notes beside them).
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from comfy_async._graph.validation import Problem, find_problems
from comfy_async._graph.validation_engine import CUSTOM_VALIDATORS
from comfy_async.catalogue import Catalogue
from tests.conftest import REAL_COMFYUI, SHARED_FIXTURES

DUMPS = [
    "recorded",
    "autoflow_2026-02_904-nodes.json",
    "redlip-app_2025-08_2093-nodes.json",
    "yuzuki-phone_2026-05_1686-nodes.json",
    "synthetic_25MB_2650-nodes.json.gz",
]
WORKFLOWS = sorted(path.name for path in (SHARED_FIXTURES / "workflows" / "api").glob("*.json"))


def dump_path(name: str) -> Path:
    if name == "recorded":
        return REAL_COMFYUI / "object_info.json"
    return SHARED_FIXTURES / "object_info" / name


@cache
def raw_dump(name: str) -> dict[str, Any]:
    data = dump_path(name).read_bytes()
    decoded = json.loads(gzip.decompress(data) if name.endswith(".gz") else data)
    assert isinstance(decoded, dict)
    return decoded


@cache
def catalogue(name: str) -> Catalogue:
    return Catalogue.from_file(dump_path(name))


def load(shared_fixtures: Path, name: str) -> dict[str, Any]:
    data = json.loads((shared_fixtures / "workflows" / "api" / name).read_text())
    assert isinstance(data, dict)
    return data


def spec_of(dump: dict[str, Any], class_type: str, name: str) -> tuple[str, list[Any]] | None:
    sections = dump[class_type].get("input", {})
    for section in ("required", "optional"):
        found = (sections.get(section) or {}).get(name)
        if found is not None:
            return section, found
    return None


def check_is_real(problem: Problem, prompt: dict[str, Any], dump: dict[str, Any]) -> None:
    """Assert, from the raw JSON only, that the server would report this problem."""
    node = prompt.get(problem.node_id or "", {})
    class_type = node.get("class_type")
    if problem.type == "missing_node_type":
        assert class_type not in dump
        assert problem.class_type == class_type
        return
    if problem.type == "prompt_no_outputs":
        assert not any(
            dump.get(n.get("class_type"), {}).get("output_node") for n in prompt.values()
        )
        return
    assert class_type in dump
    assert problem.class_type == class_type
    assert problem.input_name is not None
    found = spec_of(dump, class_type, problem.input_name)
    value = node["inputs"].get(problem.input_name)
    if problem.type == "required_input_missing":
        assert found is not None
        assert found[0] == "required"
        assert problem.input_name not in node["inputs"]
    elif problem.type == "value_not_in_list":
        assert found is not None
        spec = found[1]
        choices = spec[0] if isinstance(spec[0], list) else spec[1].get("options", [])
        if isinstance(value, dict) and "__value__" in value:
            value = value["__value__"]
        assert value not in choices
        assert problem.input_name not in CUSTOM_VALIDATORS.get(class_type, ())
    else:
        pytest.fail(f"unexpected problem kind, check by hand: {problem}")


@pytest.mark.parametrize("dump", DUMPS)
@pytest.mark.parametrize("name", WORKFLOWS)
def test_every_problem_is_real(shared_fixtures: Path, name: str, dump: str) -> None:
    if not dump_path(dump).exists():
        pytest.skip(f"{dump} is not present")
    prompt = load(shared_fixtures, name)
    problems = find_problems(prompt, catalogue(dump))
    raw = raw_dump(dump)
    for problem in problems:
        check_is_real(problem, prompt, raw)
    # Offline validation names every unknown class, not just the first as the server does.
    reported = {p.node_id for p in problems if p.type == "missing_node_type"}
    absent = {node_id for node_id, node in prompt.items() if node["class_type"] not in raw}
    assert reported == absent


def problems_of(
    shared_fixtures: Path, workflow: str, dump: str
) -> set[tuple[str, str | None, str | None]]:
    if not dump_path(dump).exists():
        pytest.skip(f"{dump} is not present")
    problems = find_problems(load(shared_fixtures, workflow), catalogue(dump))
    return {(p.type, p.node_id, p.input_name) for p in problems}


def test_spot_check_newer_required_inputs(shared_fixtures: Path) -> None:
    # fofr's Hunyuan workflow predates two inputs the 2026 core nodes require
    # (TextEncodeHunyuanVideo_ImageToVideo.image_interleave, HunyuanImageToVideo.guidance_type).
    found = problems_of(shared_fixtures, "fofr_hunyuan_video_image_to_video_api.json", DUMPS[3])
    assert ("required_input_missing", "80", "image_interleave") in found
    assert ("required_input_missing", "78", "guidance_type") in found


def test_spot_check_a_renamed_custom_node_input(shared_fixtures: Path) -> None:
    # ComfyUI_essentials' "ImageResize+" replaced keep_proportion by a required "method".
    found = problems_of(shared_fixtures, "fofr_ic_light_api.json", DUMPS[3])
    assert ("required_input_missing", "14", "method") in found
    assert ("required_input_missing", "28", "method") in found


def test_spot_check_a_save_node_without_prefix(shared_fixtures: Path) -> None:
    # The WAS workflow's SaveImage (titled "Preview Image") sends no filename_prefix.
    found = problems_of(shared_fixtures, "fofr_was_clipseg_basic_api.json", DUMPS[3])
    assert ("required_input_missing", "17", "filename_prefix") in found


def test_spot_check_custom_nodes_missing_from_a_bare_dump(shared_fixtures: Path) -> None:
    # The recorded server has core nodes only: Impact Pack's SAMLoader is not installed there,
    # while the dumps with Impact Pack know it and only miss the model file.
    bare = problems_of(shared_fixtures, "comfyts_advanced-2024-11-14.json", "recorded")
    assert ("missing_node_type", "10", None) in bare
    rich = problems_of(shared_fixtures, "comfyts_advanced-2024-11-14.json", DUMPS[3])
    assert ("value_not_in_list", "10", "model_name") in rich


def test_spot_check_urls_in_load_image_are_left_to_the_loader(shared_fixtures: Path) -> None:
    # LoadImage has its own validator: the server checks the file, not the combo list.
    found = problems_of(shared_fixtures, "fofr_all_preprocessors.json", DUMPS[3])
    assert not any(
        kind == "value_not_in_list" and node in {"2", "21", "66", "81"} for kind, node, _ in found
    )


def test_a_valid_graph_is_valid(shared_fixtures: Path) -> None:
    # comfy_ui essentials' sample runs on the newest dump with nothing to report.
    assert (
        problems_of(shared_fixtures, "fofr_comfyui_essentials_all_workflows.json", DUMPS[3])
        == set()
    )
