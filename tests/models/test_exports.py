from __future__ import annotations

import importlib
import inspect

import msgspec
import pytest

from comfy_async import models

MODULES = [
    "api_v2",
    "comfyui_manager",
    "files",
    "history",
    "jobs",
    "model_files",
    "object_info",
    "prompts",
    "queue",
    "system",
    "userdata",
]


def test_all_is_sorted_and_unique() -> None:
    assert list(models.__all__) == sorted(set(models.__all__))


@pytest.mark.parametrize("module_name", MODULES)
def test_every_module_export_is_reexported(module_name: str) -> None:
    module = importlib.import_module(f"comfy_async.models.{module_name}")
    assert module.__doc__
    assert list(module.__all__) == sorted(module.__all__)
    for name in module.__all__:
        assert name in models.__all__, name
        assert getattr(models, name) is getattr(module, name)


def test_every_export_is_documented_and_every_model_frozen() -> None:
    for name in models.__all__:
        value = getattr(models, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), name
        if inspect.isclass(value) and issubclass(value, msgspec.Struct):
            assert issubclass(value, models.Model), name
            assert value.__struct_config__.frozen, name
