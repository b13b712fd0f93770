"""The classifier: rule syntax and semantics, normalisation, location, and its corpus floors."""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate
from pathlib import Path

import pytest

import nlp
from bot.config import CommunityFile
from nlp import Rules, classify, normalize, parse_location
from nlp.classifier import _ADVERB_PREFIX, _Message
from nlp.evaluate import Report, Row, evaluate, read_tsv, render
from nlp.rules import MAX_VARIANTS, compile_rule, pattern_anchors
from nlp.segment import cut, word_starts

DATA = Path(__file__).parent / "data"
TUNING_SETS = ("dev", *(f"tune{n}" if n > 1 else "tune" for n in range(1, 153)))
# Sets whose keyword rules were tuned on; tune4 only trained the n-gram model and the
# emergency families (see BENCHMARKS.md), so it has its own, measured floor below.
KEYWORD_TUNED = ("dev", "tune", "tune2", "tune3")


@pytest.fixture(scope="module")
def rules(demo_file: CommunityFile) -> Rules:
    return Rules(keywords=demo_file.keywords)


def category(text: str, rules: Rules) -> str:
    return classify(text, rules).category


# -- what residents say -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3号楼电梯坏了", "repair"),
        ("2号楼3单元楼道里水管漏水了，水流到电梯口了", "repair"),
        ("楼上半夜装修吵死了", "dispute"),
        ("社保卡在哪里补办", "service"),
        ("谢谢王师傅！", "none"),
        ("明天停水通知：9点到12点", "none"),
        ("团购鸡蛋接龙", "none"),
        ("@所有人 周六消防演练", "none"),
        ("师傅来过了，已经好了", "none"),
        ("", "none"),
        ("👍👍👍", "none"),
    ],
)
def test_story_examples(rules: Rules, text: str, expected: str) -> None:
    assert category(text, rules) == expected


def test_traditional_and_full_width_text(rules: Rules) -> None:
    assert normalize("電梯壞了") == "电梯坏了"
    assert normalize("３号楼ＡＢ") == "3号楼ab"
    assert category("電梯壞了，麻煩物業看一下", rules) == "repair"
    assert category("樓上裝修太吵了", rules) == "dispute"


def test_noise_is_normalised_away() -> None:
    assert normalize("３号楼　电梯坏了！！！ @物业 https://x.cn/a 😡[图片]") == "3号楼 电梯坏了!"
    assert normalize("@所有人 演练") == "@所有人 演练"  # announcements keep their marker


def test_forged_characters_do_not_crash(rules: Rules) -> None:
    assert classify("电梯坏了\x00\ud800\U0010ffff", rules).category == "repair"
    assert classify("\x00" * 50, rules).category == "none"


def test_evidence_names_the_words_that_decided(rules: Rules) -> None:
    result = classify("3号楼电梯坏了", rules)
    fired = {(e.rule, e.word, e.category) for e in result.evidence}
    assert ("keyword", "电梯", "repair") in fired
    assert ("keyword", "坏", "repair") in fired
    assert 0.5 <= result.confidence <= 1
    as_dict = result.as_dict()
    assert set(as_dict) == {"category", "confidence", "urgent", "tier", "location", "evidence"}
    assert {"rule": "keyword", "word": "电梯", "category": "repair", "weight": 1.0} in as_dict[
        "evidence"
    ]
    assert "电梯" in result.tokens


@pytest.mark.parametrize(
    "text",
    [
        "5号楼电梯困人了！！快来人",
        "楼道里有很重的煤气味，是不是漏气了",
        "配电箱冒烟了！！有火星",
        "主水管爆了！！水淹到一楼大厅了",
        "外墙瓷砖掉下来了，差点砸到人！",
        "邻居家的狗把我咬了，流了好多血",
        "家里老人走丢了，能帮忙找一下吗",
        "有人晕倒在单元门口了",
        "有个外卖小哥在楼下骑车摔了，满脸是血，躺着不动",
    ],
)
def test_emergencies_are_urgent(rules: Rules, text: str) -> None:
    result = classify(text, rules)
    assert result.urgent
    assert result.is_request
    assert result.tier in ("major", "complex")


def test_emergency_picks_who_must_go(rules: Rules) -> None:
    assert category("有人晕倒在单元门口了", rules) == "service"
    assert category("8号楼电梯里困了两个人", rules) == "repair"


def test_announcement_of_an_emergency_is_not_one(rules: Rules) -> None:
    assert not classify("温馨提示：雨天注意防止漏电，请大家相互转告", rules).urgent
    # a notice cue and a cancel cue, neither enough alone, count together
    reassured = classify("刚才的救护车是送隔壁小区的老人，大家别担心", rules)
    assert (reassured.category, reassured.urgent) == ("none", False)
    assert {"notice", "cancel"} <= {e.rule for e in reassured.evidence}


def test_a_person_missing_is_urgent_a_thing_of_theirs_is_not(rules: Rules) -> None:
    assert classify("小孩在小区里玩，现在找不到了，大家帮忙看看", rules).urgent
    assert classify("我家老人早上出去买菜，到现在找不到人", rules).urgent
    lost_booklet = classify("孩子的疫苗本找不到了，可以补一个吗", rules)
    assert lost_booklet.category == "service"
    assert not lost_booklet.urgent


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("不是漏水，是空调水，没事了", "none"),
        ("是不是跳闸了，整栋楼没电", "repair"),  # a question, not a negation
        ("还没来水，等了一上午了", "repair"),  # 来水 (cancel) is negated by 还没
        ("电梯已经修好了，谢谢物业", "none"),
    ],
)
def test_negation_and_cancel_cues(rules: Rules, text: str, expected: str) -> None:
    assert category(text, rules) == expected


