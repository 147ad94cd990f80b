from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from comfy_async.events import LogEntry, LogSize
from comfy_async.models import PackageVersion, SystemStats, decode_server_logs, decode_system_stats
from tests.recordings import find, matching

WS = Path(__file__).resolve().parent.parent / "data" / "real_comfyui" / "ws"


def test_recorded_system_stats() -> None:
    stats = decode_system_stats(find("10", "GET /system_stats").body)
    system = stats.system
    assert system.os == "linux"
    assert system.ram_total == 25276502016
    assert system.ram_free == 24117477376
    assert system.comfyui_version == "0.33.0"
    assert system.required_frontend_version == "1.49.6"
    assert system.installed_templates_version is None
    assert system.required_templates_version == "0.11.44"
    assert system.python_version.startswith("3.11.7")
    assert system.pytorch_version == "2.13.0+cpu"
    assert system.embedded_python is False
    assert system.deploy_environment == "local-git"
    assert system.argv[:2] == ["main.py", "--cpu"]
    packages = {p.name: p for p in system.comfy_package_versions}
    assert packages["comfyui-frontend-package"] == PackageVersion(
        name="comfyui-frontend-package", installed="1.49.6", required="1.49.6"
    )
    assert packages["comfyui-frontend-package"].satisfied
    assert packages["comfyui-workflow-templates"].installed is None
    assert not packages["comfyui-workflow-templates"].satisfied
    (device,) = stats.devices
    assert (device.name, device.type, device.index) == ("cpu", "cpu", None)
    assert device.vram_total == device.torch_vram_total == 25276502016
    assert device.vram_free == 24117477376


def test_api_prefix_gives_the_same_body() -> None:
    bodies = [decode_system_stats(ex.body) for ex in matching("GET", "/system_stats")]
    assert len(bodies) == 2
    assert bodies[0].system.comfyui_version == bodies[1].system.comfyui_version


def test_cloud_system_stats() -> None:
    body = json.dumps(
        {
            "system": {
                "os": "linux",
                "python_version": "3.12",
                "embedded_python": False,
                "comfyui_version": "0.33.0",
                "comfyui_frontend_version": "1.49.6",
                "workflow_templates_version": "0.11.44",
                "cloud_version": "abc123",
                "pytorch_version": "2.9",
                "argv": [],
                "ram_total": 1.5e11,
                "ram_free": 1.0e11,
            },
            "devices": [
                {"name": "NVIDIA H100", "type": "cuda", "vram_total": 8.5e10, "vram_free": 8e10}
            ],
        }
    )
    stats = decode_system_stats(body)
    assert stats.system.cloud_version == "abc123"
    assert stats.system.ram_total == 1.5e11
    assert stats.devices[0].index is None
    assert stats.devices[0].torch_vram_total is None


def test_empty_object_decodes_to_defaults() -> None:
    assert decode_system_stats(b"{}") == SystemStats()


@pytest.mark.parametrize(
    "body",
    [
        b'{"system": []}',
        b'{"system": {"ram_total": "lots"}}',
        b'{"system": {"comfy_package_versions": [{"name": 1}]}}',
        b'{"devices": [{"index": "0"}]}',
    ],
)
def test_system_stats_wrong_shapes(body: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_system_stats(body)


def test_server_logs_share_the_ws_logs_shape() -> None:
    # /internal/logs/raw was recorded by size only; its body has the WS ``logs`` data shape (§2.5)
    lines = (WS / "14_logs_subscription.jsonl").read_text().splitlines()
    datas = [
        record["json"]["data"]
        for record in map(json.loads, lines)
        if record.get("json", {}).get("type") == "logs"
    ]
    assert datas
    entries = [entry for data in datas for entry in data["entries"]]
    logs = decode_server_logs(json.dumps({"entries": entries, "size": {"cols": 80, "rows": 24}}))
    assert len(logs.entries) == len(entries)
    assert isinstance(logs.entries[0], LogEntry)
    assert logs.entries[0].t.startswith("20")
    assert logs.size == LogSize(cols=80, rows=24)
    assert "got prompt" in logs.text
    assert decode_server_logs(b'{"entries": [], "size": null}').size is None


def test_server_logs_wrong_shape() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_server_logs(b'{"entries": ["line"]}')
