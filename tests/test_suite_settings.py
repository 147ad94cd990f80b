"""The suite runs the way the project promises: asyncio debug on, warnings are errors."""

from __future__ import annotations

import asyncio
import warnings

import pytest


async def test_asyncio_debug_mode_is_on() -> None:
    assert asyncio.get_running_loop().get_debug()


def test_warnings_are_errors() -> None:
    with pytest.raises(DeprecationWarning):
        warnings.warn("an example", DeprecationWarning, stacklevel=1)
