"""The fake server's model inventory: served, listed by the loaders, used by validation."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from comfy_async import ComfyClient, PromptValidationError
from comfy_async.errors import ConfigurationError
from comfy_async.testing import FakeComfyServer
from comfy_async.testing.models import (
    DEFAULT_MODELS,
    check_inventory,
    models_named_by,
    parse_models,
    with_inventory,
)

SD15 = Path(__file__).resolve().parents[2] / "examples" / "workflows" / "sd15_txt2img_api.json"


def sd15() -> dict[str, dict[str, object]]:
    return json.loads(SD15.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


async def test_the_standard_text_to_image_workflow_runs_on_the_default_inventory() -> None:
    async with FakeComfyServer(time_scale=0) as server, ComfyClient(server.url) as comfy:
        result = await comfy.run(sd15(), validate=True, timeout=30)
        assert [file.filename for file in result.files] == ["ComfyUI_00001_.png"]
        listed = [model.name for model in await comfy.models.files("checkpoints")]
        assert "v1-5-pruned-emaonly.safetensors" in listed
        catalogue = await comfy.nodes()
    ckpt = catalogue["CheckpointLoaderSimple"].inputs["ckpt_name"]
    assert "v1-5-pruned-emaonly.safetensors" in ckpt.options  # type: ignore[attr-defined]


async def test_a_model_the_server_lacks_is_refused_as_a_real_server_refuses_it() -> None:
    inventory = {"checkpoints": ["other.safetensors"]}
    async with FakeComfyServer(time_scale=0, models=inventory) as server:
        async with ComfyClient(server.url) as comfy:
            with pytest.raises(PromptValidationError) as refused:
                await comfy.submit(sd15())
            assert [m.name for m in await comfy.models.files("checkpoints")] == [
                "other.safetensors"
            ]
    problem = refused.value.problems()[0]
    assert problem[:3] == ("4", "value_not_in_list", "ckpt_name")


async def test_take_every_model_a_workflow_names() -> None:
    prompt = sd15()
    prompt["4"]["inputs"]["ckpt_name"] = "my-finetune.safetensors"  # type: ignore[index]
    needed = models_named_by(prompt)
    assert needed == {"checkpoints": ("my-finetune.safetensors",)}
    async with FakeComfyServer(time_scale=0, models=needed) as server:
        async with ComfyClient(server.url) as comfy:
            result = await comfy.run(prompt, validate=True, timeout=30)
    assert result.files


async def test_the_cloud_flavour_serves_the_inventory_on_its_experiment_routes() -> None:
    async with FakeComfyServer(flavour="cloud", time_scale=0) as server:
        async with ComfyClient.cloud(api_key=server.api_key, base_url=server.url) as comfy:
            files = await comfy.models.experiment_files("loras")
    assert sorted(f.name for f in files) == sorted(DEFAULT_MODELS["loras"])


def test_bad_inventories_get_clear_errors() -> None:
    folders = ["checkpoints", "loras"]
    with pytest.raises(ConfigurationError, match="maps folder names to file names"):
        check_inventory(["a.safetensors"], folders)
    with pytest.raises(ConfigurationError, match="unknown model folder 'chekpoints'"):
        check_inventory({"chekpoints": ["a"]}, folders)
    with pytest.raises(ConfigurationError, match="must be a list of file names"):
        check_inventory({"loras": "a.safetensors"}, folders)
    with pytest.raises(ConfigurationError, match="not a model file name"):
        check_inventory({"loras": ["../../etc/passwd"]}, folders)
    with pytest.raises(ConfigurationError, match="FOLDER=NAME"):
        parse_models("checkpoints")
    assert parse_models("loras=a.safetensors, b.safetensors") == {
        "loras": ("a.safetensors", "b.safetensors")
    }
    with pytest.raises(ConfigurationError, match="cannot read the object_info"):
        FakeComfyServer(object_info="no-such-file.json")
    with pytest.raises(ConfigurationError, match="cannot read the object_info"):
        FakeComfyServer(extra_nodes=["no-such-file.json"])
    with pytest.raises(ConfigurationError, match="not a mapping of node class names"):
        FakeComfyServer(extra_nodes=[{"MyNode": ["not", "a", "schema"]}])


def test_with_inventory_copies_only_the_loaders() -> None:
    info = {
        "CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [[], {}]}}},
        "UpscaleModelLoader": {"input": {"required": {"model_name": ["COMBO", {"options": []}]}}},
        "KSampler": {"input": {"required": {"seed": ["INT", {}]}}},
    }
    listed = with_inventory(info, {"checkpoints": ["a"], "upscale_models": ["x.pth"]})
    assert listed["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"] == [["a"], {}]
    assert listed["UpscaleModelLoader"]["input"]["required"]["model_name"][1]["options"] == [
        "x.pth"
    ]
    assert listed["KSampler"] is info["KSampler"]
    assert info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"] == [[], {}]


def test_a_port_in_use_is_one_line_and_says_how_to_pick_another() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "comfy_async.testing", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0, run.stderr
    assert f"port {port} on 127.0.0.1 is in use" in run.stderr
    assert "--port 0" in run.stderr


async def test_outputs_follow_the_inputs_as_a_real_servers_do(tmp_path: Path) -> None:
    from PIL import Image

    async with FakeComfyServer(time_scale=0) as server, ComfyClient(server.url) as comfy:
        first = sd15()
        first["5"]["inputs"].update(width=640, height=384)  # type: ignore[union-attr]
        other_seed = json.loads(json.dumps(first))
        other_seed["3"]["inputs"]["seed"] = 7  # type: ignore[index]
        other_text = json.loads(json.dumps(first))
        other_text["6"]["inputs"]["text"] = "a red fox"  # type: ignore[index]
        saved = []
        for index, prompt in enumerate((first, other_seed, other_text, first)):
            result = await comfy.run(prompt, timeout=30)
            saved.append((await result.save(tmp_path / str(index)))[0])
            cached = result.cached_nodes
    pixels = [Image.open(path).convert("RGB") for path in saved]
    assert [image.size for image in pixels] == [(640, 384)] * 4  # the latent's size
    colours = [image.getpixel((0, 0)) for image in pixels]
    assert colours[0] != colours[1]  # another seed, another image
    assert colours[0] != colours[2]  # another prompt, another image
    assert colours[3] == colours[0]  # the same prompt: the same image
    assert "9" in cached  # ... from the cache, as ComfyUI answers a repeat


async def test_a_batch_size_gives_that_many_distinct_images(tmp_path: Path) -> None:
    from PIL import Image

    prompt = sd15()
    prompt["5"]["inputs"].update(width=96, height=64, batch_size=3)  # type: ignore[union-attr]
    async with FakeComfyServer(time_scale=0) as server, ComfyClient(server.url) as comfy:
        result = await comfy.run(prompt, timeout=30)
        paths = await result.save(tmp_path)
    assert [file.filename for file in result.files] == [
        "ComfyUI_00001_.png",
        "ComfyUI_00002_.png",
        "ComfyUI_00003_.png",
    ]
    pixels = [Image.open(path).convert("RGB") for path in paths]
    assert {image.size for image in pixels} == {(96, 64)}
    assert len({image.getpixel((0, 0)) for image in pixels}) == 3


#: A custom node pack's ``/object_info``: one upscaler that takes an image and a factor.
CUSTOM_NODES = {
    "AcmeSharpen": {
        "input": {
            "required": {
                "image": ["IMAGE"],
                "amount": ["FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0}],
            }
        },
        "output": ["IMAGE"],
        "output_is_list": [False],
        "output_name": ["IMAGE"],
        "name": "AcmeSharpen",
        "display_name": "Acme Sharpen",
        "description": "",
        "category": "acme",
        "output_node": False,
    }
}


async def test_a_custom_node_packs_object_info_extends_the_catalogue(tmp_path: Path) -> None:
    dump = tmp_path / "acme_object_info.json"
    dump.write_text(json.dumps(CUSTOM_NODES), encoding="utf-8")
    prompt = sd15()
    prompt["10"] = {"class_type": "AcmeSharpen", "inputs": {"image": ["8", 0], "amount": 0.9}}
    prompt["9"]["inputs"]["images"] = ["10", 0]  # type: ignore[index]
    async with FakeComfyServer(time_scale=0) as plain, ComfyClient(plain.url) as comfy:
        with pytest.raises(PromptValidationError, match="AcmeSharpen"):
            await comfy.submit(prompt)
    async with FakeComfyServer(time_scale=0, extra_nodes=[dump]) as server:
        assert "KSampler" in server.object_info  # extended, not replaced
        async with ComfyClient(server.url) as comfy:
            result = await comfy.run(prompt, validate=True, timeout=30)
            catalogue = await comfy.nodes()
    assert catalogue["AcmeSharpen"].category == "acme"
    assert [file.filename for file in result.files] == ["ComfyUI_00001_.png"]
    too_much = json.loads(json.dumps(prompt))
    too_much["10"]["inputs"]["amount"] = 2.0
    async with FakeComfyServer(time_scale=0, extra_nodes=[CUSTOM_NODES]) as server:
        async with ComfyClient(server.url) as comfy:
            with pytest.raises(PromptValidationError) as refused:
                await comfy.submit(too_much)
    assert refused.value.problems()[0][:3] == ("10", "value_bigger_than_max", "amount")


def test_the_command_line_takes_custom_node_dumps() -> None:
    from comfy_async.testing.__main__ import parse_args

    args = parse_args(["--extra-nodes", "acme.json", "--extra-nodes", "more.json.gz"])
    assert args.extra_nodes == ["acme.json", "more.json.gz"]
    assert args.object_info is None
