"""Users' ordinary workflows run against the fake, configured from each workflow.

Every API-format workflow under ``../shared/fixtures/workflows/api`` is run against a fake
server that holds the models it names and a catalogue that knows its node classes: the
server's own, else the first ``/object_info`` dump of the shared fixtures that has them all.
A workflow runs to success with one output per output node it names; one whose custom nodes
no dump knows, or that needs input files, is counted with its reason.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from comfy_async import ComfyClient, PromptValidationError
from comfy_async.testing import FakeComfyServer
from comfy_async.testing.models import models_named_by

pytestmark = pytest.mark.slow

#: Those that ran when this test was written: the set may grow, never shrink.
EXPECTED_TO_RUN = {
    "comfyscript_SplitSigmasDenoise.json",
    "comfyts_advanced-2024-11-14.json",
    "fofr_comfyui_essentials_all_workflows.json",
    "fofr_flux_fp8_api.json",
    "fofr_flux_inpaint_alternative_api.json",
    "fofr_hiresfix_esrgan_workflow.json",
    "fofr_sd15_txt2img.json",
    "fofr_sdxl_simple_example.json",
    "fofr_wan_21_13b_t2v_api.json",
    "fofr_was_clipseg_basic_api.json",
    "salad_sd1.5-multi-output.json",
    "salad_sd1.5-parallel-3.json",
}


@cache
def dump(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    return json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)  # type: ignore[no-any-return]


def output_nodes(workflow: dict[str, Any], catalogue: dict[str, Any]) -> set[str]:
    return {
        node_id
        for node_id, node in workflow.items()
        if catalogue.get(node["class_type"], {}).get("output_node") is True
    }


async def test_every_fixture_workflow_that_can_run_runs(shared_fixtures: Path, figures) -> None:  # type: ignore[no-untyped-def]
    dumps = sorted((shared_fixtures / "object_info").glob("*.json*"))
    reasons: Counter[str] = Counter()
    ran: list[str] = []
    paths = sorted((shared_fixtures / "workflows" / "api").glob("*.json"))
    for path in paths:
        workflow = json.loads(path.read_text(encoding="utf-8"))
        classes = {node["class_type"] for node in workflow.values()}
        async with FakeComfyServer(time_scale=0, models={}) as probe:
            own = set(probe.object_info)
        source: Path | None = None
        if not classes <= own:
            source = next((d for d in dumps if classes <= set(dump(d))), None)
            if source is None:
                reasons["custom nodes no dump knows"] += 1
                continue
        server = FakeComfyServer(time_scale=0, models=models_named_by(workflow), object_info=source)
        async with server, ComfyClient(server.url) as comfy:
            try:
                result = await comfy.run(workflow, timeout=60)
            except PromptValidationError as refused:
                reasons[f"refused: {refused.problems()[0][1]}"] += 1
                continue
            expected = output_nodes(workflow, server.object_info)
        assert set(result.outputs) <= expected, path.name
        assert result.outputs, path.name
        ran.append(path.name)
    figures(workflows=len(paths), ran=len(ran), **dict(reasons))
    assert set(ran) >= EXPECTED_TO_RUN, sorted(EXPECTED_TO_RUN - set(ran))
