"""Public API hygiene: every ``__all__`` is sorted, complete and importable; names documented."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import TYPE_CHECKING

import pytest

import comfy_async

if TYPE_CHECKING:
    from types import ModuleType

# Modules that are entry points or carry optional dependencies are imported lazily by users.
OPTIONAL = {"comfy_async.__main__"}


def public_modules() -> list[str]:
    names = ["comfy_async"]
    for info in pkgutil.walk_packages(comfy_async.__path__, "comfy_async."):
        if info.name in OPTIONAL or any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        names.append(info.name)
    return names


def isort_key(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions."""
    if name.isupper() or (name.upper() == name and "_" in name):
        return (0, name)
    return (1, name) if name[:1].isupper() else (2, name)


def load(name: str) -> ModuleType:
    return importlib.import_module(name)


@pytest.mark.parametrize("name", public_modules())
def test_module_has_docstring_and_sorted_all(name: str) -> None:
    module = load(name)
    assert module.__doc__, f"{name} has no module docstring"
    assert module.__doc__.strip(), f"{name} has an empty module docstring"
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert list(exported) == sorted(exported, key=isort_key), f"{name}.__all__ is not sorted"
    assert len(set(exported)) == len(exported)
    for attr in exported:
        assert hasattr(module, attr), f"{name}.__all__ names missing {attr}"


@pytest.mark.parametrize("name", public_modules())
def test_all_is_complete(name: str) -> None:
    """Every public class or function defined in the module is exported."""
    module = load(name)
    exported = set(module.__all__)
    for attr, value in vars(module).items():
        if attr.startswith("_") or not (inspect.isclass(value) or inspect.isfunction(value)):
            continue
        if getattr(value, "__module__", None) == name:
            assert attr in exported, f"{name}.{attr} is public but not in __all__"


@pytest.mark.parametrize("name", public_modules())
def test_public_names_are_documented(name: str) -> None:
    module = load(name)
    for attr in module.__all__:
        value = getattr(module, attr)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name}.{attr} has no docstring"


def test_package_reexports_are_public_objects() -> None:
    for attr in comfy_async.__all__:
        value = getattr(comfy_async, attr)
        origin = getattr(value, "__module__", "")
        if inspect.isclass(value) or inspect.isfunction(value):
            assert origin.startswith("comfy_async"), attr
