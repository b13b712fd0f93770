"""First checks of the classifier; issue 3 adds the corpus and its floors."""

from __future__ import annotations

import pytest

from bot.config import CommunityFile
from nlp import Rules, classify, normalize, parse_location


@pytest.fixture(scope="module")
def rules(demo_file: CommunityFile) -> Rules:
    return Rules(keywords=demo_file.keywords)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("3号楼电梯坏了", "repair"),
        ("2号楼3单元楼道里水管漏水了，水流到电梯口了", "repair"),
        ("楼上半夜装修吵死了，天天扰民", "dispute"),
        ("社保卡在哪里补办", "service"),
        ("谢谢王师傅！", "none"),
        ("明天停水通知：9点到12点", "none"),
        ("团购鸡蛋接龙", "none"),
        ("师傅来过了，已经好了", "none"),
        ("不是漏水，是空调滴的", "none"),
        ("", "none"),
        ("👍👍👍", "none"),
    ],
)
def test_story_examples(rules: Rules, text: str, category: str) -> None:
    assert classify(text, rules).category == category


def test_evidence_names_the_words_that_decided(rules: Rules) -> None:
    result = classify("3号楼电梯坏了", rules)
    words = {(e.rule, e.word, e.category) for e in result.evidence}
    assert ("keyword", "电梯", "repair") in words
    assert ("keyword", "坏", "repair") in words
    assert 0 < result.confidence <= 1
    assert result.as_dict()["category"] == "repair"


def test_emergency_is_urgent(rules: Rules) -> None:
    result = classify("5号楼电梯困人了！！", rules)
    assert result.urgent
    assert result.category == "repair"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3号楼2单元501", {"building": "3", "unit": "2", "room": "501"}),
        ("三号楼漏水", {"building": "3"}),
        ("12栋楼顶", {"building": "12"}),
        ("5#电梯", {"building": "5"}),
        ("二十一号楼3单元1202室", {"building": "21", "unit": "3", "room": "1202"}),
        ("电梯坏了", {}),
    ],
)
def test_location(text: str, expected: dict[str, str]) -> None:
    assert parse_location(normalize(text)) == expected


def test_normalize_folds_width_and_noise() -> None:
    assert normalize("３号楼　电梯坏了！！！ @物业 https://x.cn/a 😡") == "3号楼 电梯坏了!"