@pytest.mark.parametrize(
    ("text", "urgent"),
    [
        ("健身器材的踏板断了，老人上去差点摔", False),  # a near miss: a repair, no emergency
        ("健身器材的踏板断了，老人上去摔了，起不来", True),
        ("楼道窗户的玻璃松了，怕哪天掉下去", False),  # a fear
        ("楼道窗户的玻璃掉下去了，砸到人了", True),
        ("楼上的冰柜压缩机掉到楼下来了，差点砸到人", True),  # the rule names the near miss
    ],
)
def test_a_near_miss_or_a_fear_is_no_emergency(rules: Rules, text: str, urgent: bool) -> None:
    """An emergency word after 差点 / 怕哪天 / 万一 in its clause reports no emergency, unless
    the emergency rule itself is written with it (差点砸到: something fell)."""
    result = classify(text, rules)
    assert result.category == "repair"
    assert result.urgent is urgent


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a fault reported after 但是 / 又坏: "fixed" before it does not close the matter
        ("水管修好了，不过现在又开始漏了", "repair"),
        ("电梯修好了，但是没两天又坏了", "repair"),
        ("楼上说好了不吵了，可是昨晚又吵到一点", "dispute"),
        # a notice that did not help: 也没用 turns the message round by itself
        ("有人在楼道里抽烟，整个楼道都是烟味，贴了告示也没用", "dispute"),
        # a restoration time (a notice cue) promised, and still no power
        ("说好了5点前恢复供电，现在还没来电", "repair"),
        # promised a visit, then chased: nobody came
        ("电梯坏了，物业说明天来修，结果一周了也没来", "repair"),
        # promised to come at once; a day later nobody had (了没来 turns it by itself)
        ("车库里有辆外地车占了我买的车位，打挪车电话说马上来，一天了没来", "dispute"),
        ("我家墙面被隔壁装修钻穿了一个洞，他们说明天补，一周了没动静", "dispute"),
        # nothing reported after the turn: the cancel cue stands
        ("已经修好了，但是还是谢谢大家关心", "none"),
        ("电梯卡了一下，又好了", "none"),
    ],
)
def test_a_turn_overrules_the_cancel_and_notice_cues_before_it(
    rules: Rules, text: str, expected: str
) -> None:
    result = classify(text, rules)
    assert result.category == expected
    overruled = [e for e in result.evidence if e.rule == "overruled"]
    assert bool(overruled) == (expected != "none")
    assert all(e.word in text or e.word.startswith("re:") for e in overruled)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3号楼2单元501", {"building": "3", "unit": "2", "room": "501"}),
        ("三号楼漏水", {"building": "3"}),
        ("12栋楼顶", {"building": "12"}),
        ("5#电梯", {"building": "5"}),
        ("3幢", {"building": "3"}),
        ("二十一号楼3单元1202室", {"building": "21", "unit": "3", "room": "1202"}),
        ("2-3-502 卫生间", {"building": "2", "unit": "3", "room": "502"}),
        ("三号楼四单元六零二", {"building": "3", "unit": "4", "room": "602"}),
        ("爬了18楼", {}),
        ("明天9:00-12:00停水", {}),
        ("电梯坏了", {}),
    ],
)
def test_location(text: str, expected: dict[str, str]) -> None:
    assert parse_location(normalize(text)) == expected


# -- rule syntax ------------------------------------------------------------------------


def test_one_character_words_must_begin_a_word() -> None:
    rules = Rules(keywords={"repair": {"修": 3.0}}, model=None)
    assert category("麻烦修一下", rules) == "repair"
    assert category("楼上在装修", rules) == "none"  # 修 inside 装修
    assert category("又坏了又修", rules) == "repair"


def test_phrases_need_their_parts_in_order_within_one_clause() -> None:
    rules = Rules(keywords={"repair": {"灯+不亮": 3.0}}, model=None)
    assert category("楼道灯又不亮了", rules) == "repair"
    assert category("不亮的是灯", rules) == "none"  # wrong order
    assert category("灯很好，不亮的是招牌", rules) == "none"  # another clause


def test_any_order_phrases_take_the_closest_set_of_parts() -> None:
    """An earlier occurrence of one part does not hide a closer set later in the message:
    楼上 far back, 他们 next to 电话不接 in its own clause."""
    rules = Rules(keywords={"dispute": {"电话不接&他们|楼上": 3.0}}, model=None, urgency=None)
    assert category("楼上漏水泡了我家天花板很多天了,他们电话不接", rules) == "dispute"
    assert category("电话不接的是他们", rules) == "dispute"  # any order
    assert category("他们很好,电话不接的是物业", rules) == "none"  # not within one clause
    assert category("楼上漏水泡了我家天花板很多天了,电话不接", rules) == "none"  # too far


def test_patterns_and_bad_rules() -> None:
    rules = Rules(
        keywords={"repair": {r"re:\d+楼没水": 3.0, "re:(unclosed": 1.0, "电梯": 3.0}}, model=None
    )
    assert category("12楼没水", rules) == "repair"
    assert category("电梯", rules) == "repair"  # the good rules still work
    assert len(rules.errors) == 1
    assert "unclosed" in rules.errors[0]


def test_an_emergency_goes_where_its_keywords_point_else_where_its_rule_names() -> None:
    """Routing words of at least ``urgent_routing`` decide who goes to an emergency (a
    gas smell in a lift is the lift's repair); below that, the emergency rule's category."""
    table = {"repair": {"电梯": 2.0}, "service": {"独居": 1.0}}
    text = "电梯里有个独居老人晕倒了"
    routed = classify(text, Rules(keywords=table, model=None, urgency=None))
    assert (routed.category, routed.urgent) == ("repair", True)
    named = classify(text, Rules(keywords=table, model=None, urgency=None, urgent_routing=3.0))
    assert (named.category, named.urgent) == ("service", True)


def test_an_entry_with_too_many_alternatives_is_left_out_not_the_rest() -> None:
    many = "|".join(f"词{i}" for i in range(MAX_VARIANTS + 1))
    rules = Rules(keywords={"repair": {many: 2.0, "电梯": 3.0}}, model=None)
    assert len(rules.errors) == 1
    assert "more than" in rules.errors[0]
    assert category("电梯", rules) == "repair"


def test_a_rebuild_gives_the_same_rules_and_errors_again() -> None:
    """Compiled entries are kept between builds (a rule change edits a few); a kept rule is
    the one compiling would give, and a kept error is reported again."""
    table = {"repair": {"电梯+坏": 3.0, "re:(bad": 1.0, "漏水": 2}, "dispute": {"吵": 1.0}}
    first = Rules(keywords=table, model=None)
    second = Rules(keywords=table, model=None)
    assert second.rules == first.rules
    assert second.errors == first.errors
    assert len(first.errors) == 1
    assert "bad regular expression" in first.errors[0]
    assert [r for r in second.rules if r.kind == "repair"] == [
        compile_rule("repair", "电梯+坏", 3.0),
        compile_rule("repair", "漏水", 2.0),
    ]
    changed = Rules(keywords={**table, "repair": {"电梯+坏": 4.0}}, model=None)
    assert changed.words("repair") == {"电梯+坏": 4.0}
    assert changed.errors == []


