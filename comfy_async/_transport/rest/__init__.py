"""The REST namespaces of a session: one class per API area, each a thin layer over ``_http``.

A namespace looks its routes up by name in the session's route table (local or Comfy Cloud),
sends them through :class:`~comfy_async._transport.http.HttpClient` and decodes the answers with the
models' cached decoders. Flavour differences live in the route table and in the decoders chosen
by route, never in ``if cloud:`` branches (design §5). ``ComfyClient`` exposes one instance of
each as ``comfy.prompts``, ``comfy.queue``, ``comfy.history``, ``comfy.jobs``, ``comfy.files``,
``comfy.system``, ``comfy.models``, ``comfy.userdata``, ``comfy.settings``, ``comfy.users`` and
``comfy.manager``.
"""

from __future__ import annotations

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
