"""What grid workers, property managers and community/street staff read in private chat."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.directory import StaffMember
from bot.domain import Button, Category, Colour, Incident, Stage, Ticket, TicketEvent, Tier

CATEGORY_NAME = {
    Category.REPAIR: "报修",
    Category.DISPUTE: "纠纷",
    Category.SERVICE: "服务",
}
TIER_NAME = {Tier.GENERAL: "一般", Tier.MAJOR: "较大", Tier.COMPLEX: "特别复杂"}
TIER_BY_NAME = {
    "一般": Tier.GENERAL,
    "较大": Tier.MAJOR,
    "复杂": Tier.COMPLEX,
    "特别复杂": Tier.COMPLEX,
    **{tier.value: tier for tier in Tier},
}
COLOUR_MARK = {Colour.GREEN: "🟢", Colour.YELLOW: "🟡", Colour.RED: "🔴", Colour.NONE: "⚪"}
STAGE_DEADLINE = {
    Stage.UNDERSTAND: "接单",
    Stage.PLAN: "提交处理方案",
    Stage.REPLY: "回复居民",
    Stage.RESOLVE: "办结",
}
EVENT_NAME = {
    "opened": "居民报告",
    "assigned": "派单",
    "accepted": "接单",
    "planned": "处理方案",
    "replied": "已告知居民",
    "resolved": "办结",
    "closed": "关闭",
    "reopened": "重新办理",
    "escalated": "上报",
    "breach": "超时",
    "follow_up": "后续方案",
    "day_end": "当日未办结",
    "cancelled": "撤销",
    "merged": "合并",
    "me_too": "又有居民反映",
    "rated": "居民评价",
    "relabelled": "更正分类",
    "edited": "居民修改消息",
    "incident": "工单预警",
}
_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
QUOTE_LIMIT = 60


def clock_time(when: datetime, timezone: str, window: timedelta | None = None) -> str:
    """Local wall-clock time; seconds only where the window is shorter than two minutes."""
    local = when.astimezone(ZoneInfo(timezone))
    if window is not None and window < timedelta(minutes=2):
        return local.strftime("%H:%M:%S")
    return local.strftime("%H:%M")


def quote(text: str) -> str:
    """A short quote of the resident's words with phone numbers masked."""
    masked = _PHONE.sub(r"\1****\2", text.strip())
    return masked if len(masked) <= QUOTE_LIMIT else masked[: QUOTE_LIMIT - 1] + "…"


def _where(ticket: Ticket) -> str:
    loc = ticket.location
    parts = [
        f"{loc['building']}号楼" if loc.get("building") else "",
        f"{loc['unit']}单元" if loc.get("unit") else "",
        f"{loc['room']}室" if loc.get("room") else "",
    ]
    return "".join(parts) or "未注明"


def buttons(ticket: Ticket) -> tuple[Button, ...]:
    """The actions a staff member can take from the message."""
    return (
        Button("接单", f"t:{ticket.id}:accept"),
        Button("处理方案", f"t:{ticket.id}:plan"),
        Button("办结", f"t:{ticket.id}:resolve"),
        Button("上报", f"t:{ticket.id}:escalate"),
        Button("转派", f"t:{ticket.id}:reassign"),
        Button("分类有误", f"t:{ticket.id}:relabel"),
    )


def card(
    ticket: Ticket,
    *,
    headline: str,
    colour: Colour,
    stage: Stage | None,
    due: datetime | None,
    timezone: str,
    window: timedelta | None,
) -> str:
    """The common body of a ping: number, type, urgency, colour, place, words, deadline."""
    kind = CATEGORY_NAME.get(ticket.category, "诉求")
    urgent = " 🚨紧急" if ticket.urgent else ""
    lines = [
        f"{COLOUR_MARK[colour]} {headline}",
        f"工单 #{ticket.id}｜{kind}{urgent}｜预估{TIER_NAME[ticket.tier]}问题",
        f"位置：{_where(ticket)}",
        f"居民原话：“{quote(ticket.text)}”",
    ]
    if ticket.households > 1:
        lines.append(f"反映户数：{ticket.households}户")
    if stage is not None and due is not None:
        lines.append(f"请在 {clock_time(due, timezone, window)} 前{STAGE_DEADLINE[stage]}")
    return "\n".join(lines)


