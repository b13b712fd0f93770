""" "Me too": is a new report the same problem as an open ticket?

Fifty residents of one building report the same broken lift; the grid worker needs one
ticket that says "fifty households", not fifty tickets. But two different faults in one
building must stay two tickets, so a match needs all of: the same category (repairs and
disputes only: a service question is each resident's own), the same grid, no conflicting
building, and at least one shared topic word (电梯, 停水, 装修 …) from the classifier's evidence.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.domain import Category, Ticket

MERGEABLE = frozenset({Category.REPAIR, Category.DISPUTE})
MAX_TOPIC = 200

# Words that say something is wrong but not what: sharing one of these is no evidence that
# two reports are about the same thing.
GENERIC = frozenset(
    {
        "坏了", "坏掉", "停了", "不动了", "不行了", "不能用", "没用", "故障", "问题", "维修",
        "报修", "修理", "修一下", "师傅", "物业", "麻烦", "帮忙", "处理", "楼上", "楼下",
        "隔壁", "对门", "邻居", "我家", "到我家", "家里", "一直", "太吵", "吵死", "半夜",
        "晚上", "严重", "赶紧", "快点", "有人", "没人管",
    }
)  # fmt: skip


def topic_words(evidence: Iterable[tuple[str, str]]) -> str:
    """The topic of a report from the classifier's evidence as (rule, word) pairs: the
    matched keywords that name a thing, space-separated."""
    words: list[str] = []
    for rule, word in evidence:
        if rule == "keyword" and len(word) >= 2 and word not in GENERIC and word not in words:
            words.append(word)
    return " ".join(words)[:MAX_TOPIC]


def same_problem(ticket: Ticket, *, grid_id: str, building: str | None, topic: str) -> bool:
    """Whether a report (its grid, building and topic) is about this open ticket."""
    if ticket.category not in MERGEABLE or not ticket.is_open or ticket.grid_id != grid_id:
        return False
    known = ticket.location.get("building")
    if building and known and building != known:
        return False
    return bool(set(topic.split()) & set(ticket.topic.split()))


def find_same(
    candidates: Iterable[Ticket], *, grid_id: str, building: str | None, topic: str
) -> Ticket | None:
    """The oldest open ticket the report belongs to, if any (candidates come newest first)."""
    matches = [
        t for t in candidates if same_problem(t, grid_id=grid_id, building=building, topic=topic)
    ]
    return min(matches, key=lambda t: t.id) if matches else None