def test_patterns_with_and_without_an_anchor_fire_in_rule_order() -> None:
    # \d{3,} has no literal the automaton could see first: it runs on every message; the
    # anchored ones run only when their literal (坏, 漏) is in the message, and all of them
    # in the order written, not the order their words come in the message.
    rules = Rules(
        keywords={"repair": {r"re:[坏破]了": 2.0, r"re:\d{3,}": 1.0, r"re:漏.{0,2}水": 1.0}},
        model=None,
    )
    assert [rules.rules[i].text for i in rules.unanchored] == [r"re:\d{3,}"]
    result = classify("厨房漏了点水，501的龙头坏了", rules)
    written = [r"re:[坏破]了", r"re:\d{3,}", r"re:漏.{0,2}水"]
    assert [e.word for e in result.rule_evidence] == written
    assert result.category == "repair"
    assert [e.word for e in classify("501", rules).rule_evidence] == [r"re:\d{3,}"]
    assert [e.word for e in classify("灯坏了", rules).rule_evidence] == [r"re:[坏破]了"]


def test_longer_match_of_another_category_wins() -> None:
    rules = Rules(keywords={"repair": {"门禁": 3.0}, "service": {"门禁卡": 3.0}}, model=None)
    assert category("门禁卡丢了", rules) == "service"
    assert category("门禁坏了", rules) == "repair"


def test_keywords_written_in_traditional_or_full_width_still_match() -> None:
    rules = Rules(keywords={"repair": {"電梯": 3.0, "ＡＢ门": 3.0}}, model=None)
    assert category("电梯", rules) == "repair"
    assert category("ab门", rules) == "repair"


def test_empty_rules_classify_everything_as_none() -> None:
    rules = Rules(keywords={}, model=None)
    assert category("3号楼电梯坏了", rules) == "none"
    assert classify("5号楼电梯困人了", rules).urgent  # built-in cues still apply


def test_long_messages_are_cut_not_refused(rules: Rules) -> None:
    result = classify("3号楼电梯坏了。" + "啊" * 100_000, rules)
    assert result.category == "repair"
    assert len(result.normalized) <= nlp.MAX_CLASSIFY_CHARS


def test_nlp_classify_stays_callable_after_importing_the_command() -> None:
    import nlp.classify as command

    rules = Rules(keywords={"repair": {"电梯": 3.0}}, model=None)
    assert nlp.classify("电梯", rules).category == "repair"
    assert callable(command)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "\r\n\r\n",
        "abc 3号楼 x1y2 电梯\r\n坏了  ",
        "1号楼2单元501室电梯坏了!!!",
        "Wi-Fi密码3.5元%，ok好的OK",
        "電梯壞了😀😀",
    ],
)
def test_word_starts_is_where_cut_starts_its_words(text: str) -> None:
    assert word_starts(text) == [0, *accumulate(len(t) for t in cut(text))][:-1]


def test_word_starts_agrees_with_cut_on_every_corpus_message() -> None:
    """The classifier's own route through jieba's word graph gives jieba's word starts, on
    the raw and the normalised text of every corpus message."""
    checked = 0
    for name in (*TUNING_SETS, "heldout"):
        for row in read_tsv(DATA / f"{name}.tsv")[0]:
            for text in (row.text, normalize(row.text)):
                assert word_starts(text) == [0, *accumulate(len(t) for t in cut(text))][:-1], text
                checked += 1
    assert checked > 10_000


def test_windowed_word_starts_agree_with_full_segmentation() -> None:
    """The classifier segments a window around a character instead of the whole message;
    on every CJK character of the corpora both give the same word-start decision."""
    checked = 0
    for name in (*TUNING_SETS, "heldout"):
        rows, _ = read_tsv(DATA / f"{name}.tsv")
        for row in rows:
            clean = normalize(row.text)
            starts = [0, *accumulate(len(t) for t in cut(clean))]
            message = _Message(clean)
            for index, char in enumerate(clean):
                if "\u4e00" <= char <= "\u9fff":
                    token_start = starts[bisect_right(starts, index) - 1]
                    full = all(c in _ADVERB_PREFIX for c in clean[token_start:index])
                    assert message.starts_word(index) == full, (clean, index)
                    checked += 1
    assert checked > 15_000


# -- the corpora and their floors ---------------------------------------------------------


def test_corpus_shape() -> None:
    rows = [row for name in (*TUNING_SETS, "heldout") for row in read_tsv(DATA / f"{name}.tsv")[0]]
    assert len(rows) >= 600
    share_none = sum(row.label == "none" for row in rows) / len(rows)
    assert 0.28 <= share_none <= 0.40
    assert sum(bool(row.urgent) for row in rows) >= 50
    assert {row.label for row in rows} == {"repair", "dispute", "service", "none"}


@pytest.mark.parametrize("name", KEYWORD_TUNED)
def test_tuning_sets_stay_above_the_floors(rules: Rules, name: str) -> None:
    """The rules were tuned on these sets: they must stay at the issue's targets, so that a
    rule edit that breaks what used to work shows up here."""
    rows, problems = read_tsv(DATA / f"{name}.tsv")
    assert problems == []
    report = evaluate(rows, rules)
    assert report.macro_f1 >= 0.92
    assert report.false_ticket_rate <= 0.03
    assert report.missed_request_rate <= 0.05
    assert report.urgent_recall == 1.0


# -- the n-gram backoff -------------------------------------------------------------------


def test_shipped_model_is_what_training_on_the_tuning_corpora_gives(tmp_path: Path) -> None:
    """Edit a corpus, run python -m nlp.train: the shipped file must stay in step."""
    from nlp.ngram import MODEL_FILE
    from nlp.train import HELD_OUT, build, training_files

    assert HELD_OUT not in {p.name for p in training_files()}
    fresh = tmp_path / "model.tsv"
    build().save(fresh)
    assert fresh.read_text(encoding="utf-8") == MODEL_FILE.read_text(encoding="utf-8")