def history(events: list[TicketEvent], timezone: str, limit: int = 8) -> str:
    """The last few steps of a ticket, one per line."""
    shown = events[-limit:]
    zone = ZoneInfo(timezone)
    lines = []
    for event in shown:
        note = f"：{event.note}" if event.note and event.kind != "opened" else ""
        when = event.at.astimezone(zone).strftime("%H:%M:%S")
        lines.append(f"{when} {EVENT_NAME.get(event.kind, event.kind)}{note}")
    return "处理记录：\n" + "\n".join(lines)


def reminder(stage: Stage, left: timedelta) -> str:
    """Headline of the 80% reminder."""
    seconds = max(0, int(left.total_seconds()))
    left_text = f"{seconds // 60}分钟" if seconds >= 120 else f"{seconds}秒"
    return f"⏰ 提醒：还剩{left_text}，请尽快{STAGE_DEADLINE[stage]}"


def escalated_to_you(reason: str, level_name: str) -> str:
    """Headline for the new level after an escalation."""
    return f"⬆️ 工单已上报至{level_name}：{reason}"


def escalated_away(ticket_id: int, level_name: str, reason: str) -> str:
    """Told to whoever held the ticket before it went up."""
    return f"工单 #{ticket_id} 已上报至{level_name}（{reason}）。"


def top_level_overdue(stage: Stage) -> str:
    """Headline when the street level itself misses a deadline: nobody above to go to."""
    return f"‼️ 已到最高层级仍超时：{STAGE_DEADLINE[stage]}已逾期，请立即处理"


def day_end_request(ticket_id: int) -> str:
    """Asked at day's end when a ticket is still open (不能当天解决的告知后续方案)."""
    return (
        f"🌙 工单 #{ticket_id} 今天未能办结。请告诉居民后续解决方案，发送：\n"
        f"/followup {ticket_id} 后续方案内容"
    )


def reply_not_delivered(ticket_id: int) -> str:
    """The plan could not be posted to the resident in time: a person must tell them."""
    return f"⚠️ 工单 #{ticket_id} 的处理方案未能自动发给居民，请直接联系居民告知。"


def new_ticket_headline(urgent: bool, for_community: bool) -> str:
    """Headline of the first ping."""
    if urgent and for_community:
        return "🚨 紧急工单，请社区同步关注"
    return "🚨 新的紧急工单" if urgent else "📋 新工单"


def handed_over(name: str) -> str:
    """Headline when a ticket comes to the backup because its holder went off duty."""
    return f"🔁 备岗接替：{name}已下班，此工单转由您处理"


def reassigned_to_you(by: str, note: str) -> str:
    """Headline for the person a ticket was passed to (转派)."""
    return f"🔁 {by}转派给您的工单" + (f"：{note}" if note else "")


def reassigned_away(ticket_id: int, to: str, by: str) -> str:
    """Told to the previous holder when someone else passed their ticket on."""
    return f"工单 #{ticket_id} 已由{by}转派给{to}。"


NOT_A_REQUEST = "不是诉求"
EDITED_HEADLINE = "✏️ 居民修改了消息（以下为最新内容）"
RELABEL_CHOICES = (*CATEGORY_NAME.items(), ("none", NOT_A_REQUEST))


def choose_label(ticket: Ticket) -> str:
    """分类有误, step one: what the message really is."""
    kind = CATEGORY_NAME.get(ticket.category, "诉求")
    return (
        f"工单 #{ticket.id} 目前判为“{kind}”。这条消息实际是？\n"
        "选“不是诉求”会撤销工单并礼貌告知居民；改为其他类别会按新类别重新派单。"
        "您的选择会进入管理员的待审消息，用来改进自动分类。"
    )


