"""Where the command line writes, and how: results on stdout, messages and progress on stderr.

:class:`Output` holds both streams and the choices made once per invocation: ``--json`` (one JSON
document per command, or one JSON line per item of a stream), colour (only on a terminal, never
with ``NO_COLOR``, ``--no-color`` or ``TERM=dumb``), quiet mode and the kind of progress display
(``rich`` live bars when the ``cli`` extra is installed and stderr is a terminal, plain lines
otherwise). It formats simple tables and turns library values (msgspec Structs, paths, memory
views) into JSON. It never reads the network or the disk.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO, TypeAlias

import msgspec

from comfy_async._graph.json_values import dumps

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["Output", "ProgressMode", "choose_progress", "to_json_value", "wants_color"]

ProgressMode: TypeAlias = Literal["rich", "plain", "none"]
"""How live progress is shown: rich live bars, plain lines, or not at all."""

_STYLES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def wants_color(stream: TextIO, environ: Mapping[str, str], *, disabled: bool = False) -> bool:
    """Whether to colour what goes to ``stream``: a terminal, no ``NO_COLOR``, not ``TERM=dumb``."""
    if disabled or environ.get("NO_COLOR", "") != "" or environ.get("TERM") == "dumb":
        return False
    return _is_terminal(stream)


def choose_progress(
    requested: str, stream: TextIO, environ: Mapping[str, str], *, quiet: bool = False
) -> ProgressMode:
    """The progress display for ``--progress requested`` (``auto``, ``rich``, ``plain``, ``none``).

    ``auto`` picks rich live bars when rich is installed and ``stream`` is a terminal (not
    ``TERM=dumb``), plain lines otherwise; ``--quiet`` shows none. ``rich`` without rich
    installed falls back to plain lines.
    """
    if quiet or requested == "none":
        return "none"
    rich_available = importlib.util.find_spec("rich") is not None
    if requested == "rich":
        return "rich" if rich_available else "plain"
    if requested == "plain":
        return "plain"
    if rich_available and _is_terminal(stream) and environ.get("TERM") != "dumb":
        return "rich"
    return "plain"


def _encode_extra(value: object) -> object:
    if isinstance(value, msgspec.Raw):
        return msgspec.json.decode(value) if len(value) else None
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def to_json_value(value: object) -> object:
    """``value`` as plain JSON data: Structs as objects, paths as text, raw JSON decoded."""
    return msgspec.to_builtins(value, enc_hook=_encode_extra)


@dataclass
class Output:
    """The two output streams of one invocation and how to write to them."""

    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    json: bool = False
    """Write JSON documents to stdout instead of text."""
    color: bool = False
    """Colour the text written to stdout."""
    color_stderr: bool = False
    """Colour the messages written to stderr."""
    quiet: bool = False
    """Leave out notes and progress (results and errors are still written)."""
    progress: ProgressMode = "plain"
    verbose: int = 0
    secrets: list[str] = field(default_factory=list)
    """Values never to print (API keys, tokens): errors are redacted with them."""

    @classmethod
    def for_terminal(
        cls,
        *,
        json: bool = False,
        no_color: bool = False,
        quiet: bool = False,
        progress: str = "auto",
        verbose: int = 0,
        environ: Mapping[str, str] | None = None,
    ) -> Output:
        """An output on ``sys.stdout``/``sys.stderr`` with the choices their terminals allow."""
        env = os.environ if environ is None else environ
        stdout, stderr = sys.stdout, sys.stderr
        return cls(
            stdout=stdout,
            stderr=stderr,
            json=json,
            color=wants_color(stdout, env, disabled=no_color),
            color_stderr=wants_color(stderr, env, disabled=no_color),
            quiet=quiet,
            progress=choose_progress(progress, stderr, env, quiet=quiet),
            verbose=verbose,
        )

    # ------------------------------------------------------------------ text

    def style(self, text: str, *styles: str, stderr: bool = False) -> str:
        """``text`` in ANSI ``styles`` (``bold``, ``red``, ``green``…) when colour is on."""
        if not (self.color_stderr if stderr else self.color) or not styles:
            return text
        codes = ";".join(_STYLES[name] for name in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def line(self, text: str = "") -> None:
        """Write one line of results to stdout."""
        print(text, file=self.stdout, flush=True)

    def note(self, text: str) -> None:
        """Write an informative line to stderr (not with ``--quiet``)."""
        if not self.quiet:
            print(text, file=self.stderr, flush=True)

    def warn(self, text: str) -> None:
        """Write a warning line to stderr (even with ``--quiet``)."""
        label = self.style("warning:", "yellow", stderr=True)
        print(f"{label} {text}", file=self.stderr, flush=True)

    def table(self, rows: Sequence[Sequence[str]], headers: Sequence[str] | None = None) -> None:
        """Write rows as aligned columns to stdout (the last column is not padded)."""
        table = [list(headers)] if headers else []
        table += [list(row) for row in rows]
        if not table:
            return
        widths = [max(len(row[i]) for row in table if i < len(row)) for i in range(len(table[0]))]
        for number, row in enumerate(table):
            cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + row[-1:]
            text = "  ".join(cells).rstrip()
            self.line(self.style(text, "bold") if headers and number == 0 else text)

    # ------------------------------------------------------------------ JSON

    def json_line(self, value: object) -> None:
        """Write ``value`` as one line of JSON to stdout (a document, or one item of a stream)."""
        self.stdout.write(dumps(to_json_value(value)).decode() + "\n")
        self.stdout.flush()
