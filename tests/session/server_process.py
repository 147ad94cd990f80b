"""A fake server in a child process, so that memory traced in the test process is the client's.

``python -m tests.session.server_process CONFIG`` starts a
:class:`~comfy_async.testing.FakeComfyServer` from a JSON object of its keyword arguments (a
``behaviours`` entry maps class types to :class:`~comfy_async.testing.behaviours.NodeBehaviour`
fields), prints its base URL and a WebSocket URL for the client id ``observer`` on one line, and
serves until its standard input closes. :func:`server_process` does all of that from a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from comfy_async.testing import FakeComfyServer
from comfy_async.testing.behaviours import NodeBehaviour

_ROOT = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def server_process(**config: object) -> AsyncIterator[tuple[str, str]]:
    """Start the child; yield ``(base URL, WebSocket URL of the observer)``; stop it."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.session.server_process",
        json.dumps(config),
        cwd=_ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        line = await asyncio.wait_for(child.stdout.readline(), 60)
        url, ws_url = line.decode().split()
        yield url, ws_url
    finally:
        child.stdin.close()
        try:
            await asyncio.wait_for(child.wait(), 30)
        except TimeoutError:
            child.kill()
            await child.wait()


async def _serve(config: dict[str, object]) -> None:
    behaviours = config.pop("behaviours", {})
    assert isinstance(behaviours, dict)
    registered = {name: NodeBehaviour(**fields) for name, fields in behaviours.items()}
    async with FakeComfyServer(behaviours=registered, **config) as fake:  # type: ignore[arg-type]
        print(fake.url, fake.ws_url("observer"), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(_serve(json.loads(sys.argv[1])))
