"""The replay tool's pure parts: reading candidates, adding them, reading a report."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.replay import Candidate, add_rules, overlay_code, parse_report, read_candidates

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


@pytest.mark.parametrize("line", ["dispute 有人把: 2", "dispute\t", "dispute\t有人把"])
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


@pytest.mark.parametrize("section", ["service", "cues:chatter", "cues:urgent:dispute"])
def test_a_section_that_is_not_there_is_an_error(section: str) -> None:
    with pytest.raises(ValueError, match="no "):
        add_rules(COMMUNITY, CUES, [Candidate(section, "词: 1")])


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


def test_current_code_replaces_the_package_modules_and_keeps_the_data(tmp_path: Path) -> None:
    source, tree = tmp_path / "now", tmp_path / "then"
    for root, text in ((source, "new"), (tree, "old")):
        (root / "nlp" / "data").mkdir(parents=True)
        (root / "nlp" / "classifier.py").write_text(f"# {text} code\n", encoding="utf-8")
        (root / "nlp" / "data" / "cues.yaml").write_text(f"# {text} cues\n", encoding="utf-8")
    (source / "nlp" / "added.py").write_text("# a module added since\n", encoding="utf-8")
    assert overlay_code(source, tree) == 2
    assert (tree / "nlp" / "classifier.py").read_text(encoding="utf-8") == "# new code\n"
    assert (tree / "nlp" / "added.py").is_file()
    assert (tree / "nlp" / "data" / "cues.yaml").read_text(encoding="utf-8") == "# old cues\n"
