"""The web admin (aiohttp): login, keyword routing with try-it and what-if, review queue,
known answers, audit log with rollback, dashboard with charts, exports.

Every route only parses, calls the core's services and renders; the rules live in ``bot``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web
from yarl import URL

from bot.core import Core
from bot.domain import DISTRICT
from bot.services import exports
from bot.services.admins import Session, csrf_matches
from bot.services.answers import BadAnswer
from bot.services.figures import ON_TIME_KEYS
from bot.services.keywords import DEFAULT_WEIGHT, MAX_IMPORT_BYTES, BadKeyword, WhatIf
from bot.texts import admins as texts
from handlers.web import charts

logger = logging.getLogger(__name__)
SESSION_COOKIE = "gridbot_admin"
LOGIN_CSRF_COOKIE = "gridbot_login_csrf"
SESSION_KEY = web.RequestKey("admin_session", Session)
CORE = web.AppKey("core", Core)
SECURE_COOKIES = web.AppKey("secure_cookies", bool)
ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("handlers.web", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
MAX_FORM = 2 * 1024 * 1024  # an imported YAML file fits; anything bigger is refused
REVIEW_BELOW = 0.6
COLOUR_NAME = {"green": "🟢 正常", "yellow": "🟡 临期", "red": "🔴 超时", "none": "⚪"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application, core: Core, *, secure_cookies: bool = False) -> None:
    """Mount the admin under /admin on an application that may serve other things too."""
    admin = web.Application(middlewares=[_guard], client_max_size=MAX_FORM)
    admin[CORE] = core
    admin[SECURE_COOKIES] = secure_cookies
    admin.add_routes([
        web.get("/login", login_page),
        web.post("/login", login),
        web.post("/logout", logout),
        web.get("/", dashboard),
        web.get("/keywords", keywords_page),
        web.post("/keywords/save", keyword_save),
        web.post("/keywords/toggle", keyword_toggle),
        web.post("/keywords/delete", keyword_delete),
        web.post("/keywords/import", keyword_import),
        web.get("/keywords.yaml", keyword_export),
        web.post("/try", try_text),
        web.get("/review", review_page),
        web.get("/audit", audit_page),
        web.get("/audit.csv", audit_csv),
        web.post(r"/audit/{change_id:\d{1,18}}/rollback", rollback),
        web.get("/answers", answers_page),
        web.post("/answers/add", answer_add),
        web.post(r"/answers/{answer_id:\d{1,18}}/edit", answer_edit),
        web.post(r"/answers/{answer_id:\d{1,18}}/delete", answer_delete),
        web.get(r"/export/{what:tickets|figures}.{fmt:csv|xlsx}", export),
    ])  # fmt: skip
    app.add_subapp("/admin", admin)


def _core(request: web.Request) -> Core:
    return request.app[CORE]


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Everything but the login page needs a session; every POST needs its CSRF token."""
    try:
        response = await _checked(request, handler)
    except web.HTTPException as exc:
        response = exc
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'"
    )
    response.headers["Cache-Control"] = "no-store"
    if isinstance(response, web.HTTPException):
        raise response
    return response


