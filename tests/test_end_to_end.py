"""The whole bot through the real python-telegram-bot application and the sandbox Bot API."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from bot.config import CommunityFile
from bot.settings import Settings, load_settings
from handlers.runtime import Runtime
from sandbox.server import SandboxServer
from sandbox.world import User
from tests.conftest import free_port
from tests.helpers import GROUP_G01, RESIDENT, bot_messages_after, quiet_for, world_of


async def test_resident_gets_a_ticket_number_in_the_group(runtime: Runtime) -> None:
    world = world_of(runtime)
    since = world.version
    said = await world.user_says(RESIDENT, GROUP_G01, "3号楼电梯坏了")
    replies = await bot_messages_after(world, GROUP_G01, since)
    assert len(replies) == 1
    reply = replies[0]
    assert reply["reply_to"] == said.message_id
    assert reply["text"].startswith("已收到您的报修，工单号 #1")
    assert "物业王管家将在5分钟内联系您" in reply["text"]
    async with runtime.core.uows() as uow:
        ticket = await uow.tickets.by_message(GROUP_G01, said.message_id)
    assert ticket is not None
    assert (ticket.id, ticket.category.value, ticket.reporter_name) == (1, "repair", "张阿姨")


async def test_chatter_gets_no_reply(runtime: Runtime) -> None:
    world = world_of(runtime)
    since = world.version
    await world.user_says(RESIDENT, GROUP_G01, "谢谢王师傅！辛苦了")
    assert await quiet_for(world, GROUP_G01, since)


async def test_unknown_group_is_ignored(runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    world = world_of(runtime)
    world.add_group(-1009999999999, "陌生的群")
    since = world.version
    await world.user_says(RESIDENT, -1009999999999, "3号楼电梯坏了")
    await world.user_says(RESIDENT, -1009999999999, "5号楼漏水了")
    assert await quiet_for(world, -1009999999999, since)
    warnings = [r for r in caplog.records if "not in the community file" in r.getMessage()]
    assert len(warnings) == 1  # logged once per group, not once per message


async def test_messages_from_other_bots_are_ignored(runtime: Runtime) -> None:
    world = world_of(runtime)
    world.add_user(User(id=6000001, first_name="别的机器人", is_bot=True, kind="bot"))
    since = world.version
    await world.user_says(6000001, GROUP_G01, "3号楼电梯坏了")
    assert await quiet_for(world, GROUP_G01, since)


async def test_private_start_explains_the_bot(runtime: Runtime) -> None:
    world = world_of(runtime)
    since = world.version
    await world.user_says(RESIDENT, RESIDENT, "/start")
    replies = await bot_messages_after(world, RESIDENT, since)
    assert replies
    assert "网格助手" in replies[0]["text"]
    assert "5321" in replies[0]["text"]


async def test_tickets_survive_a_restart(settings: Settings) -> None:
    first = Runtime(settings)
    await first.start()
    world = world_of(first)
    await world.user_says(RESIDENT, GROUP_G01, "3号楼电梯坏了")
    assert await bot_messages_after(world, GROUP_G01, 0)
    await first.stop()

    second = Runtime(settings)
    await second.start()
    try:
        world = world_of(second)  # a fresh sandbox: message ids start again at 1
        since = world.version
        await world.user_says(RESIDENT, GROUP_G01, "2号楼楼道灯不亮了")
        replies = await bot_messages_after(world, GROUP_G01, since)
        assert replies
        assert "工单号 #2" in replies[0]["text"]
    finally:
        await second.stop()


async def test_same_flow_with_a_token_over_any_bot_api_server(
    demo_file: CommunityFile, tmp_path: Path
) -> None:
    """TELEGRAM_BOT_TOKEN + TELEGRAM_API_BASE_URL: the bot polls that server, no sandbox."""
    server = SandboxServer.for_directory(demo_file.directory, "123:ABC")
    app = web.Application()
    server.add_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    api_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", api_port).start()
    web_port = free_port()
    runtime = Runtime(
        load_settings(
            TELEGRAM_BOT_TOKEN="123:ABC",
            TELEGRAM_API_BASE_URL=f"http://127.0.0.1:{api_port}/bot",
            DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'token.db'}",
            WEB_PORT=web_port,
        )
    )
    await runtime.start()
    try:
        assert runtime.sandbox is None  # no embedded sandbox when a token is set
        world = server.world
        since = world.version
        await world.user_says(RESIDENT, GROUP_G01, "3号楼电梯坏了")
        replies = await bot_messages_after(world, GROUP_G01, since)
        assert replies
        assert replies[0]["text"].startswith("已收到您的报修，工单号 #1")
    finally:
        await runtime.stop()
        await runner.cleanup()
