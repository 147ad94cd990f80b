"""Which format a workflow document is in, told without loading the graph machinery.

A session submitting a plain API-format dict asks only this; the conversion and validation
modules load when a UI-format document or a ``Workflow`` actually needs them.
"""

from __future__ import annotations

__all__ = ["is_ui_format"]


def is_ui_format(data: object) -> bool:
    """Whether ``data`` is a workflow saved from the UI (``nodes`` and ``links`` lists)."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("nodes"), list)
        and isinstance(data.get("links"), list)
    )