async def _checked(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.match_info.route.resource.canonical if request.match_info.route.resource else ""
    if path.endswith("/login"):
        return await handler(request)
    session = await _core(request).auth.session(request.cookies.get(SESSION_COOKIE))
    if session is None:
        if request.method == "GET":
            raise web.HTTPFound("/admin/login")
        logger.warning("refused %s %s: not logged in", request.method, request.path)
        raise web.HTTPForbidden(text="请先登录")
    if request.method == "POST":
        form = await request.post()
        if not csrf_matches(session.csrf, _field(form, "csrf")):
            logger.warning("refused %s %s: bad CSRF token", request.method, request.path)
            raise web.HTTPForbidden(text="表单已失效，请刷新页面后重试")
    request[SESSION_KEY] = session
    return await handler(request)


def _field(form: Any, name: str, limit: int = 4000) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _render(request: web.Request, template: str, **context: Any) -> web.Response:
    session = request.get(SESSION_KEY)
    directory = _core(request).directory.current
    names = {c.id: c.name for c in directory.communities}
    zone = ZoneInfo(directory.timezone)

    def staff_name(staff_id: str | None) -> str:
        member = directory.member(staff_id) if staff_id else None
        return member.name if member else "未分派"

    def actor_name(actor: str) -> str:
        return staff_name(actor.removeprefix("staff:")) if actor.startswith("staff:") else actor

    base: dict[str, Any] = {
        "title": "",
        "page": "",
        "admin": session.member if session else None,
        "csrf": session.csrf if session else "",
        "flash": request.query.get("msg", "")[:200],
        "flash_kind": "err" if request.query.get("err") else "ok",
        "kind_name": texts.KIND_NAME,
        "kinds": ["repair", "dispute", "service", "cancel", "notice", "chatter", "question"],
        "scopes": [(s, texts.scope_name(s, names)) for s in _core(request).keywords.scopes()],
        "scope_name": lambda s: texts.scope_name(s, names),
        "staff_name": staff_name,
        "actor_name": actor_name,
        "when": lambda t: t.astimezone(zone).strftime("%Y-%m-%d %H:%M") if t else "",
        "state": lambda st: "—" if st is None else f"{st[0]:g}{'' if st[1] else '（停用）'}",
    }
    base.update(context)
    html = ENV.get_template(template).render(**base)
    return web.Response(text=html, content_type="text/html", charset="utf-8")


def _back(location: str, message: str, *, error: bool = False) -> web.HTTPFound:
    query = URL(location).update_query(msg=message, **({"err": "1"} if error else {}))
    return web.HTTPFound(str(query))


def _actor(request: web.Request) -> str:
    return f"staff:{request[SESSION_KEY].member.id}"


# --- login -------------------------------------------------------------------------------


async def login_page(request: web.Request) -> web.Response:
    """The login form, with a CSRF token bound to a cookie (double submit)."""
    token = secrets.token_urlsafe(32)
    response = _render(request, "login.html", title="登录", csrf=token)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
        path="/admin/login",
    )
    return response


async def login(request: web.Request) -> web.Response:
    """Check the password; on success set the session cookie."""
    form = await request.post()
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not csrf_matches(expected, _field(form, "csrf")):
        logger.warning("refused login: bad CSRF token")
        raise web.HTTPForbidden(text="表单已失效，请刷新页面后重试")
    found = await _core(request).auth.login(
        _field(form, "staff_id", 64), _field(form, "password", 400)
    )
    if found is None:
        raise _back("/admin/login", "账号或密码不正确（多次错误将暂时锁定）", error=True)
    response = web.HTTPFound("/admin/")
    response.set_cookie(
        SESSION_COOKIE,
        found.token,
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
        path="/admin",
    )
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/admin/login")
    raise response


def _secure(request: web.Request) -> bool:
    return request.app[SECURE_COOKIES] or request.secure


async def logout(request: web.Request) -> web.Response:
    """End the session."""
    await _core(request).auth.logout(request.cookies.get(SESSION_COOKIE, ""))
    response = web.HTTPFound("/admin/login")
    response.del_cookie(SESSION_COOKIE, path="/admin")
    raise response


# --- dashboard and exports ---------------------------------------------------------------


def _range(request: web.Request) -> tuple[int, list[str] | None, str]:
    try:
        days = min(max(int(request.query.get("days", "30")), 1), 366)
    except ValueError:
        days = 30
    community = request.query.get("community", "")
    known = {c.id for c in _core(request).directory.current.communities}
    ids = [community] if community in known else None
    return days, ids, community if ids else ""


