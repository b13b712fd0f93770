"""The web admin through HTTP: refusals without login or with a bad CSRF token, login, the
keyword pages (try it, what-if, save, toggle, delete, import, export), audit and rollback,
answers, dashboard and exports; and the set-password command."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from openpyxl import load_workbook

from bot.services.tickets import staff_actor
from handlers.runtime import Runtime
from tests.helpers import GROUP_G01, RESIDENT, bot_messages_after, world_of

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found, "no CSRF field on the page"
    return found.group(1)


@pytest.fixture
async def admin_url(runtime: Runtime) -> str:
    await runtime.core.auth.set_password("admin", PASSWORD)
    assert runtime.web_url is not None
    return runtime.web_url + "admin"


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def log_in(client: aiohttp.ClientSession, admin_url: str) -> str:
    """Log in as the demo admin; returns the session's CSRF token."""
    async with client.get(admin_url + "/login") as response:
        token = csrf_of(await response.text())
    form = {"csrf": token, "staff_id": "admin", "password": PASSWORD}
    async with client.post(admin_url + "/login", data=form) as response:
        assert response.status == 200
        assert str(response.url).endswith("/admin/")
        return csrf_of(await response.text())


async def test_everything_is_refused_without_login(
    admin_url: str, client: aiohttp.ClientSession, runtime: Runtime
) -> None:
    for path in ("/", "/keywords", "/audit", "/export/tickets.xlsx", "/keywords.yaml"):
        async with client.get(admin_url + path, allow_redirects=False) as response:
            assert response.status == 302, path
            assert response.headers["Location"] == "/admin/login"
    form = {"csrf": "x", "scope": "*", "category": "repair", "word": "撂挑子", "action": "save"}
    async with client.post(admin_url + "/keywords/save", data=form) as response:
        assert response.status == 403
    assert await runtime.core.keywords.history() == []


async def test_login_needs_the_form_token_and_the_right_password(
    admin_url: str, client: aiohttp.ClientSession
) -> None:
    async with client.get(admin_url + "/login") as response:
        token = csrf_of(await response.text())
        assert response.headers["X-Frame-Options"] == "DENY"
    forged = {"csrf": "forged", "staff_id": "admin", "password": PASSWORD}
    async with client.post(admin_url + "/login", data=forged) as response:
        assert response.status == 403
    wrong = {"csrf": token, "staff_id": "admin", "password": "wrong password!"}
    async with client.post(admin_url + "/login", data=wrong) as response:
        assert "账号或密码不正确" in await response.text()
    # A staff member who is not an admin cannot log in even with some password.
    async with client.get(admin_url + "/login") as response:
        token = csrf_of(await response.text())
    not_admin = {"csrf": token, "staff_id": "li", "password": PASSWORD}
    async with client.post(admin_url + "/login", data=not_admin) as response:
        assert "账号或密码不正确" in await response.text()
    async with client.get(admin_url + "/login") as response:
        token = csrf_of(await response.text())
    right = {"csrf": token, "staff_id": "admin", "password": PASSWORD}
    async with client.post(admin_url + "/login", data=right, allow_redirects=False) as response:
        assert response.status == 302
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert "Path=/admin" in cookie
    async with client.get(admin_url + "/") as response:
        page = await response.text()
        assert "数据看板" in page
        assert "<svg" in page


async def test_keyword_pages_with_csrf_what_if_and_audit(
    admin_url: str, client: aiohttp.ClientSession, runtime: Runtime
) -> None:
    world = world_of(runtime)
    since = world.version
    await world.user_says(RESIDENT, GROUP_G01, "老机器又撂挑子了")
    await world.user_says(RESIDENT, GROUP_G01, "3号楼电梯坏了")
    await bot_messages_after(world, GROUP_G01, since)  # both are in the message log by now
    csrf = await log_in(client, admin_url)
    base = {"scope": "xingfu", "category": "repair", "word": "撂挑子", "weight": "4"}
    async with client.get(admin_url + "/keywords?scope=xingfu") as response:
        # the add form offers the admins' default weight, 4: a word that decides alone
        assert 'id="kw_weight" size="5" value="4"' in await response.text()

    async with client.post(
        admin_url + "/keywords/save", data={**base, "csrf": "bad", "action": "save"}
    ) as response:
        assert response.status == 403
    assert await runtime.core.keywords.history() == []

    async with client.post(
        admin_url + "/try", data={"csrf": csrf, "scope": "xingfu", "text": "老机器又撂挑子了"}
    ) as response:
        assert "类别：非诉求" in await response.text()
    async with client.post(
        admin_url + "/keywords/save", data={**base, "csrf": csrf, "action": "preview"}
    ) as response:
        page = await response.text()
        assert '<div id="whatif">' in page
        assert "<b>1</b> 条将新成为工单" in page
        assert "老机器又撂挑子了" in page
    assert await runtime.core.keywords.history() == []  # a preview saves nothing
    async with client.post(
        admin_url + "/keywords/save", data={**base, "csrf": csrf, "action": "save"}
    ) as response:
        assert "已保存：撂挑子" in await response.text()
    async with client.post(
        admin_url + "/try", data={"csrf": csrf, "scope": "xingfu", "text": "老机器又撂挑子了"}
    ) as response:
        assert "类别：报修" in await response.text()
    bad = {**base, "word": "re:(", "csrf": csrf, "action": "save"}
    async with client.post(admin_url + "/keywords/save", data=bad) as response:
        assert "这个词不能使用" in await response.text()

    toggle = {"csrf": csrf, "scope": "xingfu", "category": "repair", "word": "撂挑子"}
    async with client.post(admin_url + "/keywords/toggle", data=toggle) as response:
        assert "已停用：撂挑子" in await response.text()
    async with client.get(admin_url + "/audit") as response:
        page = await response.text()
        assert page.count("撤销此修改") == 2
    changes = await runtime.core.keywords.history()
    async with client.post(
        admin_url + f"/audit/{changes[0].id}/rollback", data={"csrf": csrf}
    ) as response:
        assert f"已撤销 #{changes[0].id}" in await response.text()
    entries = await runtime.core.keywords.entries("xingfu")
    assert [(e.word, e.enabled) for e in entries] == [("撂挑子", True)]
    async with client.get(admin_url + "/audit.csv") as response:
        body = (await response.read()).decode("utf-8-sig")
        assert body.splitlines()[0] == "编号,时间,操作人,范围,类别,词,修改前,修改后,备注"
        assert len(body.splitlines()) == 4

    async with client.get(admin_url + "/keywords.yaml?scope=xingfu") as response:
        exported = await response.text()
        assert "撂挑子: 4.0" in exported
    upload = aiohttp.FormData()
    upload.add_field("csrf", csrf)
    upload.add_field("scope", "heping")
    upload.add_field(
        "file", exported.encode(), filename="k.yaml", content_type="application/x-yaml"
    )
    async with client.post(admin_url + "/keywords/import", data=upload) as response:
        assert "已导入：新增 1，修改 0，未变 0" in await response.text()
    delete = {"csrf": csrf, "scope": "heping", "category": "repair", "word": "撂挑子"}
    async with client.post(admin_url + "/keywords/delete", data=delete) as response:
        assert "已删除：撂挑子" in await response.text()
    async with client.get(admin_url + "/review") as response:
        assert response.status == 200


