"""API-format graphs of the recorded probe nodes, for driving the fake server (test data)."""

from __future__ import annotations

import itertools

# Fresh colours start above every colour a test spells out, so a salted graph never equals one
# of them (a cache hit that sends no progress and no preview).
_salt = itertools.count(0x800000)


def image(color: int | None = None) -> dict[str, object]:
    """An EmptyImage node; a fresh colour each call so the server's cache does not kick in."""
    return {
        "class_type": "EmptyImage",
        "inputs": {
            "width": 32,
            "height": 16,
            "batch_size": 1,
            "color": next(_salt) if color is None else color,
        },
    }


def sleeper(
    *,
    steps: int = 2,
    delay: float = 0.0,
    preview: str = "none",
    text: str = "",
    color: int | None = None,
    prefix: str = "out",
) -> dict[str, dict[str, object]]:
    """EmptyImage → ProbeSleepProgress (progress, previews, TEXT) → SaveImage."""
    return {
        "1": image(color),
        "2": {
            "class_type": "ProbeSleepProgress",
            "inputs": {
                "image": ["1", 0],
                "steps": steps,
                "delay": delay,
                "preview_format": preview,
                "text": text,
            },
        },
        "3": {
            "class_type": "SaveImage",
            "inputs": {"images": ["2", 0], "filename_prefix": prefix},
        },
    }


def failing(message: str = "probe failure") -> dict[str, dict[str, object]]:
    """EmptyImage → ProbeRaise → SaveImage: fails at node 2."""
    return {
        "1": image(),
        "2": {"class_type": "ProbeRaise", "inputs": {"image": ["1", 0], "message": message}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "f"}},
    }


def blocked(message: str = "blocked by probe") -> dict[str, dict[str, object]]:
    """A blocked branch (ExecutionBlocked, not terminal) beside a branch that saves an image."""
    return {
        "1": image(),
        "2": {"class_type": "ProbeBlock", "inputs": {"image": ["1", 0], "message": message}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "b"}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "ok"}},
    }


def two_outputs(*, delay: float) -> dict[str, dict[str, object]]:
    """A sleeper whose image is saved at once, then a second stage of 3 steps saved at the end."""
    graph = sleeper(steps=1)
    graph["4"] = {
        "class_type": "ProbeSleepProgress",
        "inputs": {
            "image": ["2", 0],
            "steps": 3,
            "delay": delay,
            "preview_format": "none",
            "text": "",
        },
    }
    graph["5"] = {
        "class_type": "SaveImage",
        "inputs": {"images": ["4", 0], "filename_prefix": "late"},
    }
    return graph
