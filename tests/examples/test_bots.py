"""The Discord and Telegram bots, driven without the network against the fake ComfyUI.

Discord's interaction is stubbed at the boundary (defer, edit the reply, send a message);
Telegram's Bot API is a small fake HTTP server on loopback that aiogram talks to. The library
side (admission, positions, previews, cancel) runs for real against the fake ComfyUI.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from comfy_async.testing import FakeComfyServer
from tests.examples.test_examples import load

#: A sampler slow enough for several previews, fast enough for a test.
SLOW = {"KSampler": 1.2}


@dataclass
class Interaction:
    """Records what a slash command did with its interaction (discord.py's surface)."""

    user_id: int
    edits: list[tuple[float, str, list[Any]]] = field(default_factory=list)
    deferred: int = 0
    sent: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.user = SimpleNamespace(id=self.user_id)
        self.response = SimpleNamespace(defer=self._defer, send_message=self._send)

    async def _defer(self, *, thinking: bool = False) -> None:
        self.deferred += 1

    async def _send(self, text: str, *, ephemeral: bool = False) -> None:
        self.sent.append(text)

    async def edit_original_response(self, *, content: str, attachments: list[Any]) -> None:
        self.edits.append((time.monotonic(), content, attachments))


async def test_discord_imagine_edits_one_reply_at_discords_pace_then_posts_the_image() -> None:
    bot = load("discord_bot")
    imagine_module = load("_imagine")
    async with FakeComfyServer(node_durations=SLOW) as server:
        imagine = imagine_module.Imagine(server.url, edits_per_second=4.0)
        try:
            ada, grace, ada_again = Interaction(1), Interaction(2), Interaction(1)
            await asyncio.gather(
                bot.imagine_command(imagine, ada, "a red fox"),
                bot.imagine_command(imagine, grace, "a blue whale"),
                bot.imagine_command(imagine, ada_again, "another fox"),
            )
        finally:
            await imagine.aclose()
    assert ada.deferred == grace.deferred == ada_again.deferred == 1
    # ada asked twice at once: one request is served, the other refused at once
    served, refused = sorted((ada, ada_again), key=lambda one: one.edits[-1][1].startswith("You"))
    assert refused.edits[-1][1].startswith("You already have a picture")
    previews = [edit for edit in served.edits if edit[2] and edit[1].endswith("%")]
    assert previews, "the reply showed previews"
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(previews)]
    assert all(gap >= 0.2 for gap in gaps)  # never faster than 4 edits a second
    final = served.edits[-1]
    assert final[1] in {"**a red fox**", "**another fox**"}
    assert [file.filename for file in final[2]] == ["image_0.png"]
    assert final[2][0].fp.read().startswith(b"\x89PNG")
    assert grace.edits[-1][1] == "**a blue whale**"
    assert sum(outcome == "success" for _, outcome in server.finished) == 2


async def test_discord_cancel_stops_the_users_picture() -> None:
    bot = load("discord_bot")
    imagine_module = load("_imagine")
    async with FakeComfyServer(node_durations={"KSampler": 5.0}) as server:
        imagine = imagine_module.Imagine(server.url, edits_per_second=4.0)
        try:
            ada, cancel, nobody = Interaction(1), Interaction(1), Interaction(9)
            running = asyncio.create_task(bot.imagine_command(imagine, ada, "a slow fox"))
            await asyncio.sleep(0.8)
            await bot.cancel_command(imagine, cancel)
            await bot.cancel_command(imagine, nobody)
            await asyncio.wait_for(running, 10)
        finally:
            await imagine.aclose()
    assert cancel.sent == ["Cancelled."]
    assert nobody.sent == ["You have no picture in the making."]
    assert ada.edits[-1][1].startswith("Sorry:")
    assert "success" not in {outcome for _, outcome in server.finished}


def test_discord_bot_registers_its_slash_commands_and_needs_a_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bot = load("discord_bot")
    imagine_module = load("_imagine")
    client = bot.ImagineBot(imagine_module.Imagine("http://127.0.0.1:9"))
    assert sorted(command.name for command in client.tree.get_commands()) == ["cancel", "imagine"]
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    assert asyncio.run(bot.main([])) == 2
    assert "DISCORD_TOKEN" in capsys.readouterr().err