def test_shipped_urgency_model_is_what_training_gives(tmp_path: Path) -> None:
    """The urgency model learns from the tuning sets and the written emergencies and
    chatter, never from the held-out set."""
    from nlp.ngram import URGENCY_FILE, NgramModel
    from nlp.train import HELD_OUT, build_urgency, urgency_files

    names = {p.name for p in urgency_files()}
    assert HELD_OUT not in names
    assert {"round10.tsv", "round21.tsv", "tune.tsv"} <= names
    fresh = tmp_path / "urgency.tsv"
    build_urgency().save(fresh)
    assert fresh.read_text(encoding="utf-8") == URGENCY_FILE.read_text(encoding="utf-8")
    assert NgramModel.load(URGENCY_FILE).columns == ("urgent",)


def test_the_urgency_model_flags_emergencies_no_rule_names(rules: Rules) -> None:
    """A request whose wording reads as an emergency is urgent, with the model's n-grams as
    evidence; it never turns a non-request into a ticket, nor overrides a cancel cue."""
    assert rules.urgency is not None
    sinking = classify("空调外机的支架锈得只剩一半了，整个外机往下沉", rules)
    assert sinking.category == "repair"
    assert sinking.urgent
    assert not any(e.rule == "urgent" for e in sinking.evidence)  # no rule named it
    assert [e.rule for e in sinking.evidence][-1] == "urgent_model"
    calm = Rules(keywords=rules.keywords, urgency=None)
    assert not classify("空调外机的支架锈得只剩一半了，整个外机往下沉", calm).urgent
    # ordinary requests stay ordinary
    for text in ("3号楼电梯坏了", "楼上半夜装修吵死了", "社保卡在哪里补办"):
        assert not classify(text, rules).urgent, text
    # whatever its odds, a message that is not a request is left alone
    eager = Rules(keywords=rules.keywords, urgency_threshold=-1000.0)
    for text in ("谢谢大家，今天天气真好", "已经修好了，谢谢物业", "温馨提示：明天停水"):
        result = classify(text, eager)
        assert result.category == "none", text
        assert not result.urgent, text
    # nor a request that denies the emergency a rule found in it (打不着火 is not 着火)
    assert classify("厨房的燃气灶打不着火", eager).urgent is False
    assert any(
        e.rule == "negated" and e.word == "着火" for e in classify("燃气灶打不着火", eager).evidence
    )
    assert classify("厨房的燃气灶坏了", eager).urgent  # nothing denied: the model decides


def test_an_ordinary_matter_is_not_flagged_by_the_urgency_model_but_still_by_a_rule(
    rules: Rules,
) -> None:
    """The built-in ``ordinary`` list (水箱溢水) keeps the urgency model's guess out, however
    high its odds; an emergency rule in the same message still makes it urgent."""
    from dataclasses import replace

    assert "水箱溢水" in rules.cues.groups["ordinary"]
    eager = Rules(keywords=rules.keywords, urgency_threshold=-1000.0)
    tank = classify("楼顶水箱溢水从楼梯往下流", eager)
    assert tank.category == "repair"
    assert tank.urgent is False
    assert any(e.rule == "ordinary" and e.word == "水箱溢水" for e in tank.evidence)
    # the same message without the list: the eager model flags it
    bare = replace(rules.cues, groups={**rules.cues.groups, "ordinary": {}})
    assert classify(
        "楼顶水箱溢水从楼梯往下流",
        Rules(keywords=rules.keywords, cues=bare, urgency_threshold=-1000.0),
    ).urgent
    # a rule still decides: water running down the stairs into the power room
    power = classify("地下车库的消防水箱溢水了，水顺着楼梯往配电室里流", eager)
    assert power.urgent
    assert any(e.rule == "urgent" for e in power.evidence)
    # admins cannot edit the list: it corrects the model, not a compound's words
    assert "ordinary" not in nlp.EDITABLE_KINDS


def test_a_model_file_without_a_columns_line_holds_the_categories(tmp_path: Path) -> None:
    from nlp.ngram import CATEGORIES, NgramModel

    legacy = tmp_path / "legacy.tsv"
    legacy.write_text("#prior\t-0.3\t-0.6\t-0.7\n电梯\t1\t-1\t0.5\n", encoding="utf-8")
    model = NgramModel.load(legacy)
    assert model.columns == CATEGORIES
    assert model.log_odds("电梯") == pytest.approx(
        {"repair": 0.7, "dispute": -1.6, "service": -0.2}
    )


def test_model_odds_are_the_sum_over_the_known_ngrams_of_each_message() -> None:
    """The automaton lookup gives naive Bayes' definition: the prior plus the odds of every
    distinct known 1-3-gram (one that repeats counts once), on every corpus message, on
    text with symbols and letters, for both shipped models and a tiny one trained here."""
    from nlp.ngram import NgramModel, default_model, default_urgency_model, features

    examples = [("repair", "电梯坏"), ("dispute", "楼上吵"), ("service", "社保"), ("none", "谢")]
    tiny = NgramModel.train(examples * 3)  # each n-gram in three messages: kept
    assert tiny.odds
    texts = [normalize(r.text) for name in TUNING_SETS for r in read_tsv(DATA / f"{name}.tsv")[0]]
    texts += ["", "!!!", "电梯电梯电梯坏坏坏", "3#楼 abc 电梯,坏了"]
    for model in (default_model(), default_urgency_model(), tiny, NgramModel((0.1, 0.2, 0.3), {})):
        assert model is not None
        for text in texts:
            rows = [model.odds[g] for g in features(text) if g in model.odds]
            expected = [p + sum(row[i] for row in rows) for i, p in enumerate(model.prior)]
            got = list(model.log_odds(text).values())
            assert got == pytest.approx(expected, abs=1e-9), text


def test_the_shared_ngram_pass_gives_each_models_own_odds(rules: Rules) -> None:
    """The classifier finds a message's n-grams once for both models; each model's odds
    from that shared pass are exactly (to the last bit) what the model gives alone, also
    when one of the two models is absent."""
    from nlp.ngram import gram_index

    assert rules.model is not None
    assert rules.urgency is not None
    texts = [normalize(r.text) for name in TUNING_SETS for r in read_tsv(DATA / f"{name}.tsv")[0]]
    texts += ["", "!!!", "电梯电梯电梯坏坏坏", "3#楼 abc 电梯,坏了", "漏"]
    alone = gram_index(None, rules.urgency)
    for text in texts:
        grams = rules.grams.grams(text)
        assert rules.grams.log_odds(0, grams) == rules.model.log_odds(text), text
        assert rules.grams.log_odds(1, grams) == rules.urgency.log_odds(text), text
        assert alone.log_odds(1, alone.grams(text)) == rules.urgency.log_odds(text), text


