"""The protocol core imports with asyncio and aiohttp blocked (design §2: sans-I/O)."""

from __future__ import annotations

import subprocess
import sys

BLOCKED_IMPORT = """
import sys
for name in ("asyncio", "aiohttp", "anyio", "socket", "ssl", "selectors"):
    sys.modules[name] = None  # any import of these now raises ImportError
import comfy_async.protocol
import comfy_async.protocol.frames, comfy_async.protocol.messages, comfy_async.protocol.state
state = comfy_async.protocol.ProtocolState()
event = state.receive_text('{"type": "status", "data": {"sid": "x"}}')
assert state.sid == "x", event
print("ok")
"""


def test_protocol_imports_with_io_modules_blocked() -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED_IMPORT], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
