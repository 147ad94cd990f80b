"""``python -m comfy_async.testing``: run the fake server standalone until Ctrl-C or SIGTERM.

Example::

    python -m comfy_async.testing --port 8188 --time-scale 0.1 --node-duration KSampler=3

It prints its URL (and, with ``--cloud``, its API key) on one line and serves loopback
addresses only. Nothing here is imported by the library.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import signal
import sys
from pathlib import Path

from comfy_async.errors import ConfigurationError
from comfy_async.testing.models import (
    DEFAULT_MODELS,
    merge_inventories,
    models_named_by,
    parse_models,
)
from comfy_async.testing.server import EXAMPLE_PACK_URL, FakeComfyServer

__all__ = ["main", "parse_args"]


def _duration(text: str) -> tuple[str, float]:
    name, sep, seconds = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected CLASS=SECONDS, got {text!r}")
    try:
        return name, float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {seconds!r}") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of the standalone fake server."""
    parser = argparse.ArgumentParser(
        prog="python -m comfy_async.testing",
        description="Run a fake ComfyUI (or Comfy Cloud) server for trying clients out.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=8188, help="port (0: a free one)")
    parser.add_argument("--cloud", action="store_true", help="serve the Comfy Cloud flavour")
    parser.add_argument("--api-key", help="Cloud API key (random when omitted)")
    parser.add_argument(
        "--object-info", help="object_info JSON (or .json.gz) to serve instead of the default"
    )
    parser.add_argument(
        "--extra-nodes",
        action="append",
        default=[],
        metavar="OBJECT_INFO.json",
        help="add the node classes of this object_info dump (a custom node pack's; repeatable)",
    )
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiplies durations")
    parser.add_argument(
        "--manager",
        action="store_true",
        help="serve ComfyUI-Manager 4 (it can install the example node pack)",
    )
    parser.add_argument(
        "--node-duration",
        type=_duration,
        action="append",
        default=[],
        metavar="CLASS=SECONDS",
        help="duration of one node class (repeatable)",
    )
    parser.add_argument(
        "--models",
        action="append",
        default=[],
        metavar="FOLDER=NAME[,NAME…]",
        help="the model files of a folder, replacing the default list (repeatable)",
    )
    parser.add_argument(
        "--models-from",
        action="append",
        default=[],
        metavar="WORKFLOW.json",
        help="also hold every model this API-format workflow names (repeatable)",
    )
    return parser.parse_args(argv)


def _inventory(args: argparse.Namespace) -> dict[str, tuple[str, ...]]:
    """The default inventory, with the folders --models names replaced, plus --models-from."""
    inventory: dict[str, tuple[str, ...]] = dict(DEFAULT_MODELS)
    given = merge_inventories(*(parse_models(text) for text in args.models))
    inventory.update(given)
    for path in args.models_from:
        try:
            prompt = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ConfigurationError(f"cannot read the workflow {path}: {error}") from None
        if not isinstance(prompt, dict):
            raise ConfigurationError(f"{path} is not an API-format workflow")
        inventory = merge_inventories(inventory, models_named_by(prompt))
    return inventory


async def _serve(args: argparse.Namespace) -> None:
    server = FakeComfyServer(
        flavour="cloud" if args.cloud else "local",
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        object_info=args.object_info,
        extra_nodes=args.extra_nodes,
        models=_inventory(args),
        time_scale=args.time_scale,
        node_durations=dict(args.node_duration),
        manager=args.manager,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with server:
        line = f"fake ComfyUI listening on {server.url}"
        if server.cloud:
            line += f" (cloud, api key {server.api_key})"
        print(line, flush=True)  # noqa: T201 - the command's output
        if args.manager:
            print(f"ComfyUI-Manager 4 can install {EXAMPLE_PACK_URL}", flush=True)  # noqa: T201
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Run until interrupted; returns the exit status."""
    args = parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except (ValueError, ConfigurationError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        print(  # noqa: T201
            f"error: port {args.port} on {args.host} is in use (another server?); "
            "pick another with --port N, or --port 0 for a free one",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
