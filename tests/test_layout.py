"""The package's shape: layers that show, no import circle, a small public surface."""

from __future__ import annotations

import ast
import asyncio
import inspect
import pkgutil
import re
from pathlib import Path

import comfy_async
import comfy_async.errors as errors_module

PACKAGE = Path(comfy_async.__file__).parent
README = Path(__file__).resolve().parents[1] / "README.md"

#: What users reach on a job (``dir(job)`` without dunders and private names).
JOB_SURFACE = {
    "cancel",
    "detach",
    "detached",
    "done",
    "node_errors",
    "number",
    "position",
    "previews",
    "progress",
    "prompt_id",
    "result",
    "server",
    "servers",
    "state",
    "stats",
    "wait",
}


def test_the_top_level_shows_the_layers() -> None:
    entries = sorted(info.name for info in pkgutil.iter_modules(comfy_async.__path__))
    # one module per public concept, one package per private layer
    assert len(entries) <= 18, entries
    private = [name for name in entries if name.startswith("_") and name != "__main__"]
    assert private == ["_graph", "_live", "_pool", "_transport"]  # no loose private module
    for layer in private:
        doc = (PACKAGE / layer / "__init__.py").read_text(encoding="utf-8")
        assert "May import" in doc, f"{layer} does not say what it may import"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The comfy_async modules a module imports, at run time or for type checking."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("comfy_async"):
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("comfy_async"))
    return found


def test_no_import_circle_in_the_package() -> None:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {
        name: {dep for dep in imports_of(path) if dep in modules and dep != name}
        for name, path in modules.items()
    }
    # A package's __init__ re-exporting its own modules is not a circle.
    for name, deps in graph.items():
        graph[name] = {dep for dep in deps if not name.startswith(dep + ".")}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append([*trail[trail.index(dep) :], dep] if dep in trail else [node, dep])
            elif dep not in state:
                visit(dep, [*trail, dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == [], cycles


async def test_a_job_shows_only_its_public_surface() -> None:
    from comfy_async._live.tasks import TaskSet
    from comfy_async.config import StreamLimits
    from comfy_async.job import Job

    class Backend:
        async def lookup(self, prompt_id: str) -> None:
            return None

        async def cancel(self, prompt_id: str, *, running: bool) -> bool:
            return True

        async def save(self, *args: object, **kwargs: object) -> list[Path]:
            return []

    tasks = TaskSet()
    job = Job(
        "0" * 8 + "-0000-4000-8000-" + "0" * 12,
        backend=Backend(),
        tasks=tasks,
        limits=StreamLimits(),
    )
    surface = {name for name in dir(job) if not name.startswith("_")}
    assert surface == JOB_SURFACE
    await asyncio.sleep(0)
    await tasks.aclose()


def error_classes() -> list[str]:
    return sorted(
        name
        for name in errors_module.__all__
        if inspect.isclass(getattr(errors_module, name))
        and issubclass(getattr(errors_module, name), BaseException)
    )


def test_every_public_error_is_importable_from_the_package() -> None:
    for name in error_classes():
        assert name in comfy_async.__all__, name
        assert getattr(comfy_async, name) is getattr(errors_module, name)


def test_the_readme_error_tree_is_the_class_tree() -> None:
    text = README.read_text(encoding="utf-8").split("## Errors", 1)[1]
    block = re.search(r"```text\n(.*?)```", text, flags=re.DOTALL)
    assert block is not None
    listed: list[tuple[int, str]] = []
    for line in block.group(1).splitlines():
        name = line.strip()
        listed.append(((len(line) - len(name)) // 2, name))
    assert sorted(name for _, name in listed) == error_classes()
    parents: list[str] = []
    for depth, name in listed:
        parents[depth:] = [name]
        if depth:
            cls = getattr(errors_module, name)
            assert getattr(errors_module, parents[depth - 1]) in cls.__bases__, name
