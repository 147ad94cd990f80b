"""``comfy-async``: the command line of comfy_async (also ``python -m comfy_async``).

Git-style subcommands (``run``, ``batch``, ``watch``, ``pool``, ``queue``, ``jobs``, ``history``,
``interrupt``, ``free``, ``stats``, ``nodes``, ``models``, ``upload``, ``download``,
``validate``, ``convert``, ``manager``, ``demo``), each a small module of this package that
registers its parser and its handler. :func:`main` parses the arguments, runs the handler in an
event loop with its sessions, maps any failure to an exit code and one line on stderr
(:mod:`comfy_async.cli.failures`), and returns the code; it can be called in-process with an
``argv`` list.

Nothing outside this package imports it: ``import comfy_async`` stays cheap, and rich (the
``cli`` extra) is imported only when live bars are drawn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

from comfy_async.cli.failures import ExitCode, FleetUnreachable, UsageError, report
from comfy_async.cli.output import Output
from comfy_async.cli.session import Context
from comfy_async.errors import ComfyError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator, Mapping, Sequence

__all__ = ["ExitCode", "main"]


@contextlib.contextmanager
def _library_log(out: Output) -> Iterator[None]:
    """Show the library's warnings (and with ``-v``, its log) on stderr, for this call only."""
    logger = logging.getLogger("comfy_async")
    handler = logging.StreamHandler(out.stderr)
    handler.setFormatter(logging.Formatter("comfy-async: %(levelname)s: %(message)s"))
    handler.setLevel({0: logging.WARNING, 1: logging.INFO}.get(out.verbose, logging.DEBUG))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(min(handler.level, level or logging.WARNING))
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@contextlib.contextmanager
def _terminate_cancels() -> Iterator[None]:
    """SIGTERM cancels the command as Ctrl-C does (its jobs are cancelled on the server)."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None
    try:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises nothing more."""
    with contextlib.suppress(AttributeError, OSError, ValueError):  # not a real file (tests)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


async def _invoke(args: argparse.Namespace, out: Output, environ: Mapping[str, str]) -> int:
    ctx = Context(args, out, environ)
    try:
        with _terminate_cancels():
            return int(await args.handler(ctx))
    except BrokenPipeError:  # `comfy-async nodes | head`: the reader has all it wanted
        _silence_stdout()
        return ExitCode.BROKEN_PIPE
    except (ComfyError, UsageError, FleetUnreachable, OSError) as error:
        return report(error, out.stderr, verbose=out.verbose > 0, secrets=out.secrets)
    except Exception as error:  # noqa: BLE001 - a bug: one line (the traceback with -v)
        out.stderr.write("error: internal error of comfy-async, please report it\n")
        return report(error, out.stderr, verbose=out.verbose > 0, secrets=out.secrets)
    finally:
        await ctx.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``comfy-async`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    Usable in-process: it writes to ``sys.stdout``/``sys.stderr`` and reads ``os.environ``, runs
    its own event loop (call it from a thread when a loop is running), and never calls
    ``sys.exit``. See :class:`~comfy_async.cli.failures.ExitCode` for the codes.
    """
    from comfy_async.cli.parser import build_parser  # noqa: PLC0415 - imports every command

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error already printed
        return exit_.code if isinstance(exit_.code, int) else ExitCode.USAGE
    if args.handler is None:
        parser.print_help()
        return ExitCode.USAGE
    out = Output.for_terminal(
        json=args.json,
        no_color=args.no_color,
        quiet=args.quiet,
        progress=args.progress,
        verbose=args.verbose,
    )
    with _library_log(out):
        try:
            return asyncio.run(_invoke(args, out, os.environ))
        except KeyboardInterrupt:
            out.stderr.write("interrupted\n")
            return ExitCode.INTERRUPTED
        except asyncio.CancelledError:  # SIGTERM
            out.stderr.write("terminated\n")
            return ExitCode.TERMINATED
