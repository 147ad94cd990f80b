"""What a session submitting API prompts and reading files loads: no graph, Manager or disk code.

Each check runs in a fresh interpreter, so that nothing an earlier test imported hides a load.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import comfy_async.models

SUBMIT_PATH = """
import asyncio, sys
import comfy_async._live.http_backend, comfy_async._live.session
import comfy_async._transport.rest.files, comfy_async._transport.rest.prompts
from comfy_async import ComfyClient

async def main():
    comfy = ComfyClient("http://127.0.0.1:9")
    prompt = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8}}}
    sent = await comfy._prompt_of(prompt, validate=False, targets=None)
    assert sent is prompt, sent
    await comfy.aclose()

asyncio.run(main())
print("\\n".join(sorted(name for name in sys.modules if name.startswith(("comfy_async", "anyio")))))
"""

NOT_ON_THE_SUBMIT_PATH = (
    "comfy_async.workflow",
    "comfy_async.catalogue",
    "comfy_async._graph.node_schema",
    "comfy_async._graph.ui_format",
    "comfy_async._graph.validation",
    "comfy_async._transport.rest.comfyui_manager",
    "comfy_async._transport.rest.disk",
    "comfy_async.models.comfyui_manager",
    "comfy_async.models.api_v2",
    "comfy_async.models.object_info",
    "anyio",  # reading a file needs no worker thread
)


def loaded_by(code: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_submitting_an_api_prompt_loads_no_graph_or_manager_module() -> None:
    loaded = loaded_by(SUBMIT_PATH)
    assert "comfy_async._live.session" in loaded  # the probe ran the path it means to
    assert loaded.isdisjoint(NOT_ON_THE_SUBMIT_PATH), sorted(loaded & set(NOT_ON_THE_SUBMIT_PATH))


def test_a_ui_workflow_is_still_told_apart_and_converted() -> None:
    code = SUBMIT_PATH.replace(
        "sent = await comfy._prompt_of(prompt, validate=False, targets=None)\n"
        "    assert sent is prompt, sent",
        "from comfy_async.errors import ComfyError\n"
        "    ui = {'nodes': [], 'links': [], 'version': 0.4}\n"
        "    async def no_catalogue(): raise ComfyError('catalogue asked')\n"
        "    comfy.nodes = no_catalogue\n"
        "    try:\n"
        "        await comfy._prompt_of(ui, validate=False, targets=None)\n"
        "    except ComfyError as error:\n"
        "        assert 'catalogue asked' in str(error)\n"
        "    else:\n"
        "        raise AssertionError('a UI workflow was sent as an API prompt')",
    )
    assert "comfy_async.workflow" in loaded_by(code)


@pytest.mark.parametrize("name", comfy_async.models.__all__)
def test_every_model_name_is_its_area_module_object(name: str) -> None:
    value = getattr(comfy_async.models, name)
    area = sys.modules[comfy_async.models._LAZY[name]]
    assert getattr(area, name) is value
    assert name in dir(comfy_async.models)


def test_an_unknown_model_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_model"):
        _ = comfy_async.models.no_such_model
