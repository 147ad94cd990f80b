"""``python -m comfy_async`` as a real process: Ctrl-C and SIGTERM during ``run``, the demo.

The Ctrl-C test sends SIGINT to a process running a slow job on the test's fake server (in
this process, on a port): the job must be cancelled on the server and the exit code be 130.
The demo test is what a new user does first: it must work from nothing and save a real PNG.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from comfy_async import ComfyClient
from comfy_async.cli import ExitCode
from tests.cli.conftest import OBJECT_INFO, ROOT, spawned, subprocess_env, write_json
from tests.session.graphs import sleeper


async def _line_containing(stream: asyncio.StreamReader, text: str, limit: float = 30) -> str:
    seen: list[str] = []
    async with asyncio.timeout(limit):
        while True:
            line = (await stream.readline()).decode()
            if not line:
                raise AssertionError(f"the process ended without printing {text!r}: {seen}")
            seen.append(line)
            if text in line:
                return line


@pytest.mark.parametrize(
    ("sig", "code", "said"),
    [
        (signal.SIGINT, ExitCode.INTERRUPTED, "interrupted"),
        (signal.SIGTERM, ExitCode.TERMINATED, "terminated"),
    ],
)
async def test_a_signal_during_run_cancels_the_job_on_the_server(
    comfy_server, tmp_path: Path, sig: signal.Signals, code: int, said: str
) -> None:
    workflow = write_json(tmp_path / "slow.json", sleeper(steps=1000, delay=60))
    argv = ("--url", comfy_server.url, "run", workflow, "--progress", "plain")
    async with spawned(*argv) as process:
        assert process.stderr is not None
        await _line_containing(process.stderr, "Probe: sleep with progress")  # it runs now
        (post,) = comfy_server.prompt_posts
        assert comfy_server.queue_remaining == 1
        process.send_signal(sig)
        async with asyncio.timeout(30):
            rest = (await process.stderr.read()).decode()
            assert await process.wait() == code
    assert "interrupted: cancelling 1 job(s) on the server" in rest
    assert f"job {post.prompt_id[:8]}: cancelled" in rest
    assert rest.rstrip().endswith(said)
    assert comfy_server.request_counts["POST /jobs/{job_id}/cancel"] == 1
    assert comfy_server.queue_remaining == 0
    async with ComfyClient(comfy_server.url) as comfy, asyncio.timeout(5):
        # the history entry is written as the interrupted prompt ends
        while (record := await comfy.history.get(post.prompt_id)) is None:
            await asyncio.sleep(0.05)
    assert record.interrupted


async def test_the_demo_works_from_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    async with spawned("demo", "-o", folder, "--delay", "0.02") as process, asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == ExitCode.OK, err.decode()
    (saved,) = out.decode().splitlines()
    image_path = Path(saved)
    assert image_path.parent == folder
    with Image.open(image_path) as image:
        image.verify()
        assert image.format == "PNG"
    with Image.open(image_path) as image:
        assert image.size == (512, 512)
    previews = sorted((folder / "previews").iterdir())
    assert len(previews) == 12
    with Image.open(previews[0]) as preview:
        assert preview.format == "JPEG"
    text = err.decode()
    assert "a fake ComfyUI at http://127.0.0.1:" in text
    assert f"demo done: {image_path} is the 512×512 PNG" in text
    # its workflow, saved beside the image, is one to try the other commands on
    workflow = json.loads((folder / "workflow_api.json").read_text())
    assert workflow["2"]["class_type"] == "ProbeSleepProgress"
    assert f"comfy-async run {folder / 'workflow_api.json'}" in text


def test_the_demo_as_a_new_user_types_it(tmp_path: Path) -> None:
    """``python -m comfy_async demo -o DIR``, defaults and all, from a plain shell."""
    folder = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "comfy_async", "demo", "-o", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(),
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    with Image.open(line) as image:
        image.verify()
        assert image.format == "PNG"
    assert f"demo done: {line}" in done.stderr


def test_json_output_of_a_subprocess_parses(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "comfy_async",
            "demo",
            "-o",
            str(tmp_path),
            "--delay",
            "0",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(),
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (report,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert report["status"] == "success"
    assert report["previews"] == 12


def test_import_comfy_async_loads_neither_the_cli_nor_rich() -> None:
    code = (
        "import sys, comfy_async; "
        "print(sorted(m for m in sys.modules if m.startswith(('comfy_async.cli', 'rich'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(),
        check=True,
    )
    assert done.stdout.strip() == "[]"


def test_help_explains_with_examples() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "comfy_async", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(),
        check=False,
    )
    assert done.returncode == 0
    assert "examples:" in done.stdout
    assert "--count N" in done.stdout
    assert "Exit codes: 0 done" in done.stdout


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path: Path) -> None:
    object_info = tmp_path / "object_info.json.gz"
    object_info.write_bytes(OBJECT_INFO.read_bytes())
    with subprocess.Popen(  # `comfy-async nodes | head -1`: 890 lines, one read
        [sys.executable, "-m", "comfy_async", "nodes", "--object-info", str(object_info)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=subprocess_env(),
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.readline().split()[0] == b"CLASS"
        process.stdout.close()
        err = process.stderr.read()
        assert process.wait(timeout=30) == ExitCode.BROKEN_PIPE
    assert err == b""
