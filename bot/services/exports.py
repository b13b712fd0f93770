"""Tickets and figures as CSV and XLSX for the street office, with Chinese headers."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Font

from bot.directory import Directory
from bot.domain import Ticket
from bot.services.figures import ON_TIME_KEYS, Dashboard, Figures
from bot.texts import admins as texts

STATUS_NAME = {
    "new": "待接单",
    "accepted": "已接单",
    "planned": "已定方案",
    "resolved": "已办结待评价",
    "closed": "已关闭",
    "reopened": "重新办理",
    "cancelled": "已撤销",
    "merged": "已合并",
}
RATING_NAME = {"satisfied": "满意", "basically": "基本满意", "unsatisfied": "不满意"}
ON_TIME_NAME = {
    "understand": "5分钟接单",
    "plan": "5分钟商定方案",
    "reply": "5分钟回复居民",
    "resolve:general": "一般问题30分钟办结",
    "resolve:major": "较大问题2小时办结",
    "resolve:complex": "复杂问题1天办结",
}
TICKET_HEADERS = (
    "工单号", "社区", "网格", "类别", "紧急", "难度", "状态", "报告时间", "接单时间",
    "方案时间", "办结时间", "负责人", "层级", "同问题户数", "一次性告知", "评价", "内容",
)  # fmt: skip
FIGURE_HEADERS = ("范围", "收到", "办结", "办结率", "按时办结率", "满意率", "一次性告知",
                  "撤销", "满意", "基本满意", "不满意", "未评价",
                  *(ON_TIME_NAME[k] for k in ON_TIME_KEYS))  # fmt: skip


def _when(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value else ""


def ticket_rows(tickets: list[Ticket], directory: Directory) -> list[list[object]]:
    """One row per ticket, in the order of :data:`TICKET_HEADERS`."""
    zone = ZoneInfo(directory.timezone)
    names = {c.id: c.name for c in directory.communities}
    grids = {g.id: g.name for c in directory.communities for g in c.grids}
    rows: list[list[object]] = []
    for t in tickets:
        member = directory.member(t.assignee_id) if t.assignee_id else None
        rows.append([
            t.id, names.get(t.community_id, t.community_id), grids.get(t.grid_id, t.grid_id),
            texts.KIND_NAME.get(t.category.value, t.category.value), "是" if t.urgent else "",
            texts.TIER_NAME.get(t.tier.value, t.tier.value), STATUS_NAME.get(t.status.value, ""),
            _when(t.created_at, zone), _when(t.accepted_at, zone), _when(t.planned_at, zone),
            _when(t.resolved_at, zone), member.name if member else "", t.level, t.households,
            "是" if t.answered else "", RATING_NAME.get(t.rating.value, "") if t.rating else "",
            t.text,
        ])  # fmt: skip
    return rows


def figure_row(label: str, f: Figures) -> list[object]:
    """One row of figures, in the order of :data:`FIGURE_HEADERS`."""
    return [
        label, f.received, f.resolved, f.completion.percent(), f.resolved_on_time.percent(),
        f.satisfaction.percent(), f.answered, f.cancelled, f.ratings["satisfied"],
        f.ratings["basically"], f.ratings["unsatisfied"], f.ratings["unrated"],
        *(f.on_time[k].percent() if k in f.on_time else "—" for k in ON_TIME_KEYS),
    ]  # fmt: skip


def figure_slices(board: Dashboard, directory: Directory) -> list[tuple[str, list[list[object]]]]:
    """Rows by community, by grid and by staff member, each under its title."""
    communities = {c.id: c.name for c in directory.communities}
    grids = {g.id: g.name for c in directory.communities for g in c.grids}

    def staff_name(staff_id: str) -> str:
        member = directory.member(staff_id) if staff_id else None
        return member.name if member else "未分派"

    slices: list[tuple[str, dict[str, Figures], Callable[[str], str]]] = [
        ("社区", board.by_community, lambda k: communities.get(k, k)),
        ("网格", board.by_grid, lambda k: grids.get(k, k)),
        ("人员", board.by_staff, staff_name),
    ]
    return [
        (f"按{kind}", [figure_row(f"{kind}：{name(k)}", f) for k, f in figures.items()])
        for kind, figures, name in slices
    ]


def figure_rows(board: Dashboard, directory: Directory) -> list[list[object]]:
    """The total, then by community, grid and staff member."""
    rows = [figure_row("合计", board.total)]
    for _, part in figure_slices(board, directory):
        rows.extend(part)
    return rows


def to_csv(headers: tuple[str, ...], rows: list[list[object]]) -> bytes:
    """CSV with a BOM, so Excel opens the Chinese headers correctly."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    for row in rows:
        # A cell starting with = + - @ would run as a formula in a spreadsheet: quote it.
        writer.writerow([f"'{v}" if isinstance(v, str) and v[:1] in "=+-@" else v for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(sheets: list[tuple[str, tuple[str, ...], list[list[object]]]]) -> bytes:
    """A workbook with one sheet per (title, headers, rows)."""
    book = Workbook()
    book.remove(book.active)
    for title, headers, rows in sheets:
        sheet = book.create_sheet(title)
        sheet.append(list(headers))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append([f"'{v}" if isinstance(v, str) and v[:1] == "=" else v for v in row])
        sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
