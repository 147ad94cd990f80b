"""comfy_async.testing: a faithful fake ComfyUI / Comfy Cloud server for tests, with fault knobs.

Not imported by ``comfy_async`` itself; import it in tests::

    from comfy_async.testing import FakeComfyServer

    async with FakeComfyServer(time_scale=0.01) as server:
        ...  # server.url, server.ws_url(client_id), server.faults

* :class:`FakeComfyServer` — the server (local or Cloud flavour), an async context manager;
  ``manager=True`` adds ComfyUI-Manager 4, which installs :data:`EXAMPLE_PACK_URL` by default.
* :class:`Faults` — its fault knobs (``server.faults``) and frames to inject.
* :class:`FakeComfyApiV2` — the Comfy API v2 in front of a fake server (jobs, SSE, assets),
  with its :class:`V2Faults`.
* :func:`fake_fleet` — several servers at once, each with its own models, nodes and speed.
* ``comfy_async.testing.models`` — the model inventory (``FakeComfyServer(models=…)``, a
  default one, and the models a workflow names), listed by the loaders' combo inputs.
* :class:`NodeBehaviour` / :class:`BehaviourRegistry` — what simulated nodes do.
* :class:`PromptValidator` / :class:`TopLevelValidator` / :class:`ValidationOutcome` — the seam
  that accepts or rejects submitted graphs.
* ``comfy_async.testing.pytest_plugin`` — fixtures ``comfy_server`` and ``comfy_cloud_server``
  (enable with ``pytest_plugins = ["comfy_async.testing.pytest_plugin"]``).
* ``python -m comfy_async.testing`` — run it standalone.
"""

from __future__ import annotations

from comfy_async.testing.api_v2 import FakeComfyApiV2, V2Faults
from comfy_async.testing.behaviours import BehaviourRegistry, NodeBehaviour
from comfy_async.testing.faults import (
    Faults,
    malformed_binary_frame,
    malformed_text_frame,
    oversize_frame,
    unknown_binary_frame,
    unknown_text_frame,
)
from comfy_async.testing.fleet import fake_fleet
from comfy_async.testing.server import (
    EXAMPLE_PACK_NODES,
    EXAMPLE_PACK_URL,
    FakeComfyServer,
    PromptRecord,
)
from comfy_async.testing.validation import PromptValidator, TopLevelValidator, ValidationOutcome

__all__ = [
    "EXAMPLE_PACK_NODES",
    "EXAMPLE_PACK_URL",
    "BehaviourRegistry",
    "FakeComfyApiV2",
    "FakeComfyServer",
    "Faults",
    "NodeBehaviour",
    "PromptRecord",
    "PromptValidator",
    "TopLevelValidator",
    "V2Faults",
    "ValidationOutcome",
    "fake_fleet",
    "malformed_binary_frame",
    "malformed_text_frame",
    "oversize_frame",
    "unknown_binary_frame",
    "unknown_text_frame",
]