@pytest.mark.parametrize(
    ("pattern", "anchors"),
    [
        (r"说(了)?[，,]?(明天|下周)", ("说",)),  # a literal outside any group
        (r"(社区(?!医院)|居委会)[^。]{0,14}(吗|么)", ("社区", "居委会")),  # one per alternative
        (r"(是正常的|[，,]\s*正常的)", ("是正常的", "正常的")),
        (r"(a|b*)x?", ()),  # an alternative with no literal: no anchor, the scan always runs
        (r"[开关]不了", ("不了",)),
        (r"\d+[点时]", ()),  # no literal every match must hold
    ],
)
def test_pattern_anchors(pattern: str, anchors: tuple[str, ...]) -> None:
    assert pattern_anchors(pattern) == anchors


def test_every_shipped_pattern_is_anchored(rules: Rules) -> None:
    """A pattern without an anchor is a regex scan of every message; the shipped ones all have
    one, and an anchored pattern still finds what it finds unanchored (every corpus text)."""
    assert [rules.rules[i].text for i in rules.patterns if not rules.anchored[i]] == []
    texts = [normalize(r.text) for name in TUNING_SETS for r in read_tsv(DATA / f"{name}.tsv")[0]]
    for rule_id in rules.patterns:
        rule = rules.rules[rule_id]
        assert rule.pattern is not None
        anchors = pattern_anchors(rule.pattern.pattern)
        for text in texts:
            if rule.pattern.search(text):
                assert any(anchor in text for anchor in anchors), (rule.text, text)


def test_repeated_rules_are_found_and_the_shipped_ones_do_not_grow(rules: Rules) -> None:
    """A word written twice for one kind (two entries, or an alternative of one entry written
    again alone) fires twice and adds its weight twice. ``Rules.repeated`` finds them; the
    shipped rules hold 59 such repeats (merging them changes scores, so it needs a measured
    round), and a rule edit must not add more."""
    table = {"repair": {"吹倒|刮倒": 2.0, "刮倒": 1.5, "电梯": 1.0}, "dispute": {"刮倒": 1.0}}
    made = Rules(keywords=table)
    own = {key: n for key, n in made.repeated().items() if key[0] in ("repair", "dispute")}
    assert own == {("repair", "刮倒"): 2}  # the built-in cue lists have repeats of their own
    assert classify("大风把棚子刮倒了", made).scores["repair"] == 3.5  # why it matters
    repeated = rules.repeated()
    assert len(repeated) <= 59, sorted(repeated)


def test_model_alone_opens_a_ticket_only_where_nothing_speaks_against_it() -> None:
    """With no keyword at all the wording model may open a ticket, at its usual cap: its
    pull alone must reach the threshold. A cancel, notice or chatter cue stops it, and
    ``model_alone=False`` keeps it to messages some keyword points at."""
    keywordless = Rules(keywords={})
    result = classify("3号楼电梯坏了好几天了", keywordless)
    assert result.category == "repair"
    assert not any(e.rule == "keyword" for e in result.evidence)
    ngram = [e for e in result.evidence if e.rule == "ngram"]
    assert len(ngram) == 1
    assert ngram[0].category == "repair"
    assert keywordless.threshold <= ngram[0].weight <= keywordless.model_cap
    assert category("3号楼电梯坏了好几天了，已经修好了", keywordless) == "none"  # a cancel cue
    assert category("今天天气不错", keywordless) == "none"  # the model's pull is too weak
    off = Rules(keywords={}, model_alone=False)
    for text in ("3号楼电梯坏了好几天了", "楼上半夜装修吵死了", "社保卡在哪里补办"):
        assert category(text, off) == "none"


def test_model_tips_a_borderline_message_and_says_so(rules: Rules) -> None:
    text = "电梯一直卡着"
    assert category(text, Rules(keywords=rules.keywords, model=None)) == "none"
    result = classify(text, rules)
    assert result.category == "repair"
    ngram = [e for e in result.evidence if e.rule == "ngram"]
    assert len(ngram) == 1
    assert ngram[0].category == "repair"
    assert 0 < ngram[0].weight <= rules.model_cap
    assert ngram[0].word  # the strongest n-grams, e.g. 一直·电梯一


def test_a_decisive_keyword_outvotes_the_model(rules: Rules) -> None:
    """The wording model drops a category named by one keyword of weight 4 or more (the
    admins' default) by at most 0.5, and any category by at most its cap: where such a
    keyword, or rule evidence of the threshold plus the cap in all, names a category and no
    cue speaks against it, the message is a request."""
    checked = 0
    for name in TUNING_SETS:
        for row in read_tsv(DATA / f"{name}.tsv")[0]:
            result = classify(row.text, rules)
            against = {"cancel", "notice", "chatter"} & {e.rule for e in result.evidence}
            decisive = any(
                e.rule == "keyword" and e.weight >= rules.model_decisive for e in result.evidence
            )
            plenty = max(result.scores.values()) >= rules.threshold + rules.model_cap
            if (decisive or plenty) and not against:
                assert result.category != "none", row.text
                checked += 1
    assert checked > 300