def relabelled(ticket_id: int, label: str, holder: StaffMember | None) -> str:
    """Confirmation to the person who corrected the category."""
    if label == "none":
        return f"✅ 工单 #{ticket_id} 已撤销（不是诉求），已告知居民。谢谢您帮助改进分类！"
    kind = CATEGORY_NAME.get(Category(label), label)
    now_with = f"，现由{holder.name}负责" if holder is not None else ""
    return f"✅ 工单 #{ticket_id} 已改为“{kind}”{now_with}。谢谢您帮助改进分类！"


def relabel_headline(by: str, old: Category, new: Category) -> str:
    """Headline for the person a re-filed ticket now goes to."""
    return f"🔁 {by}将工单类别由“{CATEGORY_NAME[old]}”更正为“{CATEGORY_NAME[new]}”，转给您处理"


def relabelled_away(ticket_id: int, label: str, by: str, *, moved: bool) -> str:
    """Told to the holder when someone else withdrew or re-filed their ticket."""
    if label == "none":
        return f"工单 #{ticket_id} 已由{by}确认不是诉求并撤销，无需再处理。"
    kind = CATEGORY_NAME[Category(label)]
    if moved:
        return f"工单 #{ticket_id} 已由{by}更正为“{kind}”，按新类别转给他人处理。"
    return f"工单 #{ticket_id} 已由{by}更正为“{kind}”，仍由您负责。"


def incident_alert(
    incident: Incident, community: str, tickets: list[int], reports: int, minutes: int
) -> str:
    """The red alert to community staff when reports pile up (工单预警)."""
    where = f"{community}{incident.building}号楼" if incident.building else f"{community}多处"
    what = CATEGORY_NAME[incident.category] + (f"（{incident.topic}）" if incident.topic else "")
    numbers = " ".join(f"#{t}" for t in tickets)
    return (
        f"🔴 工单预警：{where}{minutes}分钟内收到 {reports} 起{what}：{numbers}。\n"
        f"已归为预警事件 #{incident.id}，群里已告知居民无需重复报告，后续同类报告自动并入。\n"
        "请立即组织处置；处理完毕后按“事件办结”，所有报告的居民都会收到通知。"
    )


def incident_note(incident_id: int) -> str:
    """The default resolve note of an incident."""
    return f"预警事件 #{incident_id} 已统一处理完毕"


INCIDENT_NOT_ALLOWED = "抱歉，预警事件由社区、街道工作人员或管理员办结。"
USAGE_INCIDENT = "格式：/incident 事件号 [处理说明]，例如：/incident 3 主水管已抢修完毕，恢复供水"


def incident_not_found(incident_id: int) -> str:
    """No such incident."""
    return f"没有找到预警事件 #{incident_id}。"


def incident_resolved(incident_id: int, count: int) -> str:
    """Confirmation to the person who resolved an incident."""
    return f"✅ 预警事件 #{incident_id} 已办结，{count} 个工单已通知居民评价。"


MERGED_BUTTONS = 9  # 接单 buttons under a merged ping (three rows)


def pings(tickets: list[Ticket]) -> str:
    """Several new tickets for one person in one message (their queue outgrew one a second)."""
    lines = [
        f"#{t.id}｜{CATEGORY_NAME.get(t.category, '诉求')}｜{_where(t)}：{quote(t.text)}"
        + ("｜🚨紧急" if t.urgent else "")
        for t in tickets
    ]
    return (
        f"📋 您有 {len(tickets)} 件新工单：\n"
        + "\n".join(lines)
        + "\n请尽快接单（下方按钮或 /accept 工单号）；/mytickets 查看全部。"
    )


def me_too(ticket_id: int, households: int, text: str) -> str:
    """Another household reported the same problem."""
    return f"➕ 工单 #{ticket_id} 又有居民反映同一问题（共{households}户）：“{quote(text)}”"


