"""``python -m nlp.evaluate FILE.tsv``: how well the rules label a corpus.

The file has columns ``label`` and ``text`` (a header row naming them, or those two first),
optionally ``urgent`` (1/true/yes). Prints per-category precision, recall and F1, macro-F1,
the confusion matrix, the false-ticket rate (none → request), the missed-request rate
(request → none), urgent recall and false alarms, and the misclassified rows.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from nlp.classifier import classify
from nlp.rules import CATEGORIES, Rules

LABELS = (*CATEGORIES, "none")
_TRUE = {"1", "true", "yes", "y", "urgent", "是"}


@dataclass(frozen=True)
class Row:
    """One labelled message."""

    label: str
    text: str
    urgent: bool | None = None
    line: int = 0


@dataclass
class Report:
    """Figures for a corpus."""

    total: int
    precision: dict[str, float]
    recall: dict[str, float]
    f1: dict[str, float]
    macro_f1: float
    confusion: dict[tuple[str, str], int]
    false_ticket_rate: float
    missed_request_rate: float
    urgent_recall: float | None
    urgent_total: int
    mistakes: list[tuple[Row, str, bool]] = field(default_factory=list)
    false_alarms: list[Row] = field(default_factory=list)  # flagged urgent, marked not urgent
    not_urgent_total: int = 0


def read_tsv(path: Path) -> tuple[list[Row], list[str]]:
    """Rows of a corpus file, and a problem line for each row that could not be used."""
    rows: list[Row] = []
    problems: list[str] = []
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        columns = {"label": 0, "text": 1, "urgent": 2}
        for number, record in enumerate(reader, 1):
            if number == 1 and {"label", "text"} <= {c.strip().lower() for c in record}:
                columns = {c.strip().lower(): i for i, c in enumerate(record)}
                continue
            if not record or not any(cell.strip() for cell in record):
                continue
            try:
                label = record[columns["label"]].strip().lower()
                text = record[columns["text"]]
            except IndexError:
                problems.append(f"line {number}: needs label and text columns")
                continue
            if label not in LABELS:
                problems.append(f"line {number}: unknown label {label!r}")
                continue
            urgent: bool | None = None
            if "urgent" in columns and columns["urgent"] < len(record):
                urgent = record[columns["urgent"]].strip().lower() in _TRUE
            rows.append(Row(label, text, urgent, number))
    return rows, problems


def evaluate(rows: list[Row], rules: Rules) -> Report:
    """Classify every row and compare with its label."""
    confusion: Counter[tuple[str, str]] = Counter()
    mistakes: list[tuple[Row, str, bool]] = []
    urgent_total = urgent_hit = not_urgent_total = 0
    false_alarms: list[Row] = []
    for row in rows:
        result = classify(row.text, rules)
        confusion[(row.label, result.category)] += 1
        if row.urgent:
            urgent_total += 1
            urgent_hit += result.urgent
        elif row.urgent is False:
            not_urgent_total += 1
            if result.urgent:
                false_alarms.append(row)
        if result.category != row.label or (row.urgent and not result.urgent):
            mistakes.append((row, result.category, result.urgent))
    precision, recall, f1 = {}, {}, {}
    for label in LABELS:
        true_positive = confusion[(label, label)]
        predicted = sum(confusion[(g, label)] for g in LABELS)
        actual = sum(confusion[(label, p)] for p in LABELS)
        precision[label] = true_positive / predicted if predicted else 0.0
        recall[label] = true_positive / actual if actual else 0.0
        total = precision[label] + recall[label]
        f1[label] = 2 * precision[label] * recall[label] / total if total else 0.0
    nones = sum(confusion[("none", p)] for p in LABELS)
    requests = len(rows) - nones
    false_tickets = sum(confusion[("none", c)] for c in CATEGORIES)
    missed = sum(confusion[(c, "none")] for c in CATEGORIES)
    return Report(
        total=len(rows),
        precision=precision,
        recall=recall,
        f1=f1,
        macro_f1=sum(f1.values()) / len(LABELS),
        confusion=dict(confusion),
        false_ticket_rate=false_tickets / nones if nones else 0.0,
        missed_request_rate=missed / requests if requests else 0.0,
        urgent_recall=urgent_hit / urgent_total if urgent_total else None,
        urgent_total=urgent_total,
        mistakes=mistakes,
        false_alarms=false_alarms,
        not_urgent_total=not_urgent_total,
    )


def render(report: Report, show_mistakes: bool = True) -> str:
    """The report as text."""
    out = [
        f"messages: {report.total}",
        "",
        f"{'category':<10}{'precision':>10}{'recall':>8}{'F1':>8}",
    ]
    for label in LABELS:
        out.append(
            f"{label:<10}{report.precision[label]:>10.3f}{report.recall[label]:>8.3f}"
            f"{report.f1[label]:>8.3f}"
        )
    out += [
        f"{'macro-F1':<10}{report.macro_f1:>26.3f}",
        "",
        "confusion (rows: label, columns: predicted)",
        f"{'':<10}" + "".join(f"{p:>9}" for p in LABELS),
    ]
    for gold in LABELS:
        out.append(
            f"{gold:<10}" + "".join(f"{report.confusion.get((gold, p), 0):>9}" for p in LABELS)
        )
    out += [
        "",
        f"false-ticket rate (none -> request): {report.false_ticket_rate:.2%}",
        f"missed-request rate (request -> none): {report.missed_request_rate:.2%}",
    ]
    if report.urgent_recall is not None:
        out.append(f"urgent recall: {report.urgent_recall:.2%} of {report.urgent_total}")
    if report.not_urgent_total:
        out.append(
            f"urgent false alarms: {len(report.false_alarms)} of {report.not_urgent_total}"
            " marked not urgent"
        )
    if show_mistakes and report.mistakes:
        out += ["", f"misclassified ({len(report.mistakes)}):"]
        for row, predicted, urgent in report.mistakes:
            flag = "" if not row.urgent or urgent else " [urgent missed]"
            out.append(f"  line {row.line}: {row.label} -> {predicted}{flag}\t{row.text}")
    if show_mistakes and report.false_alarms:
        out += ["", f"flagged urgent but marked not urgent ({len(report.false_alarms)}):"]
        out += [f"  line {row.line}: {row.label}\t{row.text}" for row in report.false_alarms]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Entry point; exits 2 when the file or the rules cannot be read."""
    from nlp.cli import community_file, rules_from_environment  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m nlp.evaluate", description=__doc__)
    parser.add_argument("file", type=Path, help="TSV with label and text columns")
    parser.add_argument("--quiet", action="store_true", help="leave out the misclassified rows")
    args = parser.parse_args(argv)
    try:
        rules = rules_from_environment()
    except (OSError, ValueError) as exc:
        print(f"error: setting COMMUNITY_CONFIG ({community_file()}): {exc}", file=sys.stderr)
        return 2
    try:
        rows, problems = read_tsv(args.file)
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"warning: {args.file}: {problem}", file=sys.stderr)
    if not rows:
        print(f"error: {args.file}: no labelled rows", file=sys.stderr)
        return 2
    print(render(evaluate(rows, rules), show_mistakes=not args.quiet))
    return 0


if __name__ == "__main__":
    sys.exit(main())
