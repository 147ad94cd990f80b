"""The README's testing snippet, run as is in a throwaway project that installed the package.

The files of the README's "Testing your own code with the fake server" section are
written to an empty folder, a fresh virtual environment gets ``comfy-async[testing]`` from this
checkout (offline, from uv's cache: no network), and pytest runs there with warnings as errors.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECTION = "### Testing your own code with the fake server"
pytestmark = pytest.mark.slow


def readme_files() -> dict[str, str]:
    """The README section's fenced blocks, by the file name on their first line."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n### ", 1)[0]
    files = {}
    for body in re.findall(r"```(?:python|toml)\n(.*?)```", section, flags=re.DOTALL):
        first, _, rest = body.partition("\n")
        name = first.removeprefix("# ").strip()
        assert re.fullmatch(r"[\w.]+\.(py|toml)", name), f"a block without a file name: {first!r}"
        files[name] = rest
    return files


def find_uv() -> str | None:
    local = ROOT / ".venv-tools" / "bin" / "uv"
    return str(local) if local.exists() else shutil.which("uv")


def test_the_readme_declares_its_files() -> None:
    assert sorted(readme_files()) == [
        "conftest.py",
        "pyproject.toml",
        "test_bot.py",
        "test_workflow.py",
    ]


def test_the_readme_snippet_runs_unmodified_in_a_fresh_project(tmp_path: Path) -> None:
    uv = find_uv()
    if uv is None:
        pytest.skip("uv is not installed (make test installs it into .venv-tools)")
    project = tmp_path / "user-project"
    project.mkdir()
    for name, body in readme_files().items():
        (project / name).write_text(body, encoding="utf-8")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST", "VIRTUAL_ENV", "UV_PROJECT", "PYTHON"))
    }
    env |= {"UV_PYTHON_DOWNLOADS": "never", "UV_NO_CONFIG": "1"}
    venv = tmp_path / "venv"
    subprocess.run(
        [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        check=True,
        env=env,
        timeout=120,
    )
    python = venv / "bin" / "python"
    install = subprocess.run(
        [uv, "pip", "install", "--quiet", "--offline", "--python", str(python), f"{ROOT}[testing]"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if install.returncode != 0 and "offline" in install.stderr.lower():
        pytest.skip(f"cannot install offline from uv's cache here: {install.stderr[-300:]}")
    assert install.returncode == 0, install.stderr
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-W", "error", "-p", "no:cacheprovider"],
        check=False,
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout
    assert "warning" not in run.stdout.lower()
