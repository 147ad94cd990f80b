"""``pool``: the state of the fleet the command line names, one line per server.

Opens a :class:`~comfy_async.pool.ComfyPool` over every ``--url`` (or ``$COMFY_URLS``), lets
it read each server and probe it once, and prints what :meth:`~comfy_async.pool.ComfyPool.stats`
says of each: health, the pool's jobs there, prompts other clients queued there, the models
believed warm, jobs done and failed, and the mean job time. A table, or one JSON document with
``--json``. When no server answers, one line on stderr and exit code 4. The pool's warnings
about servers that are down are left out (the table says so), unless ``--verbose``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from comfy_async.cli.failures import ExitCode
from comfy_async.cli.registry import add_command
from comfy_async.cli.run import fleet_clients
from comfy_async.errors import ComfyError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator

    from comfy_async.cli.registry import SubParsers
    from comfy_async.cli.session import Context
    from comfy_async.client import ComfyClient
    from comfy_async.pool import ServerStats

__all__ = ["pool_command", "register"]

_PROBE_TIMEOUT = 5.0

_EXAMPLES = """\
examples:
  comfy-async --url http://gpu1:8188 --url http://gpu2:8188 pool
  COMFY_URLS=http://gpu1:8188,http://gpu2:8188 comfy-async pool --json

Columns: SERVER, HEALTH (up, down, recovering), IN FLIGHT (this pool's jobs there), QUEUED
(other clients' prompts in its queue), WARM (models believed loaded), DONE, FAILED, MEAN S (seconds
per job, once one ended there). Exit codes: 0 at least one server answers,
2 usage, 4 no server answers.
"""


async def _queue_remaining(client: ComfyClient) -> int | None:
    with contextlib.suppress(ComfyError, TimeoutError):
        async with asyncio.timeout(_PROBE_TIMEOUT):
            info = await client.prompts.info()
            return info.exec_info.queue_remaining
    return None


def _row(stats: ServerStats, queued: int) -> list[str]:
    return [
        stats.name,
        stats.health,
        str(stats.in_flight),
        str(queued) if stats.health == "up" else "-",
        ", ".join(stats.warm_models) or "-",
        str(stats.done),
        str(stats.failed),
        "-" if _mean(stats) is None else f"{stats.mean_duration:.1f}",
    ]


def _mean(stats: ServerStats) -> float | None:
    """The measured seconds per job (``None`` before a job ended there: only a guess exists)."""
    return stats.mean_duration if stats.done + stats.failed else None


@contextlib.contextmanager
def _quiet_pool_log(verbose: int) -> Iterator[None]:
    """Without ``--verbose``, the pool's 'server is down' warnings stay out of the snapshot."""
    logger = logging.getLogger("comfy_async.pool")
    level = logger.level
    if not verbose:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


async def pool_command(ctx: Context) -> ExitCode:
    """``comfy-async pool``: each server's health, load, warm models and figures."""
    with _quiet_pool_log(ctx.out.verbose):
        return await _show(ctx)


async def _show(ctx: Context) -> ExitCode:
    pool, answering = await fleet_clients(ctx)
    # The pool's first probe of each server runs beside this read of its queue: the table shows
    # the larger of the two counts of prompts that are not the pool's.
    remaining = dict(
        zip(
            (client.base_url.rstrip("/") for client in answering),
            await asyncio.gather(*(_queue_remaining(client) for client in answering)),
            strict=True,
        )
    )
    stats = pool.stats()
    queued = {
        name: max(state.queued_elsewhere, (remaining.get(name) or 0) - state.in_flight)
        for name, state in stats.items()
    }
    out = ctx.out
    if out.json:
        out.json_line(
            {
                "servers": [
                    {
                        "name": state.name,
                        "health": state.health,
                        "in_flight": state.in_flight,
                        "queued_elsewhere": queued[name] if state.health == "up" else None,
                        "warm_models": list(state.warm_models),
                        "done": state.done,
                        "failed": state.failed,
                        "moved_away": state.moved_away,
                        "mean_duration": _mean(state),
                    }
                    for name, state in stats.items()
                ],
                "up": sum(1 for state in stats.values() if state.health == "up"),
                "held": pool.held,
            }
        )
        return ExitCode.OK
    out.table(
        [_row(state, queued[name]) for name, state in stats.items()],
        headers=["SERVER", "HEALTH", "IN FLIGHT", "QUEUED", "WARM", "DONE", "FAILED", "MEAN S"],
    )
    return ExitCode.OK


def register(subparsers: SubParsers, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``pool`` to the command line."""
    add_command(
        subparsers,
        "pool",
        parents,
        summary="show the state of a fleet of servers (--url repeated, or $COMFY_URLS)",
        handler=pool_command,
        description=(
            "Show each server of the fleet: health, jobs in flight, prompts queued by others, "
            "warm models, jobs done and failed, mean job time."
        ),
        examples=_EXAMPLES,
    )
