"""The argument parser of ``comfy-async``: global options, and every subcommand's module.

Options that apply to every command (server selection, ``--json``, ``--verbose``, ``--quiet``,
``--no-color``, ``--progress``) are accepted before or after the subcommand name, git-style:
the subcommands get a copy whose defaults are suppressed, so a value given before the subcommand
is not reset by it. Each subcommand's module registers its own parser (``register``), with a
description and examples for ``--help``; the handler it sets is run by :func:`comfy_async.cli.main`.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Final

from comfy_async import __version__
from comfy_async.cli import (
    demo,
    files,
    info,
    jobs,
    manager_commands,
    pool_command,
    queue_commands,
    run,
    watch,
    workflows,
)
from comfy_async.cli.session import ENV_CLOUD_KEY, ENV_URL, ENV_URLS, add_server_options

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["COMMAND_MODULES", "add_output_options", "build_parser"]

COMMAND_MODULES: Final[tuple[ModuleType, ...]] = (
    run,
    watch,
    pool_command,
    queue_commands,
    jobs,
    info,
    files,
    workflows,
    manager_commands,
    demo,
)
"""The modules that register subcommands, in the order ``--help`` lists them."""

_DESCRIPTION = """\
A command line for ComfyUI and Comfy Cloud, on the comfy_async library: run workflows with live
progress and previews, watch a server's events, manage its queue, jobs, history, files and
models, and check or convert workflows offline.
"""

_EPILOG = f"""\
getting started:
  comfy-async demo                          # a sample workflow on a built-in fake server
  comfy-async run txt2img_api.json -o out/  # against http://127.0.0.1:8188
  comfy-async --url http://gpu-box:8188 queue
  comfy-async COMMAND --help                # options and examples of one command

server selection: --url, else ${ENV_URLS} or ${ENV_URL}, else http://127.0.0.1:8188 (several
--url make a pool for run and pool); --cloud uses Comfy Cloud
with the API key in ${ENV_CLOUD_KEY} (keys are read from the environment, never from the
command line). Global options can be given before or after the command.

exit codes: 0 ok, 1 a job or request failed, 2 usage (bad arguments or input file),
3 the workflow was refused by validation, 4 the server is unreachable or refused the
credentials, 130 interrupted (Ctrl-C; the command's jobs are cancelled on the server).
"""


def add_output_options(parser: argparse.ArgumentParser, *, default: object = None) -> None:
    """Add ``--json``, ``--verbose``, ``--quiet``, ``--no-color`` and ``--progress``.

    ``default`` replaces every default when not ``None`` (``argparse.SUPPRESS`` on subcommands).
    """
    off: object = False if default is None else default
    group = parser.add_argument_group("output")
    group.add_argument(
        "--json",
        action="store_true",
        default=off,
        help="print JSON for scripts (one document, or one line per item of a stream)",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0 if default is None else default,
        help="show the cause of errors (secrets redacted) and the library's log",
    )
    group.add_argument(
        "-q", "--quiet", action="store_true", default=off, help="no progress or notes"
    )
    group.add_argument(
        "--no-color",
        action="store_true",
        default=off,
        help="no colour (also when $NO_COLOR is set or the output is not a terminal)",
    )
    group.add_argument(
        "--progress",
        choices=("auto", "rich", "plain", "none"),
        default="auto" if default is None else default,
        help="live bars (rich, on a terminal), plain lines, or none (default: auto)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: global options, then one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="comfy-async",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"comfy-async {__version__}")
    add_output_options(parser)
    add_server_options(parser)
    common = argparse.ArgumentParser(add_help=False)
    add_output_options(common, default=argparse.SUPPRESS)
    add_server_options(common, default=argparse.SUPPRESS)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers, [common])
    parser.set_defaults(handler=None)
    return parser
