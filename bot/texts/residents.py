"""What residents read, in groups and in private chat."""

from __future__ import annotations

from datetime import timedelta

from bot.directory import StaffMember
from bot.domain import Category, Rating, Role
from bot.durations import format_duration_zh

RECEIVED = {
    Category.REPAIR: "已收到您的报修",
    Category.DISPUTE: "已收到您反映的问题",
    Category.SERVICE: "已收到您的咨询",
}
ROLE_TITLE = {
    Role.PROPERTY: "物业",
    Role.GRID_WORKER: "网格员",
    Role.COMMUNITY: "社区",
    Role.STREET: "街道",
    Role.ADMIN: "工作人员",
}


def _where(location: dict[str, str]) -> str:
    # Building and unit only: a room number in a group chat tells the whole building who
    # complained, and the sources never promise residents that kind of exposure.
    parts = []
    if building := location.get("building"):
        parts.append(f"{building}号楼")
    if unit := location.get("unit"):
        parts.append(f"{unit}单元")
    return "".join(parts)


def _who(assignee: StaffMember | None) -> str:
    if assignee is None:
        return "网格工作人员"
    return f"{ROLE_TITLE.get(assignee.role, '')}{assignee.name}"


def acknowledgement(
    ticket_id: int,
    *,
    category: Category,
    urgent: bool,
    location: dict[str, str],
    assignee: StaffMember | None,
    promise: timedelta,
) -> str:
    """The group reply that opens the loop: number, type, who comes and when."""
    where = _where(location)
    where_part = f"（{where}）" if where else ""
    if urgent:
        return (
            f"🚨 紧急情况已收到，工单号 #{ticket_id}{where_part}。"
            f"已通知{_who(assignee)}和社区立即处置，请注意安全！"
        )
    received = RECEIVED.get(category, "已收到您的诉求")
    return (
        f"{received}，工单号 #{ticket_id}{where_part}。"
        f"{_who(assignee)}将在{format_duration_zh(promise)}内联系您。"
    )


MERGED_KIND = {Category.REPAIR: "报修", Category.DISPUTE: "纠纷", Category.SERVICE: "服务诉求"}


def acknowledgements(
    count: int, ticket_ids: list[int], categories: set[Category], *, urgent: bool = False
) -> str:
    """Many acknowledgements in one message, when a group's queue outgrows its allowance
    (a burst): every resident still sees their number within minutes."""
    kind = MERGED_KIND[next(iter(categories))] if len(categories) == 1 else "诉求"
    numbers = " ".join(f"#{t}" for t in ticket_ids)
    text = (
        f"已收到 {count} 条{kind}：{numbers}，网格员正在处理，无需重复发送，进展会在群里告诉大家。"
    )
    return f"🚨 {text}已通知社区立即处置，请注意安全！" if urgent else text


def incident_notice(building: str, topic: str, category: Category) -> str:
    """One notice in a group where many report the same thing (工单预警)."""
    where = f"{building}号楼" if building else "小区多处"
    what = (
        topic
        or {Category.REPAIR: "的报修问题", Category.DISPUTE: "的纠纷", Category.SERVICE: "的问题"}[
            category
        ]
    )
    return (
        f"📢 已知悉{where}{what}，社区和网格员正在处理，无需重复报告。"
        "处理进展会在这里告诉大家，谢谢大家！"
    )


SETTLED_BUTTON = "已解决，谢谢"


def with_answer(acknowledgement: str, answer: str) -> str:
    """The acknowledgement followed by the whole known answer (一次性告知)."""
    return (
        f"{acknowledgement}\n\n📋 {answer}\n\n"
        f"如果以上信息已经解决了您的问题，请点“{SETTLED_BUTTON}”，工单将直接关闭。"
    )


SETTLED = "好的，工单 #{ticket_id} 已关闭。感谢您的反馈，祝您生活愉快！"
SETTLED_ALREADY = "这张工单已经结束了。"
SETTLED_NOT_YOURS = "只有提出诉求的居民本人可以确认。"


PRIVATE_WELCOME = (
    "您好！我是社区网格助手 🤝\n"
    "在小区业主群里或在这里私聊我，直接说出您遇到的问题（报修、邻里纠纷、办事咨询），"
    "我会立即登记工单、告诉您工单号，并通知负责的网格员或物业管家按“5321”时限处理：\n"
    "5分钟了解情况、5分钟商定方案、5分钟回复您；一般问题30分钟内解决，"
    "较大问题2小时内，特别复杂的问题1天内；当天解决不了的会告诉您后续方案。"
)
ASK_COMMUNITY = "请问您住在哪个社区？"
ASK_HOME_FIRST = "收到！为了转给负责您楼栋的网格员，请先告诉我您住在哪里（只需设置一次）。"
PRIVATE_NOT_REQUEST = (
    "您好！如需报修、反映邻里问题或咨询办事，请直接描述，例如“厨房水管漏水”“楼上装修太吵”。"
    "发送 /status 查看您的工单，/home 修改住址。"
)