def unreachable_in_group(name: str, ticket: Ticket) -> str:
    """The group mention when the assignee cannot be messaged privately. Only the number,
    the kind and the building: the resident's words stay out of the group."""
    kind = CATEGORY_NAME.get(ticket.category, "诉求")
    building = ticket.location.get("building")
    where = f"，{building}号楼" if building and ticket.chat_id < 0 else ""
    return (
        f"📣 {name}：工单 #{ticket.id}（{kind}{where}）已派给您，但机器人无法私聊通知您。"
        "请私聊本机器人并发送 /start，即可查看详情和处理。"
    )


def unreachable_to_admin(member: StaffMember, ticket_id: int | None) -> str:
    """Told to admins the first time a staff member cannot be messaged."""
    about = f"工单 #{ticket_id} 的通知" if ticket_id else "通知"
    return (
        f"⚠️ 无法私聊联系{member.name}（{member.id}），{about}未能送达。"
        "可能尚未私聊机器人发送 /start，或已屏蔽机器人。已在群里提醒，请您也联系其本人。"
    )


def off_duty(handed: list[int], kept: list[int]) -> str:
    """/offduty answer."""
    text = "🌙 已设为下班，新工单将派给备岗人员。"
    if handed:
        text += f"\n待接单的工单已转给备岗：{' '.join(f'#{n}' for n in handed)}"
    if kept:
        text += (
            f"\n已接单的工单仍由您负责：{' '.join(f'#{n}' for n in kept)}，"
            "如需他人处理请点「转派」。"
        )
    return text + "\n上班后发送 /onduty。"


def on_duty(until: str | None, roster: str) -> str:
    """/onduty answer."""
    if until:
        return f"☀️ 已上岗（排班外临时上岗，至{until}）。您的排班：{roster}。"
    return f"☀️ 已上岗。您的排班：{roster}。"


def choose_tier(ticket_id: int) -> str:
    """First step of the 处理方案 button: how big the problem is."""
    return f"工单 #{ticket_id} 处理方案：请选择问题类型（决定办结时限）"


def ask_plan_text(ticket_id: int, tier: Tier) -> str:
    """Second step: one line of plan text."""
    return (
        f"工单 #{ticket_id}（{TIER_NAME[tier]}问题）：请直接回复一句话处理方案，"
        "例如“师傅20分钟内到场更换水管”。发送 /cancel 取消。"
    )


def ask_resolve_note(ticket_id: int) -> str:
    """The 办结 button: an optional note for the resident."""
    return (
        f"工单 #{ticket_id} 办结：请回复一句办结说明（会告知居民），"
        "或点「直接办结」。发送 /cancel 取消。"
    )


def ask_escalate_reason(ticket_id: int) -> str:
    """The 上报 button: why it goes up."""
    return f"工单 #{ticket_id} 上报：请回复上报原因，或点「直接上报」。发送 /cancel 取消。"


def choose_reassign(ticket_id: int) -> str:
    """The 转派 button: to whom."""
    return f"工单 #{ticket_id} 转派给谁？"


def welcome(name: str) -> str:
    """/start from a staff member."""
    return f"您好，{name}！您已开通工单通知：新工单、提醒和上报会私聊发给您。"


NOT_A_CANDIDATE = "只能转派给本网格或本社区的工作人员。"
NO_CANDIDATES = "本网格和社区没有其他可转派的工作人员。"
DIALOGUE_CANCELLED = "已取消。"
NOTHING_PENDING = "当前没有进行中的操作。需要帮助请发送 /staffhelp。"
EXPIRED = "这个操作已过期，请重新点按钮。"


HELP = (
    "工作人员命令：\n"
    "/accept 工单号 — 接单\n"
    "/plan 工单号 一般|较大|特别复杂 方案内容 — 提交处理方案（自动告知居民）\n"
    "/resolve 工单号 [办结说明] — 办结\n"
    "/escalate 工单号 原因 — 上报（无力解决时）\n"
    "/followup 工单号 后续方案 — 当天不能解决时告知居民后续方案\n"
    "/mytickets — 我的待处理工单\n"
    "/ticket 工单号 — 查看工单详情和处理记录\n"
    "/reassign 工单号 — 转派给本网格或社区的其他人\n"
    "/relabel 工单号 — 分类有误：改为其他类别，或确认不是诉求（撤销并告知居民）\n"
    "/incident 事件号 [处理说明] — 预警事件办结（社区、街道工作人员），事件内工单一并办结\n"
    "/offduty — 下班（新工单派给备岗）  /onduty — 上岗\n"
    "工单消息下的按钮（接单、处理方案、办结、上报、转派、分类有误）可完成同样操作。"
)


