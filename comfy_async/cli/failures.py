"""Exit codes of the command line, and how a failure is told: one line on stderr, or a chain.

Every command returns an :class:`ExitCode`. A failure raised out of a command is mapped here to
its code and printed as one clear line (``error: …``); a refused workflow lists each problem on a
line of its own (node, input, reason). With ``--verbose`` the cause chain follows, each link
with the session's secrets redacted. Nothing here does I/O beyond writing to the given stream.
"""

from __future__ import annotations

import enum
import re
import traceback
from typing import TYPE_CHECKING

from comfy_async.errors import (
    AuthenticationError,
    ClientClosedError,
    ComfyError,
    ConfigurationError,
    ConnectError,
    PromptValidationError,
    TransportError,
    WorkflowError,
    redact_text,
    redact_url,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import TextIO

    from comfy_async.workflow import Problem

__all__ = [
    "ExitCode",
    "FleetUnreachable",
    "UsageError",
    "describe",
    "exit_code_for",
    "problem_lines",
    "report",
]

# URLs inside the text of foreign exceptions (aiohttp's), whose query may hold a token.
_URL = re.compile(r"\b(?:https?|wss?)://[^\s'\"<>)\]]+")


class ExitCode(enum.IntEnum):
    """What the exit status of ``comfy-async`` means."""

    OK = 0
    """Everything asked for was done."""
    FAILED = 1
    """A job failed (execution error, interrupted, lost, timed out) or a request failed."""
    USAGE = 2
    """Bad arguments, or an input file that cannot be used (missing, not JSON, not a workflow)."""
    REFUSED = 3
    """The workflow failed validation (offline, or the server refused it); nothing ran."""
    UNREACHABLE = 4
    """The server could not be reached, or refused the credentials."""
    INTERRUPTED = 130
    """Interrupted by Ctrl-C (jobs started by the command were cancelled on the server)."""
    BROKEN_PIPE = 141
    """The reader of stdout went away (``comfy-async nodes | head``): stopped quietly."""
    TERMINATED = 143
    """Stopped by SIGTERM, which is handled as Ctrl-C is."""


class UsageError(Exception):
    """A command line that cannot be carried out as written (exit code 2)."""


class FleetUnreachable(Exception):
    """No server of the fleet the command line names answers (exit code 4)."""


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit code a failure maps to (see :class:`ExitCode`)."""
    if isinstance(error, PromptValidationError):
        return ExitCode.REFUSED
    if isinstance(
        error, TransportError | AuthenticationError | ClientClosedError | FleetUnreachable
    ):
        return ExitCode.UNREACHABLE
    if isinstance(error, UsageError | WorkflowError | ConfigurationError):
        return ExitCode.USAGE
    if isinstance(error, ComfyError):  # before OSError: JobTimeout is a TimeoutError
        return ExitCode.FAILED
    if isinstance(error, OSError):  # a file named on the command line
        return ExitCode.USAGE
    return ExitCode.FAILED


def _reason(message: str, details: str, input_name: str | None) -> str:
    # The server's details are often the input's name alone (required_input_missing,
    # value_bigger_than_max): the message then says more.
    if not details or details == input_name:
        return message or details
    return f"{message}: {details}" if message else details


def _where(node_id: str | None, class_type: str | None, input_name: str | None) -> str:
    where = "the prompt" if node_id is None else f"node {node_id} ({class_type})"
    return f"{where} input {input_name!r}" if input_name else where


def problem_lines(problems: Iterable[Problem]) -> list[str]:
    """One indented line per validation problem: where (node, class, input), type and reason."""
    return [
        f"  {_where(p.node_id, p.class_type, p.input_name)}: {p.type}: "
        f"{_reason(p.message, p.details, p.input_name)}"
        for p in problems
    ]


def _validation_lines(error: PromptValidationError) -> list[str]:
    head = error.error.message or error.error.type
    if error.error.details:
        head = f"{head}: {error.error.details}"
    lines = [f"the workflow was refused: {head}"]
    for node_id, node_error in error.node_errors.items():
        for item in node_error.errors:
            where = _where(node_id, node_error.class_type, item.input_name)
            lines.append(
                f"  {where}: {item.type}: {_reason(item.message, item.details, item.input_name)}"
            )
    return lines


def _headline(error: BaseException) -> str:
    if isinstance(error, ConnectError) and error.url:
        return f"{error} (is the server running? choose it with --url or COMFY_URL)"
    if isinstance(error, OSError) and not isinstance(error, ComfyError) and error.filename:
        reason = error.strerror or type(error).__name__
        return f"{reason}: {error.filename}"
    text = " ".join(str(error).split())
    return text or type(error).__name__


def describe(
    error: BaseException, *, verbose: bool = False, secrets: Sequence[str] = ()
) -> list[str]:
    """The lines that tell ``error``: ``error: …`` (then problems, and causes if ``verbose``)."""
    if isinstance(error, PromptValidationError):
        lines = _validation_lines(error)
    else:
        lines = [_headline(error)]
    lines[0] = f"error: {lines[0]}"
    if verbose:
        lines.extend(_chain(error))
    return [redact_text(line, tuple(secrets)) for line in lines]


def report(
    error: BaseException,
    stream: TextIO,
    *,
    verbose: bool = False,
    secrets: Sequence[str] = (),
) -> ExitCode:
    """Print ``error`` on ``stream`` (see :func:`describe`); return its exit code."""
    for line in describe(error, verbose=verbose, secrets=secrets):
        print(line, file=stream, flush=True)
    return exit_code_for(error)


def _chain(error: BaseException) -> list[str]:
    """The causes of ``error``, outermost first; a traceback for errors that are not ours."""
    lines: list[str] = []
    if not isinstance(error, ComfyError | UsageError | FleetUnreachable | OSError):
        lines.extend(line.rstrip("\n") for line in traceback.format_exception(error))
        return lines
    seen = {id(error)}
    cause = error.__cause__ or error.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        text = _URL.sub(lambda match: redact_url(match.group()), str(cause))
        lines.append(f"  caused by {type(cause).__module__}.{type(cause).__qualname__}: {text}")
        cause = cause.__cause__ or cause.__context__
    return lines
