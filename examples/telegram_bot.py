"""A Telegram bot (aiogram 3): ``/imagine a prompt`` makes a picture, ``/cancel`` stops yours.

The bot answers at once with your place in line (users take turns: one picture each at a time),
then shows the newest preview in one photo message it edits as often as Telegram allows, and
finally sends the image.

    TELEGRAM_TOKEN=... python examples/telegram_bot.py --url http://127.0.0.1:8188

Without ``--url`` the bot works against an embedded fake ComfyUI (no GPU needed).
"""

from __future__ import annotations

import asyncio
import os
import sys

from _imagine import Imagine
from _server import SD15_WORKFLOW, arguments, server_url
from aiogram import Bot, Dispatcher, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, InputMediaPhoto, Message

#: Telegram allows about one edit per second per chat: stay below.
EDITS_PER_SECOND = 0.8


def build_router(imagine: Imagine) -> Router:
    """The bot's two commands, served by ``imagine``."""
    router = Router(name="imagine")

    @router.message(Command("imagine"))
    async def on_imagine(message: Message, command: CommandObject) -> None:
        prompt = (command.args or "").strip()
        if not prompt or message.from_user is None:
            await message.answer("Usage: /imagine a red fox in the snow")
            return
        status = await message.answer("Queued.")
        photo: Message | None = None

        async def show(text: str, image: bytes | None) -> None:
            nonlocal photo
            if image is None:
                await status.edit_text(text)
                return
            picture = BufferedInputFile(image, filename="preview.jpg")
            if photo is None:
                photo = await message.answer_photo(picture, caption=text)
            else:
                await photo.edit_media(InputMediaPhoto(media=picture, caption=text))

        outcome = await imagine.run(str(message.from_user.id), prompt, show)
        if outcome.error == "busy":
            return  # already told
        if outcome.error is not None:
            await status.edit_text(f"Sorry: {outcome.error}")
            return
        for image in outcome.images:
            await message.answer_photo(BufferedInputFile(image, "image.png"), caption=prompt)
        await status.edit_text("Done.")

    @router.message(Command("cancel"))
    async def on_cancel(message: Message) -> None:
        user = str(message.from_user.id) if message.from_user is not None else ""
        cancelled = await imagine.cancel(user)
        await message.answer("Cancelled." if cancelled else "You have no picture in the making.")

    return router


def build_dispatcher(imagine: Imagine) -> Dispatcher:
    """A dispatcher with the bot's commands."""
    dispatcher = Dispatcher()
    dispatcher.include_router(build_router(imagine))
    return dispatcher


async def main(argv: list[str] | None = None) -> int:
    args = arguments(__doc__ or "", workflow=SD15_WORKFLOW).parse_args(argv)
    token = os.environ.get("TELEGRAM_TOKEN")
    if not token:
        print("set TELEGRAM_TOKEN to the bot's token (from @BotFather)", file=sys.stderr)
        return 2
    async with server_url(args.url) as url:
        imagine = Imagine(url, edits_per_second=EDITS_PER_SECOND, workflow=args.workflow)
        bot = Bot(token)
        try:
            # each update in its own task: one slow picture never holds the others up
            await build_dispatcher(imagine).start_polling(bot, handle_as_tasks=True)
        finally:
            await bot.session.close()
            await imagine.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
