"""The REST namespaces of a session: one class per API area, each a thin layer over ``_http``.

A namespace looks its routes up by name in the session's route table (local or Comfy Cloud),
sends them through :class:`~comfy_async._transport.http.HttpClient` and decodes the answers with the
models' cached decoders. Flavour differences live in the route table and in the decoders chosen
by route, never in ``if cloud:`` branches (design §5). ``ComfyClient`` exposes one instance of
each as ``comfy.prompts``, ``comfy.queue``, ``comfy.history``, ``comfy.jobs``, ``comfy.files``,
``comfy.system``, ``comfy.models``, ``comfy.userdata``, ``comfy.settings``, ``comfy.users`` and
``comfy.manager``.

The names below load with their module on first use: a session that only submits prompts never
loads the ComfyUI-Manager models.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from comfy_async._transport.rest.comfyui_manager import ComfyUIManager
    from comfy_async._transport.rest.files import Files
    from comfy_async._transport.rest.history import History
    from comfy_async._transport.rest.jobs import Jobs
    from comfy_async._transport.rest.model_files import Models
    from comfy_async._transport.rest.prompts import Prompts, new_prompt_id
    from comfy_async._transport.rest.queue import Queue
    from comfy_async._transport.rest.system import System
    from comfy_async._transport.rest.userdata import Settings, UserData, Users

__all__ = [
    "ComfyUIManager",
    "Files",
    "History",
    "Jobs",
    "Models",
    "Prompts",
    "Queue",
    "Settings",
    "System",
    "UserData",
    "Users",
    "new_prompt_id",
]

_LAZY = {
    "ComfyUIManager": "comfy_async._transport.rest.comfyui_manager",
    "Files": "comfy_async._transport.rest.files",
    "History": "comfy_async._transport.rest.history",
    "Jobs": "comfy_async._transport.rest.jobs",
    "Models": "comfy_async._transport.rest.model_files",
    "Prompts": "comfy_async._transport.rest.prompts",
    "Queue": "comfy_async._transport.rest.queue",
    "Settings": "comfy_async._transport.rest.userdata",
    "System": "comfy_async._transport.rest.system",
    "UserData": "comfy_async._transport.rest.userdata",
    "Users": "comfy_async._transport.rest.userdata",
    "new_prompt_id": "comfy_async._transport.rest.prompts",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
