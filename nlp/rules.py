"""Classifier rules as data: weighted keywords per category plus the built-in cue lists."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

CATEGORIES = ("repair", "dispute", "service")

# Cues that say the matter is over or was never a request ("已经修好了", "不用派人了").
CANCEL_CUES: tuple[str, ...] = (
    "已经修好",
    "修好了",
    "已经好了",
    "已解决",
    "解决了",
    "不用派人",
    "不用了",
    "不用来了",
    "师傅来过了",
    "已处理",
    "搞定了",
    "恢复了",
    "来电了",
    "来水了",
)
# Announcements mention faults without reporting one ("停水通知", "温馨提示").
NOTICE_CUES: tuple[str, ...] = (
    "通知",
    "温馨提示",
    "公告",
    "请勿使用",
    "特此",
    "敬请",
    "望周知",
    "相互转告",
    "计划停水",
    "计划停电",
    "接龙",
    "团购",
    "演练",
)
# Emergencies that need people now.
URGENT_CUES: tuple[str, ...] = (
    "困人",
    "困在电梯",
    "关在电梯",
    "燃气泄漏",
    "煤气泄漏",
    "漏气",
    "煤气味",
    "燃气味",
    "冒烟",
    "着火",
    "起火",
    "失火",
    "火灾",
    "爆管",
    "水淹",
    "淹了",
    "受伤",
    "流血",
    "晕倒",
    "外墙脱落",
    "掉下来",
    "触电",
    "漏电",
)
# Words that suggest a bigger job than a 30-minute fix.
MAJOR_CUES: tuple[str, ...] = ("停水", "停电", "电梯", "爆管", "水淹", "暖气", "下水道", "化粪池")
COMPLEX_CUES: tuple[str, ...] = ("屋顶", "外墙", "防水", "楼顶", "整栋", "改造", "违建", "私搭乱建")


@dataclass(frozen=True)
class Rules:
    """Everything the classifier decides with; build one per community and swap it whole."""

    keywords: Mapping[str, Mapping[str, float]]
    cancel_cues: tuple[str, ...] = CANCEL_CUES
    notice_cues: tuple[str, ...] = NOTICE_CUES
    urgent_cues: tuple[str, ...] = URGENT_CUES
    major_cues: tuple[str, ...] = MAJOR_CUES
    complex_cues: tuple[str, ...] = COMPLEX_CUES
    threshold: float = 2.0
    version: int = 0
    _lowered: dict[str, dict[str, float]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for category in CATEGORIES:
            words = self.keywords.get(category, {})
            self._lowered[category] = {w.strip().lower(): float(v) for w, v in words.items()}

    def words(self, category: str) -> dict[str, float]:
        """The category's keywords, lower-cased, with their weights."""
        return self._lowered.get(category, {})
