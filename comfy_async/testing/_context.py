"""Everything one running fake server instance holds, bundled for the route modules.

A :class:`ServerContext` is built at every start (and restart: a new queue, history, hub and
executor, like a fresh process) from the server's options. Route modules read and change the
state through it; they never keep state of their own. No I/O here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections import Counter
    from collections.abc import Mapping

    from comfy_async.testing._executor import Executor
    from comfy_async.testing._files import FileStore
    from comfy_async.testing._hub import Hub
    from comfy_async.testing._specs import PromptRecord
    from comfy_async.testing._store import History, PromptQueue
    from comfy_async.testing.behaviours import BehaviourRegistry
    from comfy_async.testing.faults import Faults
    from comfy_async.testing.validation import PromptValidator

__all__ = ["ServerContext"]


@dataclass(eq=False)
class ServerContext:
    """The state of one server instance (see the module docstring)."""

    cloud: bool
    api_key: str | None
    features: dict[str, object]
    object_info: dict[str, dict[str, object]]
    object_info_bytes: bytes
    info: dict[str, Any]
    max_upload_size: int
    queue: PromptQueue
    history: History
    hub: Hub
    executor: Executor
    files: FileStore
    faults: Faults
    validator: PromptValidator
    behaviours: BehaviourRegistry
    prompt_posts: list[PromptRecord]
    request_counts: Counter[str]
    cancel_requests: list[str] = field(default_factory=list)
    history_listings: list[dict[str, str]] = field(default_factory=list)
    models: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    user: str = "default"
    logs: list[dict[str, str]] = field(default_factory=list)
    settings: dict[str, object] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def log(self, line: str) -> None:
        """Record a server log line and stream it to subscribed clients (``logs`` events)."""
        entry = {"t": datetime.now().isoformat(), "m": f"{line}\n"}
        self.logs.append(entry)
        del self.logs[:-1000]
        from comfy_async.testing._hub import Target  # noqa: PLC0415 - cycle with the hub

        for sid in self.hub.log_subscribers:
            self.hub.send("logs", {"entries": [entry], "size": None}, Target(sid=sid))

    def status(self) -> dict[str, object]:
        """``{"exec_info": {"queue_remaining": N}}``."""
        return {"exec_info": {"queue_remaining": self.queue.remaining}}