STATUS_NAME = {
    "new": "待接单",
    "accepted": "已接单",
    "planned": "处理中",
    "resolved": "已办结待评价",
    "closed": "已关闭",
    "reopened": "重新办理",
    "cancelled": "已撤销",
    "merged": "已合并",
}
ACTION_NAME = {
    "accept": "接单",
    "plan": "提交方案",
    "resolve": "办结",
    "close": "关闭",
    "reopen": "重新办理",
    "escalate": "上报",
    "follow_up": "提交后续方案",
    "cancel": "撤销",
    "merge": "合并",
    "reassign": "转派",
    "relabel": "更正分类",
}
NOT_STAFF = "抱歉，您不在本社区工作人员名单中，无法处理工单。"
USAGE_NUMBER = "请写明工单号，例如：/accept 12"
USAGE_PLAN = "格式：/plan 工单号 一般|较大|特别复杂 方案内容，例如：/plan 12 一般 师傅20分钟内到场"
USAGE_TEXT = "请在工单号后写上内容，例如：/followup 12 明天上午9点维修公司到场"


def not_found(ticket_id: int) -> str:
    """No such ticket."""
    return f"没有找到工单 #{ticket_id}。"


def not_allowed(ticket_id: int) -> str:
    """Someone other than the assignee (or above) pressed a button."""
    return f"工单 #{ticket_id} 目前不由您负责，无法操作。如需协助请联系当前责任人。"


def illegal(ticket_id: int, action: str, status: str) -> str:
    """The ticket is not in a state where this can be done."""
    return (
        f"工单 #{ticket_id} 当前状态为“{STATUS_NAME.get(status, status)}”，"
        f"不能{ACTION_NAME.get(action, action)}。"
    )


def done(ticket_id: int, action: str) -> str:
    """Confirmation to the person who acted."""
    return f"✅ 工单 #{ticket_id} 已{ACTION_NAME.get(action, action)}。"


def top_level(ticket_id: int) -> str:
    """Nothing above to escalate to."""
    return f"工单 #{ticket_id} 已在最高层级，无法继续上报。"


def plan_hint(ticket_id: int) -> str:
    """After accepting: how to send the plan."""
    return f"请在了解情况后提交处理方案：/plan {ticket_id} 一般|较大|特别复杂 方案内容"


NO_OPEN_TICKETS = "您目前没有待处理的工单 👍"


def ticket_list(lines: list[str]) -> str:
    """/mytickets: one line per ticket, most pressing first."""
    return f"您的待处理工单（{len(lines)}）：\n" + "\n".join(lines)


def ticket_line(ticket: Ticket, colour: Colour, due: datetime | None, timezone: str) -> str:
    """One ticket in a list."""
    kind = CATEGORY_NAME.get(ticket.category, "诉求")
    urgent = "🚨" if ticket.urgent else ""
    deadline = f"，{clock_time(due, timezone)}前" if due else ""
    status = STATUS_NAME.get(ticket.status.value, ticket.status.value)
    words = quote(ticket.text)[:20]
    return f"{COLOUR_MARK[colour]}{urgent} #{ticket.id} {kind}｜{status}{deadline}｜{words}"


def settled_by_answer(ticket: Ticket) -> str:
    """The assignee hears that the known answer was enough and the ticket is closed."""
    kind = CATEGORY_NAME.get(ticket.category, "诉求")
    return f"✅ 工单 #{ticket.id}（{kind}）：居民确认告知内容已解决问题，工单已关闭，无需再处理。"
