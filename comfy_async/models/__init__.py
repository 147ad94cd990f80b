"""msgspec Structs for every REST payload of the ComfyUI and Comfy Cloud servers, by API area.

Models hold data only (no I/O, no logic beyond properties). Unknown fields are ignored and every
field the server may omit has a default (design §7).
"""

from __future__ import annotations

from comfy_async.models._base import Model
from comfy_async.models.prompts import (
    InputError,
    NodeError,
    PromptErrorInfo,
    PromptRejection,
    PromptResponse,
)

__all__ = [
    "InputError",
    "Model",
    "NodeError",
    "PromptErrorInfo",
    "PromptRejection",
    "PromptResponse",
]
