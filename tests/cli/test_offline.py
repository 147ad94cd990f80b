"""``validate``, ``convert`` and ``nodes`` offline with ``--object-info``; usage and help."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from comfy_async.cli import ExitCode, main
from tests.cli.conftest import OBJECT_INFO, ui_graph, write_json
from tests.session.graphs import sleeper


@pytest.fixture
def object_info(tmp_path: Path) -> Path:
    """The fake server's catalogue, saved as a user would save ``/object_info``."""
    path = tmp_path / "object_info.json.gz"
    path.write_bytes(OBJECT_INFO.read_bytes())
    return path


def test_validate_accepts_a_good_workflow(offline, tmp_path: Path, object_info: Path) -> None:
    workflow = write_json(tmp_path / "wf.json", sleeper())
    result = offline.sync("validate", workflow, "--object-info", object_info)
    assert result.code == ExitCode.OK
    assert result.out == "valid: 3 nodes, outputs 3\n"
    data = offline.sync("validate", workflow, "--object-info", object_info, "--json").json()
    assert data == {"valid": True, "problems": [], "nodes": 3, "outputs": ["3"]}


def test_validate_lists_every_problem(offline, tmp_path: Path, object_info: Path) -> None:
    graph = sleeper()
    graph["2"]["inputs"]["steps"] = 0
    del graph["3"]["inputs"]["filename_prefix"]
    workflow = write_json(tmp_path / "wf.json", graph)
    result = offline.sync("validate", workflow, "--object-info", object_info)
    assert result.code == ExitCode.REFUSED
    assert result.out == ""
    lines = result.err.splitlines()
    assert lines[0] == "error: the workflow would be refused: 2 problems"
    steps = "  node 2 (ProbeSleepProgress) input 'steps': value_smaller_than_min"
    prefix = "  node 3 (SaveImage) input 'filename_prefix': required_input_missing"
    assert sorted(lines[1:]) == [
        f"{steps}: Value 0 smaller than min of 1",
        f"{prefix}: Required input is missing",
    ]
    data = offline.sync("validate", workflow, "--object-info", object_info, "--json").json()
    assert data["valid"] is False
    assert {(p["node_id"], p["input_name"]) for p in data["problems"]} == {
        ("2", "steps"),
        ("3", "filename_prefix"),
    }


def test_validate_applies_the_edits_run_would(offline, tmp_path: Path, object_info: Path) -> None:
    workflow = write_json(tmp_path / "wf.json", sleeper())
    result = offline.sync(
        "validate", workflow, "--object-info", object_info, "--set", "2.steps=5000"
    )
    assert result.code == ExitCode.REFUSED
    assert "value_bigger_than_max" in result.err


def test_validate_converts_a_ui_export_first(offline, tmp_path: Path, object_info: Path) -> None:
    workflow = write_json(tmp_path / "ui.json", ui_graph())
    result = offline.sync("validate", workflow, "--object-info", object_info)
    assert result.code == ExitCode.OK, result.err


async def test_validate_against_the_server(cli, tmp_path: Path) -> None:
    workflow = write_json(tmp_path / "wf.json", sleeper())
    assert (await cli("validate", workflow)).code == ExitCode.OK


def test_convert_writes_the_api_format(offline, tmp_path: Path, object_info: Path) -> None:
    workflow = write_json(tmp_path / "ui.json", ui_graph())
    target = tmp_path / "api.json"
    result = offline.sync("convert", workflow, "-o", target, "--object-info", object_info)
    assert result.code == ExitCode.OK
    assert result.out == f"wrote {target} (2 nodes)\n"
    converted = json.loads(target.read_text())
    assert converted["1"]["class_type"] == "EmptyImage"
    assert converted["1"]["inputs"] == {"width": 16, "height": 16, "batch_size": 1, "color": 3}
    assert converted["2"]["inputs"] == {"images": ["1", 0], "filename_prefix": "from_ui"}
    to_stdout = offline.sync("convert", workflow, "--object-info", object_info)
    assert json.loads(to_stdout.out) == converted
    as_json = offline.sync(
        "convert", workflow, "-o", target, "--object-info", object_info, "--json"
    )
    assert as_json.json() == {"output": str(target), "nodes": 2}
    # the converted file runs through validate as is
    assert offline.sync("validate", target, "--object-info", object_info).code == ExitCode.OK


async def test_convert_with_the_servers_catalogue(cli, tmp_path: Path) -> None:
    workflow = write_json(tmp_path / "ui.json", ui_graph())
    result = await cli("convert", workflow, "-o", tmp_path / "api.json", "--json")
    assert result.code == ExitCode.OK
    assert result.json() == {"output": str(tmp_path / "api.json"), "nodes": 2}
    assert json.loads((tmp_path / "api.json").read_text())["2"]["class_type"] == "SaveImage"