async def dashboard(request: web.Request) -> web.Response:
    """Figures, charts and open tickets for a time range."""
    core = _core(request)
    days, ids, community = _range(request)
    start, end = core.figures.local_range(days)
    board = await core.figures.dashboard(start, end, ids)
    directory = core.directory.current
    f = board.total
    on_time: list[tuple[str, float | None, str]] = [
        (
            exports.ON_TIME_NAME[k],
            f.on_time[k].value,
            f"{f.on_time[k].percent()}（{f.on_time[k].part}/{f.on_time[k].whole}）",
        )
        for k in ON_TIME_KEYS
        if k in f.on_time
    ]
    rated = sum(f.ratings.values()) or 1
    ratings: list[tuple[str, float | None, str]] = [
        (name, f.ratings[key] / rated, f"{f.ratings[key]} 件")
        for key, name in (
            ("satisfied", "满意"),
            ("basically", "基本满意"),
            ("unsatisfied", "不满意"),
            ("unrated", "未评价"),
        )
    ]
    zone = ZoneInfo(directory.timezone)
    return _render(
        request,
        "dashboard.html",
        title="数据看板",
        page="dashboard",
        days=days,
        community=community,
        communities=directory.communities,
        start=start.astimezone(zone).date(),
        end=(end.astimezone(zone) - timedelta(days=1)).date(),
        f=f,
        daily_chart=charts.daily_bars(board.by_day),
        on_time_chart=charts.share_bars(on_time),
        rating_chart=charts.share_bars(ratings),
        open_tickets=board.open_tickets,
        open_count=board.open_count,
        colour_name=COLOUR_NAME,
        status_name=exports.STATUS_NAME,
        figure_headers=exports.FIGURE_HEADERS,
        slices=exports.figure_slices(board, directory),
    )


