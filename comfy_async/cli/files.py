"""``upload`` and ``download``: files sent to the server's input folder, a prompt's outputs saved.

``upload PATH`` stores a file where loaders read it and prints the name to give them (the server
renames a different file sent under a taken name). ``download ID`` saves the output files of a
finished prompt, found in its history entry, under safe names (``-o DIR``, default ``.``); the
library streams each file to a temporary name and renames it into place.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from comfy_async.cli.failures import ExitCode
from comfy_async.cli.ids import resolve_prompt_ids
from comfy_async.cli.registry import add_command
from comfy_async.cli.saving import kept_message, split_existing
from comfy_async.models.files import output_files

if TYPE_CHECKING:
    import argparse

    from comfy_async.cli.registry import SubParsers
    from comfy_async.cli.session import Context

__all__ = ["download_command", "register", "upload_command"]

_UPLOAD_EXAMPLES = """\
examples:
  comfy-async upload cat.png                   # prints the name a LoadImage input takes
  comfy-async upload mask.png --subfolder masks --overwrite
  comfy-async run img2img.json --upload "Load Image.image=cat.png"   # upload and use, in one
"""

_DOWNLOAD_EXAMPLES = """\
examples:
  comfy-async download 5f0c… -o out/           # the prompt's output files
  comfy-async download 5f0c… --temp            # previews too (temp folder)
"""


async def upload_command(ctx: Context) -> ExitCode:
    """``comfy-async upload PATH``: upload a file; print the name loaders take."""
    args, out = ctx.args, ctx.out
    result = await ctx.client().files.upload_image(
        args.path, type=args.type, subfolder=args.subfolder, overwrite=args.overwrite
    )
    if out.json:
        out.json_line(result)
    else:
        out.line(result.path)
    return ExitCode.OK


async def download_command(ctx: Context) -> ExitCode:
    """``comfy-async download ID``: save the output files of a finished prompt."""
    args, out = ctx.args, ctx.out
    client = ctx.client()
    (args.prompt_id,) = await resolve_prompt_ids(client, [args.prompt_id])
    record = await client.history.get(args.prompt_id)
    if record is None:
        out.stderr.write(f"error: no finished prompt {args.prompt_id} (see: comfy-async history)\n")
        return ExitCode.FAILED
    types = ("output", "temp") if args.temp else ("output",)
    folder = Path(args.output)
    wanted = [file for file in output_files(record.outputs) if file.type in types]
    fresh, kept = await split_existing(wanted, folder, overwrite=args.overwrite)
    paths = await client.files.save(fresh, folder, types=types, overwrite=args.overwrite)
    if out.json:
        out.json_line(
            {"prompt_id": args.prompt_id, "files": paths, "kept": [str(path) for path in kept]}
        )
        return ExitCode.OK
    for path in kept:
        out.stderr.write(kept_message(path) + "\n")
    if not paths and not kept:
        out.note("the prompt produced no files to save")
    for path in paths:
        out.line(str(path))
    return ExitCode.OK


def register(subparsers: SubParsers, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``upload`` and ``download`` to the command line."""
    upload = add_command(
        subparsers,
        "upload",
        parents,
        summary="upload an image (or any input file) to the server",
        handler=upload_command,
        description="Upload a file to the server's input folder and print its stored name.",
        examples=_UPLOAD_EXAMPLES,
    )
    upload.add_argument("path", metavar="PATH")
    upload.add_argument(
        "--type", choices=("input", "temp", "output"), default="input", help="folder (input)"
    )
    upload.add_argument("--subfolder", default="", help="a subfolder of it")
    upload.add_argument("--overwrite", action="store_true", help="replace a file of that name")

    download = add_command(
        subparsers,
        "download",
        parents,
        summary="save the output files of a finished prompt",
        handler=download_command,
        description="Save the output files of a finished prompt under safe names.",
        examples=_DOWNLOAD_EXAMPLES,
    )
    download.add_argument("prompt_id", metavar="ID")
    download.add_argument("-o", "--output", default=".", metavar="DIR", help="where (default .)")
    download.add_argument("--temp", action="store_true", help="also the temporary previews")
    download.add_argument("--overwrite", action="store_true", help="replace existing files")
