"""The replay tool's pure parts: reading candidates, adding them, reading a report."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.replay import (
    Candidate,
    add_rules,
    main,
    outcome_of,
    parse_report,
    parse_setting,
    read_candidates,
    remove_rules,
    rules_of_day,
)
from nlp.evaluate import Row, evaluate
from nlp.rules import CUES_FILE, Cues, load_cues

COMMUNITY = "keywords:\n  repair:\n    电梯: 1\n  dispute:\n    吵: 1\n"
CUES = (
    "cancel:\n  修好了: 4.5\nnotice:\n  通知: 3\n"
    "urgent:\n  repair:\n    - 冒烟\n  service:\n    - 晕倒\n"
)


def test_candidates_are_read_one_a_line_with_comments_skipped() -> None:
    text = (
        "# a comment\n\ndispute\t有人+把: 2\ncues:notice\t辟谣: 3\ncues:urgent:repair\t水箱&胀破\n"
    )
    assert read_candidates(text) == [
        Candidate("dispute", "有人+把: 2"),
        Candidate("cues:notice", "辟谣: 3"),
        Candidate("cues:urgent:repair", "水箱&胀破"),  # an emergency family has no weight
    ]


def test_a_removal_is_read_without_a_weight() -> None:
    candidates = read_candidates("-cues:notice\t业主大会\n-cues:urgent:dispute\t打架\n")
    assert candidates == [
        Candidate("-cues:notice", "业主大会"),
        Candidate("-cues:urgent:dispute", "打架"),
    ]
    assert all(candidate.removal for candidate in candidates)
    assert not Candidate("dispute", "吵: 1").removal


@pytest.mark.parametrize(
    "line", ["dispute 有人把: 2", "dispute\t", "dispute\t有人把", "-\t业主大会"]
)
def test_a_malformed_candidate_is_refused(line: str) -> None:
    with pytest.raises(ValueError, match="line 1"):
        read_candidates(line)


def test_candidates_go_first_in_their_section() -> None:
    community, cues = add_rules(
        COMMUNITY,
        CUES,
        [
            Candidate("dispute", "有人+把: 2"),
            Candidate("cues:notice", "辟谣: 3"),
            Candidate("cues:urgent:service", "噎住&脸都紫"),
        ],
    )
    assert "  dispute:\n    有人+把: 2\n    吵: 1\n" in community
    assert "notice:\n  辟谣: 3\n  通知: 3\n" in cues
    assert "  service:\n    - 噎住&脸都紫\n    - 晕倒\n" in cues
    assert "  repair:\n    - 冒烟\n" in cues
    assert community.count("有人+把") == 1
    assert "修好了: 4.5" in cues


def test_an_ordinary_candidate_adds_the_list_an_earlier_day_did_not_have(tmp_path: Path) -> None:
    _, cues = add_rules(COMMUNITY, CUES, [Candidate("cues:ordinary", "水箱溢水: 1")])
    path = tmp_path / "cues.yaml"
    path.write_text(cues, encoding="utf-8")
    loaded = load_cues(path)
    assert loaded.groups["ordinary"] == {"水箱溢水": 1}
    assert loaded.groups["cancel"] == {"修好了": 4.5}


@pytest.mark.parametrize("section", ["service", "cues:chatter", "cues:urgent:dispute"])
def test_a_section_that_is_not_there_is_an_error(section: str) -> None:
    with pytest.raises(ValueError, match="no "):
        add_rules(COMMUNITY, CUES, [Candidate(section, "词: 1")])


def test_removals_take_out_an_entry_or_one_alternative() -> None:
    keywords = {"repair": {"电梯|电体": 1.0, "漏水": 2.0}, "dispute": {"吵": 1.0}}
    cues = Cues(
        groups={"notice": {"群里开会|业主大会|开会讨论": 3.0, "通知": 3.0}, "cancel": {}},
        negation=(),
        urgent={"dispute": ("打架", "打起来|打架", "打架&血")},
        tiers={},
    )
    removals = [
        Candidate("-repair", "漏水"),
        Candidate("-repair", "电体"),
        Candidate("-cues:notice", "业主大会"),
        Candidate("-cues:urgent:dispute", "打架"),  # the entry as written; the others stay
        Candidate("dispute", "闹: 1"),  # an addition: left to add_rules
    ]
    kept, trimmed = remove_rules(keywords, cues, removals)
    assert kept == {"repair": {"电梯": 1.0}, "dispute": {"吵": 1.0}}
    assert trimmed.groups["notice"] == {"群里开会|开会讨论": 3.0, "通知": 3.0}
    assert trimmed.urgent["dispute"] == ("打起来|打架", "打架&血")
    assert keywords["repair"] == {"电梯|电体": 1.0, "漏水": 2.0}  # the input is not changed
    assert cues.urgent["dispute"] == ("打架", "打起来|打架", "打架&血")
    # a quoted pattern as the cue file writes it; an alternative of a phrase is not one
    _, trimmed = remove_rules(
        {},
        replace(cues, groups={"notice": {"re:a|b": 1.0}}),
        [Candidate("-cues:notice", '"re:a|b"')],
    )
    assert trimmed.groups["notice"] == {}
    # in double quotes a rule is read as YAML reads it: an escaped line break is one
    _, trimmed = remove_rules(
        {},
        replace(cues, groups={"notice": {"re:^(?![^\n]*x)y": 1.0, "z": 1.0}}),
        [Candidate("-cues:notice", '"re:^(?![^\\n]*x)y"')],
    )
    assert trimmed.groups["notice"] == {"z": 1.0}
    with pytest.raises(ValueError, match="no rule '血'"):
        remove_rules(keywords, cues, [Candidate("-cues:urgent:dispute", "血")])


@pytest.mark.parametrize("section", ["-cues:question", "-cues:urgent:service"])
def test_a_removal_from_a_section_that_is_not_there_is_an_error(section: str) -> None:
    cues = Cues(groups={"notice": {}}, negation=(), urgent={}, tiers={})
    with pytest.raises(ValueError, match="no "):
        remove_rules({}, cues, [Candidate(section, "词")])


def test_the_evaluate_report_is_read() -> None:
    report = (
        "macro-F1                       0.890\n"
        "false-ticket rate (none -> request): 2.50%\n"
        "missed-request rate (request -> none): 9.62%\n"
        "misclassified (2):\n"
        "  line 14: dispute -> repair [urgent missed]\t有人在打架\n"
        "  line 18: service -> none\t找谁问\n"
        "\n"
        "flagged urgent but marked not urgent (1):\n"
        "  line 3: repair\t花洒接口在喷水\n"
    )
    outcome = parse_report(report)
    assert (outcome.macro_f1, outcome.false_tickets, outcome.missed) == (0.89, 2.5, 9.62)
    assert outcome.errors == {
        ("dispute -> repair", "有人在打架"),
        ("service -> none", "找谁问"),
        ("repair false alarm", "花洒接口在喷水"),
    }
    with pytest.raises(ValueError, match="macro-F1"):
        parse_report("Error: cannot read tests/data/heldout.tsv")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model_weight=0.2", ("model_weight", 0.2)),
        (" model_cap = 5 ", ("model_cap", 5.0)),
        ("model_alone=false", ("model_alone", False)),
        ("model_alone=True", ("model_alone", True)),
    ],
)
def test_a_setting_is_read(text: str, expected: tuple[str, float | bool]) -> None:
    assert parse_setting(text) == expected


@pytest.mark.parametrize(
    "text", ["model_weight", "nope=1", "keywords=1", "model=1", "model_cap=high", "=3"]
)
def test_a_bad_setting_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="setting"):
        parse_setting(text)


def test_a_day_is_rebuilt_with_candidates_and_settings(tmp_path: Path) -> None:
    """A day's files (here without models, as before round 40) give today's classifier with
    the candidates added and the settings applied; its errors read like the printed report."""
    community = tmp_path / "community.yaml"
    community.write_text("keywords:\n  repair:\n    电梯: 1\n  dispute:\n    吵: 1\n", "utf-8")
    cues = tmp_path / "cues.yaml"
    shutil.copyfile(CUES_FILE, cues)
    files = {"community": community, "cues": cues}
    work = tmp_path / "work"
    work.mkdir()
    plain = rules_of_day(files, [], {}, work)
    assert plain.model is None
    assert plain.keywords["repair"] == {"电梯": 1.0}
    added = rules_of_day(files, [Candidate("repair", "电梯坏了: 3")], {"threshold": 2.5}, work)
    assert added.threshold == 2.5
    assert added.keywords["repair"] == {"电梯坏了": 3.0, "电梯": 1.0}
    rows = [Row("repair", "3号楼电梯坏了", False, 2), Row("none", "今天天气不错", False, 3)]
    before, after = outcome_of(evaluate(rows, plain)), outcome_of(evaluate(rows, added))
    assert before.errors == frozenset({("repair -> none", "3号楼电梯坏了")})
    assert before.missed == 100.0
    assert after.errors == frozenset()
    assert (after.false_tickets, after.missed) == (0.0, 0.0)
    assert after.macro_f1 > before.macro_f1  # two of four labels have no rows: at most 0.5
    removed = rules_of_day(files, [Candidate("-repair", "电梯")], {}, work)
    assert removed.keywords["repair"] == {}
    assert outcome_of(evaluate(rows, removed)).errors == before.errors


def test_a_removal_needs_the_current_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    candidates = tmp_path / "candidates.txt"
    candidates.write_text("-cues:notice\t业主大会\n", encoding="utf-8")
    assert main([str(candidates)]) == 2
    assert "needs --current-code" in capsys.readouterr().err