class FakeTelegram:
    """The few Bot API methods the bot calls, on loopback; every call is recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str, dict[str, str]]] = []
        self._ids = 100

    def app(self):  # type: ignore[no-untyped-def]
        from aiohttp import web

        async def method(request: web.Request) -> web.Response:
            name = request.match_info["method"]
            form = await request.post()
            fields = {key: value for key, value in form.items() if isinstance(value, str)}
            self.calls.append((time.monotonic(), name, fields))
            if name == "getMe":
                result: Any = {"id": 7, "is_bot": True, "first_name": "imagine", "username": "imb"}
            else:
                self._ids += 1
                result = {
                    "message_id": self._ids,
                    "date": 0,
                    "chat": {"id": int(fields.get("chat_id", 1)), "type": "private"},
                    "text": fields.get("text", ""),
                }
            return web.json_response({"ok": True, "result": result})

        app = web.Application()
        app.router.add_post("/bot{token}/{method}", method)
        return app

    def named(self, name: str) -> list[dict[str, str]]:
        return [fields for _, method, fields in self.calls if method == name]


def update(number: int, user: int, text: str):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from aiogram.types import Chat, Message, Update, User

    message = Message(
        message_id=number,
        date=datetime.now(UTC),
        chat=Chat(id=user, type="private"),
        from_user=User(id=user, is_bot=False, first_name=f"user{user}"),
        text=text,
    )
    return Update(update_id=number, message=message)


async def test_telegram_imagine_edits_the_preview_at_telegrams_pace_then_sends_the_image() -> None:
    from aiogram import Bot
    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    from aiohttp import web

    bot_module = load("telegram_bot")
    imagine_module = load("_imagine")
    telegram = FakeTelegram()
    runner = web.AppRunner(telegram.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    session = AiohttpSession(api=TelegramAPIServer.from_base(f"http://127.0.0.1:{port}"))
    bot = Bot("123456:TEST-token", session=session)
    try:
        async with FakeComfyServer(node_durations=SLOW) as server:
            imagine = imagine_module.Imagine(server.url, edits_per_second=4.0)
            dispatcher = bot_module.build_dispatcher(imagine)
            try:
                await asyncio.gather(
                    dispatcher.feed_update(bot, update(1, 42, "/imagine a red fox")),
                    dispatcher.feed_update(bot, update(2, 42, "/imagine again")),
                    dispatcher.feed_update(bot, update(3, 43, "/imagine")),
                )
                slow = asyncio.create_task(
                    dispatcher.feed_update(bot, update(4, 44, "/imagine a slow one"))
                )
                await asyncio.sleep(0.5)
                await dispatcher.feed_update(bot, update(5, 44, "/cancel"))
                await asyncio.wait_for(slow, 10)
            finally:
                await imagine.aclose()
    finally:
        await bot.session.close()
        await runner.cleanup()
    to_42 = [call for call in telegram.calls if call[2].get("chat_id") == "42"]
    texts = [fields.get("text", "") for _, _, fields in to_42]
    assert "You already have a picture in the making: one at a time, please." in texts
    edits = [call for call in to_42 if call[1] == "editMessageMedia"]
    assert edits, "the preview message was edited"
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(edits)]
    assert all(gap >= 0.2 for gap in gaps)  # never faster than 4 edits a second
    photos = [fields for _, method, fields in to_42 if method == "sendPhoto"]
    finals = [fields["caption"] for fields in photos if not fields["caption"].endswith("%")]
    assert finals in (["a red fox"], ["again"])  # one of the two asks was served, once
    usage = [fields for fields in telegram.named("sendMessage") if fields["chat_id"] == "43"]
    assert usage[0]["text"].startswith("Usage: /imagine")
    to_44 = [fields.get("text", "") for fields in telegram.named("sendMessage")]
    assert "Cancelled." in to_44
    assert sum(outcome == "success" for _, outcome in server.finished) == 1
