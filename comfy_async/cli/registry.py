"""How a command module adds its subcommands: one call per command, with help and examples.

Every command module has ``register(subparsers, parents)``. :func:`add_command` makes the parser
of one subcommand: the shared options (``parents``), a one-line summary for ``comfy-async
--help``, a description and examples for the command's own ``--help`` (printed as written),
and the handler :func:`comfy_async.cli.main` runs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from comfy_async.cli.failures import ExitCode
    from comfy_async.cli.session import Context

__all__ = ["Handler", "SubParsers", "add_command", "positive_int", "positive_seconds"]

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What ``ArgumentParser.add_subparsers`` returns."""
Handler: TypeAlias = "Callable[[Context], Awaitable[ExitCode]]"
"""A command's coroutine: it gets the invocation and returns the exit code."""


def add_command(
    subparsers: SubParsers,
    name: str,
    parents: list[argparse.ArgumentParser],
    *,
    summary: str,
    handler: Handler,
    description: str | None = None,
    examples: str | None = None,
) -> argparse.ArgumentParser:
    """Add subcommand ``name``; return its parser, for the command's own arguments."""
    parser = subparsers.add_parser(
        name,
        parents=parents,
        help=summary,
        description=description or f"{summary[:1].upper()}{summary[1:]}.",
        epilog=examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handler, command=name)
    return parser


def positive_int(text: str) -> int:
    """An ``argparse`` type: a positive integer."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """An ``argparse`` type: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value
