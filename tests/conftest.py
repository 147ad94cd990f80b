"""Suite-wide settings: hypothesis profiles, fixture locations, scenario figures.

asyncio debug mode is on for every test loop through pytest-asyncio's ``asyncio_debug`` setting
in pyproject.toml (``tests/test_suite_settings.py`` checks it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    deadline=None,  # shared CI machines are noisy; speed is checked by benchmarks, not tests
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Our own fixtures for users, used by our tests the way users enable them.
pytest_plugins = ["comfy_async.testing.pytest_plugin"]

TESTS = Path(__file__).resolve().parent
#: Our own recordings of a real ComfyUI v0.33.0, copied into the suite.
REAL_COMFYUI = TESTS / "data" / "real_comfyui"


def _find_shared_fixtures() -> Path:
    """``shared/fixtures`` beside the checkout, or beside any folder above it (git worktrees)."""
    for folder in TESTS.parent.parents:
        candidate = folder / "shared" / "fixtures"
        if candidate.is_dir():
            return candidate
    return TESTS.parent.parent / "shared" / "fixtures"


#: The shared fixtures (not ours to redistribute): read in place, skip when absent.
SHARED_FIXTURES = _find_shared_fixtures()


@pytest.fixture(scope="session")
def real_comfyui() -> Path:
    """The folder of recorded real-server traffic."""
    return REAL_COMFYUI


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """The shared fixtures folder; skips the test when it is absent."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip("../shared/fixtures is not present")
    return SHARED_FIXTURES


# --------------------------------------------------------------------------- figures

_FIGURES: list[tuple[str, dict[str, object]]] = []


@pytest.fixture
def figures(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Record figures (times, counts, memory) a scenario measured; printed after the run."""

    def record(**values: object) -> None:
        _FIGURES.append((request.node.nodeid, values))
        print(request.node.name, values)

    return record


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if not _FIGURES:
        return
    terminalreporter.section("scenario figures")
    for nodeid, values in _FIGURES:
        shown = ", ".join(f"{key}={value}" for key, value in values.items())
        terminalreporter.write_line(f"{nodeid.split('::')[-1]}: {shown}")
