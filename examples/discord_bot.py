"""A Discord bot (discord.py): ``/imagine`` makes a picture, ``/cancel`` stops yours.

The command defers (Discord wants an answer within 3 seconds), then edits its one reply: your
place in line while you wait (users take turns: one picture each at a time), the newest preview
as often as Discord allows edits, and finally the image.

    DISCORD_TOKEN=... python examples/discord_bot.py --url http://127.0.0.1:8188

Without ``--url`` the bot works against an embedded fake ComfyUI (no GPU needed).
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
from typing import Any

import discord
from _imagine import Imagine
from _server import SD15_WORKFLOW, arguments, server_url
from discord import app_commands

#: Discord allows about 5 edits of a message per 5 seconds: stay below.
EDITS_PER_SECOND = 0.8


def as_file(image: bytes, stem: str) -> discord.File:
    """Image bytes as an attachment (PNG or JPEG, told by their first bytes)."""
    suffix = "png" if image.startswith(b"\x89PNG") else "jpg"
    return discord.File(io.BytesIO(image), filename=f"{stem}.{suffix}")


async def imagine_command(imagine: Imagine, interaction: Any, prompt: str) -> None:
    """``/imagine prompt``: defer, then edit one reply until the picture is there."""
    await interaction.response.defer(thinking=True)

    async def show(text: str, image: bytes | None) -> None:
        attachments = [as_file(image, "preview")] if image is not None else []
        await interaction.edit_original_response(content=text, attachments=attachments)

    outcome = await imagine.run(str(interaction.user.id), prompt, show)
    if outcome.error == "busy":
        return  # already told
    if outcome.error is not None:
        await interaction.edit_original_response(content=f"Sorry: {outcome.error}", attachments=[])
        return
    files = [as_file(image, f"image_{n}") for n, image in enumerate(outcome.images)]
    await interaction.edit_original_response(content=f"**{prompt}**", attachments=files)


async def cancel_command(imagine: Imagine, interaction: Any) -> None:
    """``/cancel``: stop the user's picture, held or running."""
    cancelled = await imagine.cancel(str(interaction.user.id))
    text = "Cancelled." if cancelled else "You have no picture in the making."
    await interaction.response.send_message(text, ephemeral=True)


class ImagineBot(discord.Client):
    """The bot: two slash commands, synced when it connects."""

    def __init__(self, imagine: Imagine) -> None:
        super().__init__(intents=discord.Intents.default())
        self.imagine = imagine
        self.tree = app_commands.CommandTree(self)

        @self.tree.command(name="imagine", description="Make a picture from a prompt")
        @app_commands.describe(prompt="what to draw")
        async def imagine(interaction: discord.Interaction, prompt: str) -> None:
            await imagine_command(self.imagine, interaction, prompt)

        @self.tree.command(name="cancel", description="Stop your picture")
        async def cancel(interaction: discord.Interaction) -> None:
            await cancel_command(self.imagine, interaction)

    async def setup_hook(self) -> None:
        await self.tree.sync()


async def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__ or "", workflow=SD15_WORKFLOW).parse_args(argv)
    token = os.environ.get("DISCORD_TOKEN")
    if not token:
        print("set DISCORD_TOKEN to the bot's token (Discord developer portal)", file=sys.stderr)
        return 2
    async with server_url(args.url) as url:
        imagine = Imagine(url, edits_per_second=EDITS_PER_SECOND, workflow=args.workflow)
        bot = ImagineBot(imagine)
        try:
            await bot.start(token)
        finally:
            await bot.close()
            await imagine.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
