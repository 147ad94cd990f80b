"""Pools over fake servers: the SD 1.5 workflow with a chosen checkpoint and seed."""

from __future__ import annotations

import json
from pathlib import Path

from comfy_async.config import (
    Backoff,
    ClientOptions,
    HeartbeatPolicy,
    ReconcilePolicy,
    ReconnectPolicy,
)

SD15 = Path(__file__).resolve().parents[2] / "examples" / "workflows" / "sd15_txt2img_api.json"

#: Quick to notice trouble: the scenarios kill servers on purpose.
FAST = ClientOptions(
    heartbeat=HeartbeatPolicy(interval=0.5),
    reconnect=ReconnectPolicy(backoff=Backoff(initial=0.05, maximum=0.3)),
    reconcile=ReconcilePolicy(silent_after=1.0, max_silent_after=2.0),
)


def txt2img(seed: int, checkpoint: str = "v1-5-pruned-emaonly.safetensors", steps: int = 4):
    """The standard text-to-image graph with this checkpoint, seed and step count."""
    prompt = json.loads(SD15.read_text(encoding="utf-8"))
    prompt["4"]["inputs"]["ckpt_name"] = checkpoint
    prompt["3"]["inputs"]["seed"] = seed
    prompt["3"]["inputs"]["steps"] = steps
    prompt["5"]["inputs"].update(width=64, height=64)
    return prompt