def test_convert_refuses_what_it_cannot_do(offline, tmp_path: Path, object_info: Path) -> None:
    api = write_json(tmp_path / "api.json", sleeper())
    result = offline.sync("convert", api, "--object-info", object_info)
    assert result.code == ExitCode.USAGE
    assert "already in the API format" in result.err
    graph = ui_graph()
    graph["nodes"][0]["type"] = "NoSuchNode"  # type: ignore[index]
    unknown = write_json(tmp_path / "ui.json", graph)
    refused = offline.sync("convert", unknown, "--object-info", object_info)
    assert refused.code == ExitCode.USAGE
    assert "NoSuchNode" in refused.err
    not_info = write_json(tmp_path / "info.json", ["not", "object_info"])
    bad = offline.sync("convert", unknown, "--object-info", not_info)
    assert bad.code == ExitCode.USAGE
    assert "is not a saved /object_info" in bad.err


def test_nodes_shows_one_class(offline, object_info: Path) -> None:
    result = offline.sync("nodes", "KSampler", "--object-info", object_info)
    assert result.code == ExitCode.OK
    lines = result.out.splitlines()
    assert lines[0] == "KSampler  (KSampler; model/sampling)"
    row = {line.split()[0]: line for line in lines if line.startswith("  ")}
    assert "MODEL" in row["model"]
    assert "link" in row["model"]
    assert "INT" in row["seed"]
    assert "default 0" in row["seed"]
    assert "0…18446744073709551615" in row["seed"]
    assert "control after generate" in row["seed"]
    assert "1…10000" in row["steps"]
    assert "FLOAT" in row["cfg"]
    assert "step 0.1" in row["cfg"]
    assert "COMBO" in row["sampler_name"]
    assert "choices: euler, " in row["sampler_name"]
    assert "in all)" in row["sampler_name"]
    data = offline.sync("nodes", "KSampler", "--object-info", object_info, "--json").json()
    seed = next(item for item in data["inputs"] if item["name"] == "seed")
    assert seed == {
        "name": "seed",
        "kind": "INT",
        "required": True,
        "default": 0,
        "min": 0,
        "max": 18446744073709551615,
        "step": None,
        "tooltip": "The random seed used for creating the noise.",
    }
    assert data["outputs"] == [{"index": 0, "type": "LATENT", "name": "LATENT", "is_list": False}]


def test_nodes_searches(offline, object_info: Path) -> None:
    found = offline.sync("nodes", "upscale", "--object-info", object_info)
    assert found.code == ExitCode.OK
    assert found.out.splitlines()[0].split() == ["CLASS", "DISPLAY", "NAME", "CATEGORY"]
    assert "ImageScale" in found.out
    in_category = offline.sync(
        "nodes", "--category", "testing/probe", "--object-info", object_info, "--json"
    ).json()
    assert {item["name"] for item in in_category} == {
        "ProbeSleepProgress",
        "ProbeRaise",
        "ProbeTextOutput",
        "ProbeBlock",
    }
    forced = offline.sync("nodes", "KSampler", "--search", "--object-info", object_info)
    assert "KSamplerAdvanced" in forced.out
    nothing = offline.sync("nodes", "zzzz-nothing", "--object-info", object_info)
    assert nothing.code == ExitCode.FAILED
    assert nothing.err == "error: no node class matches 'zzzz-nothing'\n"


def test_help_and_usage(offline, capsys: pytest.CaptureFixture[str]) -> None:
    top = offline.sync("--help")
    assert top.code == ExitCode.OK
    for command in (
        "run", "watch", "queue", "interrupt", "jobs", "history", "free", "stats", "nodes",
        "models", "upload", "download", "validate", "convert", "demo",
    ):  # fmt: skip
        assert f"    {command} " in top.out, command
    assert "exit codes: 0 ok" in top.out
    nothing = offline.sync()
    assert nothing.code == ExitCode.USAGE
    unknown = offline.sync("frobnicate")
    assert unknown.code == ExitCode.USAGE
    assert "invalid choice: 'frobnicate'" in unknown.err
    version = offline.sync("--version")
    assert version.out.startswith("comfy-async ")
    for command in ("watch", "queue", "jobs", "history", "nodes", "upload", "download", "convert"):
        shown = offline.sync(command, "--help")
        assert shown.code == ExitCode.OK
        assert "examples:" in shown.out, command


def test_global_options_go_before_or_after_the_command(offline, tmp_path, object_info) -> None:
    workflow = write_json(tmp_path / "wf.json", sleeper())
    before = offline.sync("--json", "validate", workflow, "--object-info", object_info)
    after = offline.sync("validate", workflow, "--object-info", object_info, "--json")
    assert before.json() == after.json()


def test_main_is_callable_without_arguments_list(monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.argv", ["comfy-async", "--version"])
    assert main() == 0
    assert capsys.readouterr().out.startswith("comfy-async 0.")