def ask_building(community: str) -> str:
    """The second home question."""
    return f"{community}：请问您住在几号楼？"


def home_saved(community: str, building: str) -> str:
    """Both answers given."""
    return (
        f"已记下：{community}{building}号楼。以后直接在这里描述问题即可，"
        "我会转给负责的网格员或物业，进展也会在这里告诉您。如需修改，发送 /home。"
    )


HELP = (
    "使用说明：\n"
    "• 在业主群里描述问题即可，例如“3号楼电梯坏了”“楼上半夜装修太吵”“社保卡在哪里补办”；\n"
    "• 我会回复工单号，并通知网格员或物业；\n"
    "• 请不要在群里发手机号、身份证号等个人信息。"
)


def accepted(ticket_id: int, who: StaffMember | None) -> str:
    """The assignee has taken the ticket."""
    return f"#{ticket_id} {_who(who)}已接单，正在了解情况。"


def planned(ticket_id: int, plan: str, expected: str) -> str:
    """The plan, told the moment it is saved (5分钟回复居民)."""
    return f"#{ticket_id} 处理方案：{plan}。预计{expected}前处理完。"


def resolved(ticket_id: int, note: str) -> str:
    """The assignee says it is done; the resident is asked to rate it (buttons below)."""
    detail = f"：{note}" if note else ""
    return f"#{ticket_id} 已办结{detail}。您对处理结果满意吗？"


def resolved_for_others(ticket_id: int, note: str) -> str:
    """Told to households who said "me too" (only the first reporter rates)."""
    detail = f"：{note}" if note else ""
    return f"#{ticket_id} 您反映的问题已办结{detail}。感谢您的反映！"


def me_too(ticket_id: int, households: int, assignee: StaffMember | None) -> str:
    """A later report of the same problem joined the open ticket."""
    return (
        f"已并入工单 #{ticket_id}（同一问题已有{households}户反映），"
        f"{_who(assignee)}正在处理，无需重复报告，处理进展会在这里告诉您。"
    )


RATING_NAME = {
    Rating.SATISFIED: "满意",
    Rating.BASICALLY: "基本满意",
    Rating.UNSATISFIED: "不满意",
}
ONLY_REPORTER = "只有报告这件事的居民可以评价哦。"
ALREADY_RATED = "这个工单已经评价过了，谢谢！"


def thanks(ticket_id: int) -> str:
    """After 满意 / 基本满意."""
    return f"#{ticket_id} 感谢您的评价！如有新的问题，随时在群里说。"


def follow_up(ticket_id: int, plan: str) -> str:
    """Not solved today: what happens next (不能当天解决的告知居民后续解决方案)."""
    return f"#{ticket_id} 今天暂时无法处理完毕，后续安排：{plan}。我们会持续跟进。"


def escalated(ticket_id: int) -> str:
    """The ticket went up a level; the resident hears it is still being chased."""
    return f"#{ticket_id} 已上报上级协调处理，请您放心。"


STATUS_WORD = {
    "new": "等待接单，已通知负责人",
    "reopened": "重新办理中，已通知上级",
    "accepted": "已接单，正在了解情况",
    "planned": "处理中",
    "resolved": "已办结，等待您的评价",
    "closed": "已办结",
    "cancelled": "已撤销",
    "merged": "已合并到其他工单",
}
NO_OPEN = "您目前没有未办结的工单。"


def progress(ticket_id: int, status: str, plan: str, expected: str | None) -> str:
    """Answer to "进度?" as a reply to the bot's message."""
    text = f"#{ticket_id} {STATUS_WORD.get(status, status)}"
    if plan and status == "planned":
        text += f"。处理方案：{plan}"
        if expected:
            text += f"，预计{expected}前处理完"
    return text + "。"


def not_a_request(ticket_id: int) -> str:
    """Staff found the message was not a request (分类有误): said kindly, with a way back."""
    return (
        f"您好，工作人员看过了，这条消息不需要派单处理，工单 #{ticket_id} 已撤销。"
        "如果确实需要帮助，请直接说明问题和地点，我们马上安排。"
    )


def withdrawn(ticket_id: int) -> str:
    """The resident said it is no longer needed."""
    return f"#{ticket_id} 已撤销，感谢告知！"


def status_list(lines: list[str]) -> str:
    """/status: the resident's open tickets."""
    return "您的工单：\n" + "\n".join(lines)