def test_without_model_alone_the_model_never_opens_a_ticket_even_when_always_consulted(
    rules: Rules, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without any keyword evidence, and with ``model_alone`` off, the model is not asked,
    whatever the reach says."""
    import nlp.classifier as classifier_module

    monkeypatch.setattr(classifier_module, "_within_reach", lambda *args: True)
    keywordless = Rules(keywords={}, model_alone=False)
    for text in ("房屋出租，7号楼2单元3楼，家电齐全", "电梯坏了好几天了", "楼上半夜装修吵死了"):
        assert classify(text, keywordless).category == "none"


def test_skipping_the_model_out_of_reach_changes_no_decision(
    rules: Rules, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nlp.classifier as classifier_module

    texts = [row.text for name in TUNING_SETS for row in read_tsv(DATA / f"{name}.tsv")[0]]
    fast = [(r.category, r.urgent) for r in (classify(t, rules) for t in texts)]
    monkeypatch.setattr(classifier_module, "_within_reach", lambda *args: True)
    always = [(r.category, r.urgent) for r in (classify(t, rules) for t in texts)]
    assert fast == always


def test_later_tuning_sets_do_not_regress(rules: Rules) -> None:
    """Held out until their errors were read; keywords were not tuned on them line by line,
    so they get measured floors rather than the targets."""
    floors = (
        ("tune4", 0.91, 0.04, 0.05),
        ("tune5", 0.97, 0.041, 0.01),
        ("tune6", 0.98, 0.014, 0.007),
        ("tune7", 0.96, 0.01, 0.01),
        ("tune8", 0.98, 0.014, 0.01),
        ("tune9", 0.96, 0.005, 0.027),
        ("tune10", 0.97, 0.015, 0.015),  # round 40: the stronger wording model costs two
        ("tune11", 0.99, 0.005, 0.005),
        ("tune12", 0.99, 0.005, 0.005),
        ("tune13", 0.99, 0.005, 0.005),
        ("tune14", 0.959, 0.048, 0.015),
        ("tune15", 0.99, 0.005, 0.005),
        ("tune16", 0.99, 0.005, 0.005),
        ("tune17", 0.99, 0.005, 0.005),
        ("tune18", 0.99, 0.026, 0.005),
        ("tune19", 0.99, 0.005, 0.005),
        ("tune20", 0.97, 0.026, 0.005),
        ("tune21", 0.98, 0.005, 0.005),
        ("tune22", 0.99, 0.005, 0.005),
        ("tune23", 0.99, 0.005, 0.005),
        ("tune24", 0.98, 0.005, 0.005),
        ("tune25", 0.99, 0.005, 0.005),
        ("tune26", 0.99, 0.005, 0.005),
        ("tune27", 0.99, 0.005, 0.005),
        ("tune28", 0.98, 0.005, 0.005),
        ("tune29", 0.98, 0.005, 0.005),
        ("tune30", 0.98, 0.005, 0.005),
        ("tune31", 0.98, 0.026, 0.005),
        ("tune32", 0.98, 0.026, 0.005),
        ("tune33", 0.98, 0.026, 0.005),
        ("tune34", 0.98, 0.026, 0.005),
        ("tune35", 0.98, 0.026, 0.02),  # round 40: one enquiry the wording model outvotes
        ("tune36", 0.98, 0.026, 0.005),
        ("tune37", 0.98, 0.026, 0.005),
        ("tune38", 0.98, 0.026, 0.005),
        ("tune39", 0.96, 0.026, 0.005),  # two emergencies routed to another category
        ("tune40", 0.98, 0.026, 0.005),
        ("tune41", 0.97, 0.026, 0.005),  # a missing grandmother routed as a repair
        ("tune42", 0.98, 0.026, 0.005),
        ("tune43", 0.98, 0.026, 0.005),
        ("tune44", 0.98, 0.026, 0.005),
        ("tune45", 0.98, 0.026, 0.005),
        ("tune46", 0.98, 0.026, 0.005),
        ("tune47", 0.98, 0.026, 0.005),
        ("tune48", 0.98, 0.026, 0.005),
        ("tune49", 0.98, 0.026, 0.005),
        ("tune50", 0.98, 0.026, 0.02),  # a ballot box prised open reads as an election notice
        ("tune51", 0.98, 0.026, 0.005),
        ("tune52", 0.98, 0.026, 0.005),
        ("tune53", 0.98, 0.026, 0.005),
        ("tune54", 0.98, 0.026, 0.005),
        ("tune55", 0.98, 0.026, 0.005),
        ("tune56", 0.98, 0.026, 0.005),
        ("tune57", 0.98, 0.026, 0.005),
        ("tune58", 0.97, 0.026, 0.005),  # a hand in a lift door, a neighbour's leak: as repairs
        ("tune59", 0.98, 0.026, 0.005),
        ("tune60", 0.98, 0.026, 0.005),
        ("tune61", 0.98, 0.026, 0.005),
        ("tune62", 0.98, 0.026, 0.005),
        ("tune63", 0.98, 0.026, 0.005),
        ("tune64", 0.98, 0.026, 0.005),
        ("tune65", 0.98, 0.026, 0.005),
        ("tune66", 0.98, 0.026, 0.005),
        ("tune67", 0.98, 0.026, 0.005),
        ("tune68", 0.98, 0.026, 0.005),
        ("tune69", 0.98, 0.026, 0.005),
        ("tune70", 0.98, 0.026, 0.005),
        ("tune71", 0.98, 0.026, 0.005),
        ("tune72", 0.98, 0.026, 0.005),
        # a stick fight routed by its bleeding, a fee scam told without victims: not yet rules
        ("tune73", 0.97, 0.026, 0.02),
        ("tune74", 0.98, 0.026, 0.005),
        ("tune75", 0.98, 0.026, 0.005),
        ("tune76", 0.98, 0.026, 0.005),
        ("tune77", 0.98, 0.026, 0.005),
        ("tune78", 0.98, 0.026, 0.02),  # "has the check-up been announced" is not yet a rule
        ("tune79", 0.98, 0.026, 0.005),
        ("tune80", 0.98, 0.026, 0.005),
        ("tune81", 0.98, 0.026, 0.005),
        ("tune82", 0.98, 0.026, 0.005),
        ("tune83", 0.98, 0.026, 0.005),
        ("tune84", 0.98, 0.026, 0.005),
        ("tune85", 0.98, 0.026, 0.005),
        ("tune86", 0.98, 0.026, 0.005),
        # drunks beating a guard routed by his bleeding; an air-conditioner drain dripping on
        # my canopy, told as water striking it: not yet rules
        ("tune87", 0.96, 0.026, 0.005),
        # threatened in a private message after criticising the office (私聊 and 群里说 are
        # chatter and cancel cues), a temporary ID card asked as 临时的: not yet rules
        ("tune88", 0.97, 0.026, 0.04),
        ("tune89", 0.98, 0.026, 0.02),  # a door panel "dumb whichever flat is called"
        # a refill asked as 给配不给配; new lamps praised as making the walk feel safer
        ("tune90", 0.97, 0.026, 0.02),
        # a tin eave routed by its noise words, a machete chase routed by 救命 (named first
        # as a repair), torn play mats told in new words: not yet rules
        ("tune91", 0.96, 0.026, 0.02),
        # Mars beside the moon (火星, a fire word), an emergency light's beeping read as a noise
        # dispute, an app's door-number binding asked in new words: not yet rules
        ("tune92", 0.96, 0.032, 0.02),
        ("tune93", 0.98, 0.026, 0.005),
        # parcel-locker doors that will not open told with 取件码 (a chatter cue), an old man
        # motionless on a bench routed by repair words: not yet rules
        ("tune94", 0.97, 0.026, 0.02),
        # a projector that shows black, a developer's promise broken, water charges per head,
        # a roof door's closer taken off, a light cover half hanging: not yet rules
        ("tune95", 0.94, 0.026, 0.05),
        # a guard's broken heater read as an old man in need, a cooker hood that will not draw
        # read as a dispute, a brick attack routed by its glass and brick words: not yet rules
        ("tune96", 0.96, 0.026, 0.005),
        # a lift that sank with its doors open and tripped an old woman, routed as a fall
        # (the fall's family reaches its 突然 in the lift's clause): not yet a rule
        ("tune97", 0.98, 0.026, 0.005),
        ("tune98", 0.98, 0.026, 0.005),
        # a man chasing a guard with a brick, routed by the falling-masonry family as a
        # repair: not yet a rule
        ("tune99", 0.98, 0.026, 0.005),
        ("tune100", 0.98, 0.026, 0.005),
        ("tune101", 0.98, 0.026, 0.005),
        ("tune102", 0.98, 0.026, 0.005),
        ("tune103", 0.98, 0.026, 0.005),
        # (asking when the property office closes, labelled none when it was held out and
        # measured, relabelled a service enquiry as the corpora label such questions)
        ("tune104", 0.98, 0.026, 0.005),
        # two men smashing bottles on each other routed as a service by the medical words
        ("tune105", 0.98, 0.026, 0.005),
        # hanging flowerpots swaying over the street flagged urgent (labelled not), a guard
        # booth's humming air conditioner routed as a noise dispute: judgement calls, not
        # rules; a blood-pressure monitor that measures wrong held below the threshold by the
        # wording model (an event centre's words)
        ("tune106", 0.96, 0.026, 0.02),
        ("tune107", 0.98, 0.026, 0.005),
        ("tune108", 0.98, 0.026, 0.005),
        ("tune109", 0.98, 0.026, 0.005),
        ("tune110", 0.98, 0.026, 0.005),
        ("tune111", 0.98, 0.026, 0.005),
        ("tune112", 0.98, 0.026, 0.005),
        # where to photocopy an ID card nearby, a false ticket (身份证) that comes and goes with
        # retraining: a chatter cue for 附近哪有 also silenced a service enquiry on tune13 and was
        # not kept (the confiscated scooter, once missed through 说是, is read right since
        # round 127)
        ("tune113", 0.97, 0.032, 0.017),
        ("tune114", 0.98, 0.026, 0.005),
        ("tune115", 0.98, 0.026, 0.005),
        ("tune116", 0.98, 0.026, 0.005),
        ("tune117", 0.98, 0.026, 0.005),
        ("tune118", 0.98, 0.026, 0.005),
        ("tune119", 0.98, 0.026, 0.005),
        ("tune120", 0.98, 0.026, 0.005),
        ("tune121", 0.98, 0.026, 0.005),
        ("tune122", 0.98, 0.026, 0.005),
        # cactus burrs blown off a neighbour's windowsill, read as a repair (往下掉), and a bucket
        # on a delivery man's head, routed to a repair (砸到头, a repair's emergency family)
        ("tune123", 0.97, 0.026, 0.005),
        # a cleaner selling the recyclables and quarrelling with owners, missed (回收, chatter)
        ("tune124", 0.98, 0.026, 0.017),
        # a door-entry system that only opens for those who paid the service charge, missed
        ("tune125", 0.98, 0.026, 0.017),
        # the management's gardener who cut down a resident's grapevine, missed
        ("tune126", 0.98, 0.026, 0.017),
        ("tune127", 0.98, 0.026, 0.005),
        # a gas pressure box hit by a car, hissing, routed to a dispute (抽烟, 有人在)
        ("tune128", 0.98, 0.026, 0.005),
        # the electronic notice screen still showing last year's notices, missed (的通知, 去年)
        ("tune129", 0.98, 0.026, 0.017),
        ("tune130", 0.98, 0.026, 0.005),
        # a child fallen onto a canopy from a window, routed to a repair by the wording model (雨棚)
        ("tune131", 0.98, 0.026, 0.005),
        ("tune132", 0.98, 0.026, 0.005),
        ("tune133", 0.98, 0.026, 0.005),
        # a stairwell window with a catapult hole, read as a dispute (弹弓)
        ("tune134", 0.98, 0.026, 0.005),
        ("tune135", 0.98, 0.026, 0.005),
        ("tune136", 0.98, 0.026, 0.005),
        ("tune137", 0.98, 0.026, 0.005),
        ("tune138", 0.98, 0.026, 0.005),
        # a lift's advertising screen blaring, missed (物业说 … 说是, two cancel cues); a
        # hit-and-run with a woman lying bleeding, routed to a service; a building sign blown away,
        # asked who replaces it, read as a repair (it flips with the retraining: read right after
        # rounds 140 and 145, not after 141)
        ("tune139", 0.96, 0.026, 0.017),
        ("tune140", 0.98, 0.026, 0.005),
        ("tune141", 0.98, 0.026, 0.005),
        ("tune142", 0.98, 0.026, 0.005),
        ("tune143", 0.98, 0.026, 0.005),
        # a railing bent by someone and a net frame taken by someone, read as disputes; a gas-bill
        # question asked of the neighbours, a false ticket (a judgement)
        ("tune144", 0.96, 0.032, 0.005),
        ("tune145", 0.98, 0.026, 0.005),
        ("tune146", 0.98, 0.026, 0.005),
        ("tune147", 0.98, 0.026, 0.005),
        # a bought-out parking space charged again and a Go class asked about, missed (cancel cues)
        ("tune148", 0.97, 0.026, 0.034),
        ("tune149", 0.98, 0.026, 0.005),
        ("tune150", 0.98, 0.026, 0.005),
        # a fee charged per parcel collected, missed; a request that the community mediate a
        # deposit dispute, read as a dispute (the corpora's own convention for mediation requests;
        # the set's label, a service, differs)
        ("tune151", 0.97, 0.026, 0.017),
        ("tune152", 0.98, 0.026, 0.005),
    )
    for name, macro, false, missed in floors:
        report = evaluate(read_tsv(DATA / f"{name}.tsv")[0], rules)
        assert report.macro_f1 >= macro, name
        assert report.false_ticket_rate <= false, name
        assert report.missed_request_rate <= missed, name
        assert report.urgent_recall == 1.0, name


def test_held_out_set_does_not_regress(rules: Rules) -> None:
    """Never tuned or trained on (the 153rd set, 92 messages). Measured once: macro-F1 0.968,
    false tickets 3.1%, missed requests 1.7%, urgent recall 100% of 10 (the issue's targets:
    0.92, 3%, 5%, 100%; all but false tickets met: one of 32, a smell of osmanthus cake
    opened by the wording model alone). These floors are the measured level, so a change
    that makes generalisation worse fails here; they are not the targets. See
    BENCHMARKS.md."""
    rows, problems = read_tsv(DATA / "heldout.tsv")
    assert problems == []
    report = evaluate(rows, rules)
    assert report.macro_f1 >= 0.967
    assert report.false_ticket_rate <= 0.032
    assert report.missed_request_rate <= 0.017
    assert report.urgent_recall == 1.0


def test_written_emergencies_are_all_urgent(rules: Rules) -> None:
    """78 emergencies told in words the earlier rules did not know (round ten); a few the
    corpora count as ordinary repairs (a cracked pipe, an overflowing tank) are marked 0."""
    rows, problems = read_tsv(DATA / "emergencies" / "round10.tsv")
    assert problems == []
    assert len(rows) == 78
    report = evaluate(rows, rules)
    assert report.urgent_recall == 1.0
    assert report.false_alarms == []
    assert report.missed_request_rate == 0.0


@pytest.mark.parametrize(
    ("name", "size"),
    [
        # round twenty, 52% urgent on the rules before it: poisoning, choking, fits, burns,
        # allergy, labour, bleeding, drowning, falls from a height, power lines down,
        # charcoal indoors, rising water, cracking walls, break-ins, arson, beatings,
        # someone at an edge, vulnerable people gone
        ("round20", 62),
        # round twenty-two, 60% before: sudden blindness, scalds, open fractures, silence
        # behind a locked door, a baby choking on milk, deep cuts, snake bites, confusion,
        # head injuries; axes, child snatching; an open lift shaft, a roof giving way
        ("round22", 40),
        # round thirty-six, 77.5% before: a lift dropping floors, a transformer arcing, no car
        # behind the lift door, a stroke, someone not answering, a smell behind a door long
        # closed, poison drunk, a child in a pond, someone at one's window, a throat gripped
        ("round36", 40),
        # round fifty-five, 82% before: a brawl, a girl groped in the lift, petrol and a
        # threat to burn, a limb bent wrong, a hand to the chest, a child choking, cracked
        # glass over people passing, water pouring down a garage ramp
        ("round55", 28),
    ],
)
def test_later_written_emergencies_are_all_urgent(rules: Rules, name: str, size: int) -> None:
    """Emergencies written in fresh words before the rules that catch them."""
    rows, problems = read_tsv(DATA / "emergencies" / f"{name}.tsv")
    assert problems == []
    assert len(rows) == size
    report = evaluate(rows, rules)
    assert report.urgent_recall == 1.0
    assert report.missed_request_rate == 0.0


def test_everyday_requests_are_read_as_what_they_are(rules: Rules) -> None:
    """40 ordinary requests written in fresh words (round fifty-seven: household faults,
    enquiries, neighbours' habits; 39 of 40 right before its rules): every one is a ticket of
    its own category. (The urgency model flags one of them, a shower hose with a small split,
    as an emergency: 管爆了 reads as a burst pipe.)"""
    rows, problems = read_tsv(DATA / "requests" / "round57.tsv")
    assert problems == []
    assert len(rows) == 40
    report = evaluate(rows, rules)
    assert report.mistakes == []
    assert report.missed_request_rate == 0.0


def test_chatter_that_names_a_fault_stays_chatter(rules: Rules) -> None:
    """60 messages that name a fault without reporting one (round twenty-one: the alarm
    explained away, fixed by the writer, hypotheticals, faults elsewhere or of one's own
    phone or bike), written before the rules that handle them. On the rules before that
    round: 25% opened tickets; measured after: 6.7% (4 of 60)."""
    report = _chatter_report("round21", 60, rules)
    assert report.false_ticket_rate <= 0.067


def test_later_chatter_that_names_a_fault_stays_chatter(rules: Rules) -> None:
    """40 messages that name a fault or a quarrel already cleared, explained, improved,
    settled or paid (round thirty-eight), written before the rules that handle them. On the
    rules before that round: 35% opened tickets; measured after: none."""
    report = _chatter_report("round38", 40, rules)
    assert report.false_ticket_rate == 0.0
    assert report.false_alarms == []


def _chatter_report(name: str, size: int, rules: Rules) -> Report:
    """The figures for a chatter corpus, after checking it reads cleanly, has ``size``
    messages and holds non-requests only."""
    rows, problems = read_tsv(DATA / "chatter" / f"{name}.tsv")
    assert problems == []
    assert len(rows) == size
    assert {row.label for row in rows} == {"none"}
    return evaluate(rows, rules)


def test_evaluate_counts_urgent_false_alarms(rules: Rules) -> None:
    rows = [
        Row("repair", "3号楼电梯困人了", True, 1),
        Row("repair", "厨房墙砖一块一块往下掉，已经掉了三块", False, 2),  # a known false alarm
        Row("repair", "路灯不亮了", False, 3),
    ]
    report = evaluate(rows, rules)
    assert report.urgent_recall == 1.0
    assert report.not_urgent_total == 2
    assert [row.line for row in report.false_alarms] == [2]
    assert "urgent false alarms: 1 of 2 marked not urgent" in render(report)