async def export(request: web.Request) -> web.Response:
    """Tickets or figures of the range as CSV or XLSX."""
    core = _core(request)
    days, ids, _ = _range(request)
    start, end = core.figures.local_range(days)
    directory = core.directory.current
    what, fmt = request.match_info["what"], request.match_info["fmt"]
    headers: tuple[str, ...]
    if what == "tickets":
        tickets = await core.figures.tickets(start, end, ids)
        headers, rows, title = (
            exports.TICKET_HEADERS,
            exports.ticket_rows(tickets, directory),
            "工单",
        )
    else:
        board = await core.figures.dashboard(start, end, ids)
        headers, rows, title = exports.FIGURE_HEADERS, exports.figure_rows(board, directory), "统计"
    stamp = core.clock.now().astimezone(ZoneInfo(directory.timezone)).strftime("%Y%m%d")
    name = f"{what}-{stamp}.{fmt}"
    if fmt == "csv":
        body, kind = exports.to_csv(headers, rows), "text/csv"
    else:
        body = exports.to_xlsx([(title, headers, rows)])
        kind = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return web.Response(
        body=body,
        content_type=kind,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- keywords ----------------------------------------------------------------------------


def _scope(request: web.Request, value: str) -> str:
    return value if value in _core(request).keywords.scopes() else DISTRICT


async def keywords_page(
    request: web.Request,
    *,
    scope: str | None = None,
    proposal: dict[str, Any] | None = None,
    whatif: WhatIf | None = None,
    tried: str | None = None,
    tried_text: str | None = None,
    flash: str | None = None,
) -> web.Response:
    """The rules of a scope, the try-it box, the add form and its what-if."""
    scope = scope or _scope(request, request.query.get("scope", DISTRICT))
    entries = await _core(request).keywords.entries(scope)
    extra: dict[str, Any] = {"flash": flash, "flash_kind": "err"} if flash else {}
    return _render(
        request,
        "keywords.html",
        title="关键词",
        page="keywords",
        scope=scope,
        entries=entries,
        proposal=proposal,
        default_weight=f"{DEFAULT_WEIGHT:g}",
        whatif=whatif,
        tried=tried,
        tried_text=tried_text,
        **extra,
    )


async def keyword_save(request: web.Request) -> web.Response:
    """Preview (what-if) or save one rule."""
    form = await request.post()
    core = _core(request)
    scope = _scope(request, _field(form, "scope"))
    category, word = _field(form, "category", 20), _field(form, "word", 200)
    weight_text = _field(form, "weight", 20) or "2"
    proposal = {"category": category, "word": word, "weight": weight_text}
    try:
        weight = float(weight_text)
        if _field(form, "action") == "preview":
            whatif = await core.keywords.what_if(scope, category, word, weight=weight)
            return await keywords_page(request, scope=scope, proposal=proposal, whatif=whatif)
        change = await core.keywords.put(
            _actor(request), scope, category, word, weight=weight, enabled=True
        )
    except ValueError:
        return await keywords_page(
            request, scope=scope, proposal=proposal, flash=texts.bad("weight", weight_text)
        )
    except BadKeyword as exc:
        return await keywords_page(
            request, scope=scope, proposal=proposal, flash=texts.bad(exc.reason, exc.detail)
        )
    message = (
        texts.NOTHING_CHANGED if change is None else f"已保存：{word}（权重 {weight:g}），已生效"
    )
    raise _back(f"/admin/keywords?scope={scope}", message)


async def keyword_toggle(request: web.Request) -> web.Response:
    """Switch a rule off or on."""
    form = await request.post()
    core = _core(request)
    scope = _scope(request, _field(form, "scope"))
    category, word = _field(form, "category", 20), _field(form, "word", 200)
    current = next(
        (e for e in await core.keywords.entries(scope, category) if e.word == word), None
    )
    if current is None:
        raise _back(f"/admin/keywords?scope={scope}", texts.bad("missing", word), error=True)
    await core.keywords.put(_actor(request), scope, category, word, enabled=not current.enabled)
    raise _back(
        f"/admin/keywords?scope={scope}", f"已{'停用' if current.enabled else '启用'}：{word}"
    )


async def keyword_delete(request: web.Request) -> web.Response:
    """Delete a rule."""
    form = await request.post()
    scope = _scope(request, _field(form, "scope"))
    word = _field(form, "word", 200)
    try:
        await _core(request).keywords.delete(
            _actor(request), scope, _field(form, "category", 20), word
        )
    except BadKeyword as exc:
        raise _back(
            f"/admin/keywords?scope={scope}", texts.bad(exc.reason, exc.detail), error=True
        ) from None
    raise _back(f"/admin/keywords?scope={scope}", f"已删除：{word}")


async def keyword_import(request: web.Request) -> web.Response:
    """Import rules from an uploaded YAML file."""
    form = await request.post()
    scope = _scope(request, _field(form, "scope"))
    upload = form.get("file")
    if isinstance(upload, web.FileField):
        # One byte over the limit is enough for the service to refuse it as too large.
        text = upload.file.read(MAX_IMPORT_BYTES + 1).decode("utf-8", "replace")
    else:
        text = _field(form, "yaml", MAX_IMPORT_BYTES + 1)
    try:
        report = await _core(request).keywords.import_yaml(_actor(request), scope, text)
    except BadKeyword as exc:
        raise _back(
            f"/admin/keywords?scope={scope}", texts.bad(exc.reason, exc.detail), error=True
        ) from None
    raise _back(
        f"/admin/keywords?scope={scope}",
        f"已导入：新增 {report.added}，修改 {report.changed}，未变 {report.unchanged}",
    )


async def keyword_export(request: web.Request) -> web.Response:
    """The scope's rules as YAML."""
    scope = _scope(request, request.query.get("scope", DISTRICT))
    body = await _core(request).keywords.export_yaml(scope)
    name = "keywords-district.yaml" if scope == DISTRICT else f"keywords-{scope}.yaml"
    return web.Response(
        text=body,
        content_type="application/x-yaml",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def try_text(request: web.Request) -> web.Response:
    """Classify a sentence with the scope's running rules."""
    form = await request.post()
    core = _core(request)
    scope = _scope(request, _field(form, "scope"))
    text = _field(form, "text", 2000).strip()
    community = scope if scope != DISTRICT else core.directory.current.communities[0].id
    tried = texts.classification(await core.keywords.try_text(community, text)) if text else None
    return await keywords_page(request, scope=scope, tried=tried, tried_text=text)


async def review_page(request: web.Request) -> web.Response:
    """Recent messages the classifier was unsure about or staff re-labelled."""
    messages = await _core(request).keywords.review_queue(REVIEW_BELOW)
    return _render(
        request,
        "review.html",
        title="待审消息",
        page="review",
        messages=messages,
        below=REVIEW_BELOW,
    )


async def audit_page(request: web.Request) -> web.Response:
    """Every keyword change, newest first."""
    changes = await _core(request).keywords.history(limit=500)
    return _render(request, "audit.html", title="修改记录", page="audit", changes=changes)


async def audit_csv(request: web.Request) -> web.Response:
    """The audit log as CSV."""
    core = _core(request)
    zone = ZoneInfo(core.directory.current.timezone)
    names = {c.id: c.name for c in core.directory.current.communities}

    def state(value: tuple[float, bool] | None) -> str:
        return "" if value is None else f"{value[0]:g}{'' if value[1] else ' 停用'}"

    rows: list[list[object]] = [
        [c.id, c.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"), c.actor,
         texts.scope_name(c.scope, names), texts.KIND_NAME.get(c.category, c.category), c.word,
         state(c.before), state(c.after), c.note]
        for c in await core.keywords.history(limit=100_000)
    ]  # fmt: skip
    headers = ("编号", "时间", "操作人", "范围", "类别", "词", "修改前", "修改后", "备注")
    return web.Response(
        body=exports.to_csv(headers, rows),
        content_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="keyword-changes.csv"'},
    )


async def rollback(request: web.Request) -> web.Response:
    """Undo one audited change (itself audited)."""
    change_id = int(request.match_info["change_id"])
    try:
        change = await _core(request).keywords.rollback(_actor(request), change_id)
    except BadKeyword as exc:
        raise _back("/admin/audit", texts.bad(exc.reason, exc.detail), error=True) from None
    message = "无需撤销：规则已是修改前的样子" if change is None else f"已撤销 #{change_id}"
    raise _back("/admin/audit", message)


# --- answers -----------------------------------------------------------------------------


async def answers_page(request: web.Request) -> web.Response:
    """Known answers of every scope."""
    by_scope = await _core(request).answers.all()
    answers = [a for scope_answers in by_scope.values() for a in scope_answers]
    return _render(request, "answers.html", title="一次性告知", page="answers", answers=answers)


async def answer_add(request: web.Request) -> web.Response:
    """Add an answer."""
    form = await request.post()
    scope = _scope(request, _field(form, "scope"))
    try:
        await _core(request).answers.add(
            scope, _field(form, "topic", 400), _field(form, "text", 2000)
        )
    except BadAnswer as exc:
        raise _back("/admin/answers", texts.bad(exc.reason), error=True) from None
    raise _back("/admin/answers", "已添加")


async def answer_edit(request: web.Request) -> web.Response:
    """Change an answer."""
    form = await request.post()
    answer_id = int(request.match_info["answer_id"])
    try:
        await _core(request).answers.update(
            answer_id, _field(form, "topic", 400), _field(form, "text", 2000)
        )
    except BadAnswer as exc:
        raise _back("/admin/answers", texts.bad(exc.reason), error=True) from None
    raise _back("/admin/answers", "已保存")


async def answer_delete(request: web.Request) -> web.Response:
    """Delete an answer."""
    try:
        await _core(request).answers.delete(int(request.match_info["answer_id"]))
    except BadAnswer as exc:
        raise _back("/admin/answers", texts.bad(exc.reason), error=True) from None
    raise _back("/admin/answers", "已删除")
