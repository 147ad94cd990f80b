from __future__ import annotations

import json

import msgspec
import pytest

from comfy_async.models import ModelFile, ModelFolder, decode_model_files, decode_model_folders
from tests.recordings import find


def test_local_models_names_become_folders() -> None:
    folders = decode_model_folders(find("10", "GET /models").body)
    assert folders[0] == ModelFolder(name="checkpoints")
    assert "loras" in [f.name for f in folders]
    assert all(f.folders == [] and f.extensions == [] for f in folders)


def test_local_experiment_models() -> None:
    folders = {f.name: f for f in decode_model_folders(find("10", "GET /experiment/models").body)}
    checkpoints = folders["checkpoints"]
    # absolute server-side paths, one per configured location
    assert len(checkpoints.folders) == 2
    assert all(path.startswith("/") for path in checkpoints.folders)
    assert checkpoints.folders[0].endswith("/models/checkpoints")
    assert ".safetensors" in checkpoints.extensions
    assert folders["diffusers"].extensions == ["folder"]
    assert folders["datasets"].extensions == []


def test_recorded_empty_folders() -> None:
    assert decode_model_files(find("10", "GET /models/checkpoints").body) == []
    assert decode_model_files(find("10", "GET /experiment/models/checkpoints").body) == []


def test_local_file_names_become_files() -> None:
    files = decode_model_files(b'["sd15.safetensors", "sdxl/base.safetensors"]')
    assert files == [ModelFile(name="sd15.safetensors"), ModelFile(name="sdxl/base.safetensors")]
    assert files[0].path_index is None


def test_local_experiment_model_files() -> None:
    body = json.dumps(
        [
            {
                "name": "sd15.safetensors",
                "pathIndex": 1,
                "modified": 1760000000.5,
                "created": 1760000000.0,
                "size": 2132625432,
            }
        ]
    )
    (file,) = decode_model_files(body)
    assert file.path_index == 1
    assert file.modified == 1760000000.5
    assert file.size == 2132625432


def test_cloud_models() -> None:
    # Comfy Cloud: /api/experiment/models → [{name, folders}], /{folder} → [{name, pathIndex}] (§8)
    (folder,) = decode_model_folders(b'[{"name": "checkpoints", "folders": ["checkpoints"]}]')
    assert folder == ModelFolder(name="checkpoints", folders=["checkpoints"])
    files = decode_model_files(b'[{"name": "flux1-dev.safetensors", "pathIndex": 0}]')
    assert files == [ModelFile(name="flux1-dev.safetensors", path_index=0)]
    assert files[0].size is None


@pytest.mark.parametrize(
    "body", [b"{}", b"[1]", b'[{"folders": []}]', b'[{"name": "x", "folders": "y"}]']
)
def test_folders_wrong_shapes(body: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_model_folders(body)


@pytest.mark.parametrize(
    "body", [b'"a"', b"[null]", b'[{"name": "x", "pathIndex": "0"}]', b'[["a"]]']
)
def test_files_wrong_shapes(body: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_model_files(body)
