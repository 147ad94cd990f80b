"""The fake server's GPU: which models are loaded, what a cold load costs, the VRAM they use.

A real server keeps the models it loaded in VRAM until it needs the room (least recently used
first) or ``/free`` unloads them; a prompt whose model is not loaded pays the load first. The
pool schedules by exactly this, so the fake reproduces it: :class:`Gpu` holds the warm models
within a VRAM budget and tells the executor when a load is cold. No I/O here.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

__all__ = ["MODEL_BYTES", "Gpu"]

_GIB: Final = 1024**3

#: The VRAM one model of a folder takes (typical sizes; other folders: 0.5 GiB).
MODEL_BYTES: Final[dict[str, int]] = {
    "checkpoints": 4 * _GIB,
    "diffusion_models": 12 * _GIB,
    "text_encoders": 5 * _GIB,
    "controlnet": 3 * _GIB // 2,
    "clip_vision": 2 * _GIB,
    "vae": _GIB // 3,
    "loras": _GIB // 5,
    "upscale_models": _GIB // 10,
}


class Gpu:
    """Warm models, least recently used first, within ``vram_budget`` bytes."""

    def __init__(self, vram_budget: int) -> None:
        if vram_budget <= 0:
            raise ValueError(f"vram_budget must be positive, got {vram_budget!r}")
        self.vram_budget = vram_budget
        self._warm: OrderedDict[tuple[str, str], int] = OrderedDict()
        self.loads = 0
        """How many cold loads the server has made."""

    @property
    def used(self) -> int:
        """VRAM held by the warm models, in bytes."""
        return sum(self._warm.values())

    @property
    def warm(self) -> list[tuple[str, str]]:
        """The loaded models as ``(folder, name)``, least recently used first."""
        return list(self._warm)

    def use(self, folder: str, name: str) -> bool:
        """Use a model; return whether it had to be loaded (cold). Evicts to stay in budget."""
        key = (folder, name)
        if key in self._warm:
            self._warm.move_to_end(key)
            return False
        size = MODEL_BYTES.get(folder, _GIB // 2)
        while self._warm and self.used + size > self.vram_budget:
            self._warm.popitem(last=False)
        self._warm[key] = size
        self.loads += 1
        return True

    def unload_all(self) -> None:
        """``/free`` with ``unload_models``: every model leaves VRAM."""
        self._warm.clear()