async def test_review_queue_shows_what_staff_relabelled(
    admin_url: str, client: aiohttp.ClientSession, runtime: Runtime
) -> None:
    world = world_of(runtime)
    since = world.version
    await world.user_says(RESIDENT, GROUP_G01, "3号楼电梯坏了")
    await bot_messages_after(world, GROUP_G01, since)
    await log_in(client, admin_url)
    async with client.get(admin_url + "/review") as response:
        assert "3号楼电梯坏了" not in await response.text()  # the classifier was sure

    wang = runtime.core.directory.current.member("wang")
    assert wang is not None
    await runtime.core.tickets.relabel(1, staff_actor(wang), "none")
    async with client.get(admin_url + "/review") as response:
        page = await response.text()
    row = page[page.index("3号楼电梯坏了") :].split("</tr>")[0]
    assert "工作人员改为非诉求" in row
    assert "#1" in row
    assert '<option value="chatter" selected>' in row  # the one-step rule starts as a cue


async def test_answers_dashboard_and_exports(
    admin_url: str, client: aiohttp.ClientSession, runtime: Runtime
) -> None:
    csrf = await log_in(client, admin_url)
    form = {
        "csrf": csrf,
        "scope": "heping",
        "topic": "户口 迁入",
        "text": "户口迁入：带身份证到派出所。",
    }
    async with client.post(admin_url + "/answers/add", data=form) as response:
        assert "已添加" in await response.text()
    assert await runtime.core.answers.match("heping", "户口怎么迁入") is not None
    answers = (await runtime.core.answers.all())["heping"]
    form = {"csrf": csrf, "topic": "", "text": "x"}
    async with client.post(admin_url + f"/answers/{answers[0].id}/edit", data=form) as response:
        assert "主题词需为" in await response.text()
    async with client.post(
        admin_url + f"/answers/{answers[0].id}/delete", data={"csrf": csrf}
    ) as response:
        assert "已删除" in await response.text()
    assert await runtime.core.answers.match("heping", "户口怎么迁入") is None

    world = world_of(runtime)
    since = world.version
    await world.user_says(RESIDENT, GROUP_G01, "3号楼电梯坏了")
    await bot_messages_after(world, GROUP_G01, since)
    async with client.get(admin_url + "/?days=7&community=xingfu") as response:
        page = await response.text()
        assert '<b id="received">1</b>' in page
        assert "#1" in page
    async with client.get(admin_url + "/export/tickets.xlsx?days=7") as response:
        book = load_workbook(io.BytesIO(await response.read()))
        rows = list(book["工单"].values)
        assert rows[0][:4] == ("工单号", "社区", "网格", "类别")
        assert rows[1][:4] == (1, "幸福社区", "第一网格", "报修")
    async with client.get(admin_url + "/export/figures.csv?days=7") as response:
        lines = (await response.read()).decode("utf-8-sig").splitlines()
        assert lines[0].startswith("范围,收到,办结,办结率")
        assert lines[1].startswith("合计,1,0,0.0%")


def test_set_password_command(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"}

    def run(*args: str, password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", *args],
            input=password + "\n",
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )

    refused = run("set-password", "li", password=PASSWORD)
    assert refused.returncode == 2
    assert "not staff with role admin" in refused.stderr
    short = run("set-password", "admin", password="short")
    assert short.returncode == 2
    assert "at least 10 characters" in short.stderr
    done = run("set-password", "admin", password=PASSWORD)
    assert done.returncode == 0, done.stderr
    assert "password set for admin" in done.stdout
    assert PASSWORD not in (tmp_path / "bot.db").read_bytes().decode("latin-1")
