"""Where in the compound a message is about: building, unit and room, as digits."""

from __future__ import annotations

import re

_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_NUM = r"(\d{1,4}|[零〇一二两三四五六七八九十]{1,4})"
_BUILDING_RE = re.compile(_NUM + r"\s*(?:号楼|号院|栋|幢|座|#楼|#|号(?=\s*\d|\s*单元))")
_UNIT_RE = re.compile(_NUM + r"\s*单元")
_ROOM_RE = re.compile(
    r"(?<![\d.:-])(\d{3,4})(?:\s*室|\s*房|(?![\d.:号楼栋幢座#单元点年月日元块米层分秒岁个人]))"
)
_ROOM_CN_RE = re.compile(r"单元\s*([零〇一二三四五六七八九]{3,4})(?![十])")
_HINT_RE = re.compile(r"[0-9号栋幢座单元#]")
_TRIPLE_RE = re.compile(r"(?<!\d)(\d{1,3})-(\d{1,2})-(\d{3,4})(?!\d)")


def chinese_number(text: str) -> int | None:
    """Convert 3, 三, 十二, 二十一 or 五零一 to an int; None when it is not a number."""
    if text.isdigit():
        return int(text)
    if any(ch not in _CN_DIGITS and ch != "十" for ch in text):
        return None
    if "十" in text:
        tens, _, ones = text.partition("十")
        tens_value = _CN_DIGITS.get(tens, 1) if tens else 1
        ones_value = _CN_DIGITS.get(ones, 0) if ones else 0
        return tens_value * 10 + ones_value
    value = 0
    for ch in text:
        value = value * 10 + _CN_DIGITS[ch]
    return value


def parse_location(text: str) -> dict[str, str]:
    """Find building, unit and room in normalised text; absent parts are left out.

    Understands 3号楼 / 3栋 / 三号楼 / 3# / 3幢, 2单元, 501 / 501室 / 五零一, and the
    building-unit-room shorthand 3-2-501.
    """
    found: dict[str, str] = {}
    if not _HINT_RE.search(text):
        return found
    if match := _TRIPLE_RE.search(text):
        return {
            "building": str(int(match.group(1))),
            "unit": str(int(match.group(2))),
            "room": match.group(3),
        }
    if match := _BUILDING_RE.search(text):
        number = chinese_number(match.group(1))
        if number is not None:
            found["building"] = str(number)
    if match := _UNIT_RE.search(text):
        number = chinese_number(match.group(1))
        if number is not None:
            found["unit"] = str(number)
    rest = _UNIT_RE.sub("单元", _BUILDING_RE.sub(" ", text))
    if match := _ROOM_RE.search(rest):
        found["room"] = match.group(1)
    elif match := _ROOM_CN_RE.search(rest):
        found["room"] = str(chinese_number(match.group(1)))
    return found
