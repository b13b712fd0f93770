"""What community admins read: keyword commands, /classify, figures and the weekly note."""

from __future__ import annotations

from bot.domain import KeywordEntry
from bot.services.figures import Figures
from nlp import Classification

KIND_NAME = {
    "repair": "报修",
    "dispute": "纠纷",
    "service": "服务",
    "none": "非诉求",
    "cancel": "撤销提示词",
    "notice": "通知提示词",
    "chatter": "闲聊提示词",
    "question": "提问提示词",
    "complaint": "抱怨提示词",
}
KIND_BY_NAME = {**{v: k for k, v in KIND_NAME.items()}, **{k: k for k in KIND_NAME}}
RULE_NAME = {
    "keyword": "关键词",
    "cancel": "撤销",
    "notice": "通知",
    "chatter": "闲聊",
    "question": "提问",
    "complaint": "抱怨",
    "ordinary": "非紧急",
    "urgent": "紧急",
    "negated": "否定",
    "ngram": "字词模型",
    "urgent_model": "紧急字词模型",
    "tier": "难度",
}
TIER_NAME = {"general": "一般", "major": "较大", "complex": "特别复杂"}
SCOPE_DISTRICT = "全街道"

ADMINS_ONLY = "此命令仅限管理员使用。"
KW_USAGE = (
    "用法：\n"
    "/kw list [类别] — 查看关键词\n"
    "/kw add <类别> <词> [权重] — 添加或修改（默认权重 4：单独出现即可成单；"
    "低于 4 可能被语境否决）\n"
    "/kw del <类别> <词> — 删除\n"
    "类别：报修/repair、纠纷/dispute、服务/service，或提示词 cancel、notice、chatter、question。"
)
CLASSIFY_USAGE = "用法：/classify <一句话>，例如 /classify 3号楼电梯又坏了"
BAD = {
    "category": "未知类别：{detail}。",
    "word": "这个词不能使用：{detail}",
    "weight": "权重需为 0 到 100 之间的数字（收到：{detail}）。",
    "scope": "未知范围：{detail}。",
    "missing": "没有找到：{detail}。",
    "yaml": "YAML 无法导入：{detail}",
    "topic": "主题词需为 1 到 10 个词，每个不超过 40 字。",
    "text": "答复内容不能为空，且不超过 1500 字。",
}
NOTHING_CHANGED = "没有变化：该词已是这个设置。"


def bad(reason: str, detail: str = "") -> str:
    """Why an admin's edit was refused."""
    return BAD.get(reason, "无法保存：{detail}").format(detail=detail)


def scope_name(scope: str, names: dict[str, str]) -> str:
    """全街道 or the community's name."""
    return SCOPE_DISTRICT if scope == "*" else names.get(scope, scope)


def keyword_list(entries: list[KeywordEntry], limit: int = 80) -> str:
    """/kw list: words by category with weights, newest first, disabled ones marked."""
    if not entries:
        return "没有关键词。"
    lines: list[str] = []
    by_kind: dict[str, list[KeywordEntry]] = {}
    for entry in reversed(entries):
        by_kind.setdefault(entry.category, []).append(entry)
    shown = 0
    for kind, items in by_kind.items():
        words = []
        for entry in items:
            if shown >= limit:
                break
            mark = "" if entry.enabled else "（停用）"
            words.append(f"{entry.word} {entry.weight:g}{mark}")
            shown += 1
        lines.append(f"【{KIND_NAME.get(kind, kind)}】共 {len(items)} 个：" + "、".join(words))
    if shown < len(entries):
        lines.append(f"……仅显示前 {limit} 个，完整列表请在网页后台查看或导出。")
    return "\n".join(lines)


def keyword_saved(category: str, word: str, weight: float, scope: str, added: bool) -> str:
    """/kw add done."""
    verb = "已添加" if added else "已修改"
    kind = KIND_NAME.get(category, category)
    return f"✅ {verb}【{kind}】{word}（权重 {weight:g}，范围：{scope}），已立即生效。"


def keyword_deleted(category: str, word: str) -> str:
    """/kw del done."""
    return f"🗑 已删除【{KIND_NAME.get(category, category)}】{word}，已立即生效。"


def classification(result: Classification) -> str:
    """/classify: what the bot makes of a sentence and why."""
    lines = [f"类别：{KIND_NAME.get(result.category, result.category)}"]
    lines.append(f"置信度：{result.confidence:.2f}")
    lines.append(f"紧急：{'是 🚨' if result.urgent else '否'}")
    if result.category != "none":
        lines.append(f"难度：{TIER_NAME.get(result.tier, result.tier)}")
    location = "".join(
        f"{result.location[k]}{suffix}"
        for k, suffix in (("building", "号楼"), ("unit", "单元"), ("room", "室"))
        if result.location.get(k)
    )
    if location:
        lines.append(f"位置：{location}")
    if result.evidence:
        lines.append("依据：")
        for e in result.evidence[:12]:
            kind = RULE_NAME.get(e.rule, e.rule)
            target = f"→{KIND_NAME.get(e.category, e.category)}" if e.category else ""
            weight = f" {e.weight:g}" if e.weight else ""
            lines.append(f"  · {kind}「{e.word}」{target}{weight}")
    else:
        lines.append("依据：无匹配规则")
    return "\n".join(lines)


def weekly_note(received: int, resolved: int, on_time: int, satisfied: int) -> str:
    """晒单 / 回音壁: last week's figures in a few friendly lines."""
    if received == 0:
        return "📊 上周本群没有收到诉求。有任何问题，随时在群里说，我们马上处理！"
    return (
        f"📊 上周收到诉求 {received} 件，办结 {resolved} 件，按时 {on_time} 件，"
        f"满意 {satisfied} 件。感谢大家的支持！\n有问题随时在群里说，我们马上处理。"
    )


def summary(figures: Figures, days: int) -> str:
    """/report in private: an admin's view of the last days."""
    f = figures
    return (
        f"📊 近{days}天：收到诉求 {f.received} 件"
        f"（紧急 {f.urgent} 件，一次性告知 {f.answered} 件），"
        f"办结 {f.resolved} 件，办结率 {f.completion.percent()}；"
        f"按时办结率 {f.resolved_on_time.percent()}；满意率 {f.satisfaction.percent()}"
        f"（满意 {f.ratings['satisfied']}，基本满意 {f.ratings['basically']}，"
        f"不满意 {f.ratings['unsatisfied']}，未评价 {f.ratings['unrated']}）。"
        "\n详细图表和导出请打开网页后台。"
    )
