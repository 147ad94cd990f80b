"""``pool``: the state of a fleet of servers, as a ``ComfyPool`` over them sees it.

Each server given (``--url`` several times, or ``$COMFY_URLS``) is read and probed for a second:
its health, the prompts in its queue, its node classes and its free VRAM. One server works too
(a fleet of one). Exit 4 when none answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from comfy_async.cli.failures import ExitCode
from comfy_async.cli.registry import add_command
from comfy_async.cli.session import ENV_URLS
from comfy_async.errors import ComfyError, ConnectError
from comfy_async.pool import ComfyPool

if TYPE_CHECKING:
    import argparse

    from comfy_async.cli.registry import SubParsers
    from comfy_async.cli.session import Context

__all__ = ["pool_command", "register"]

_EXAMPLES = f"""\
examples:
  comfy-async --url http://gpu1:8188 --url http://gpu2:8188 pool
  {ENV_URLS}=http://gpu1:8188,http://gpu2:8188 comfy-async pool --json
"""

#: How long the first probes may take before the state is shown.
PROBE_SECONDS = 1.0


async def pool_command(ctx: Context) -> ExitCode:
    """``comfy-async pool``: each server's health, queue, node classes and free VRAM."""
    out = ctx.out
    clients = ctx.clients()
    rows: list[dict[str, object]] = []
    async with ComfyPool(clients, probe_every=PROBE_SECONDS / 4) as pool:
        await asyncio.sleep(PROBE_SECONDS)  # a few probes: queue lengths and health
        stats = pool.stats()
        for client in clients:
            server = stats[client.base_url.rstrip("/")]
            row: dict[str, object] = {
                "server": server.name,
                "health": server.health,
                "queue": server.queued_elsewhere,
                "nodes": None,
                "vram_free": None,
                "vram_total": None,
            }
            if server.health == "up":
                with contextlib.suppress(ComfyError, TimeoutError):
                    async with asyncio.timeout(PROBE_SECONDS * 5):
                        row["nodes"] = len(await client.nodes())
                        system = await client.system.stats()
                        if system.devices:
                            row["vram_free"] = system.devices[0].vram_free
                            row["vram_total"] = system.devices[0].vram_total
            rows.append(row)
    if out.json:
        for row in rows:
            out.json_line(row)
    else:
        out.table(
            [
                [
                    str(row["server"]),
                    str(row["health"]),
                    str(row["queue"]),
                    "?" if row["nodes"] is None else str(row["nodes"]),
                    _vram(row["vram_free"], row["vram_total"]),
                ]
                for row in rows
            ],
            ["SERVER", "HEALTH", "QUEUE", "NODES", "VRAM FREE"],
        )
    if all(row["health"] != "up" for row in rows):
        raise ConnectError(f"none of the {len(rows)} servers answers")
    return ExitCode.OK


def _vram(free: object, total: object) -> str:
    if not isinstance(free, int | float) or not isinstance(total, int | float) or not total:
        return "?"
    return f"{free / 2**30:.1f} of {total / 2**30:.1f} GiB"


def register(subparsers: SubParsers, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``pool`` to the command line."""
    add_command(
        subparsers,
        "pool",
        parents,
        summary="the state of several servers (health, queues) as a pool sees them",
        handler=pool_command,
        examples=_EXAMPLES,
    )
