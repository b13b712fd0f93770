"""Replay candidate rules on the held-out sets as they were first measured.

    python -m benchmarks.replay CANDIDATES.txt [--first 44] [--last N] [--current-code]
    python -m benchmarks.replay [CANDIDATES.txt] --current-code --setting model_weight=0.2

Every held-out set was written before the rules of its round were measured on it; once read,
it becomes tuning data and can no longer say whether a rule generalises. This replays a
candidate on each set at the commit where it was measured — with the rules and models of that
day, before any rule was written for it — and counts the errors with and without the
candidate, listing every message it fixes or breaks. A rule that fixes errors across many
sets and breaks none is a general one; one that only fixes the set it was written for is not.

CANDIDATES.txt holds one rule a line, ``SECTION<TAB>RULE: WEIGHT`` as the community file or
the cue file writes it: SECTION is a keyword category (``repair``, ``dispute``, ``service``)
of the community file, or ``cues:GROUP`` (``cues:cancel``, ``cues:notice`` …) of
``nlp/data/cues.yaml``; an emergency family takes no weight, under ``cues:urgent:CATEGORY``
(who must go). Lines starting with ``#`` are comments. For example::

    dispute\t"re:(邻居|隔壁|有人)[^，。！？,!?]{0,6}把": 2
    cues:urgent:repair\t水箱|储水罐&胀破|爆裂

A line whose SECTION starts with ``-`` removes a rule instead, written without its weight:
the entry as written, or one alternative of a one-part entry (``-cues:notice<TAB>业主大会``
takes 业主大会 out of ``群里开会|业主大会|开会讨论: 3`` and leaves the rest). Narrowing a rule
is a removal and an addition. Removals need ``--current-code``, and so does ``cues:ordinary``
(matters where the urgency model's guess is not taken: a list the code of earlier days does
not know; the section is added to a day's cue file that lacks it).

Errors are the misclassified messages (an emergency not flagged counts as one) and the
urgent false alarms, each with its text.

With ``--current-code`` each set is classified by today's ``nlp`` package, in this process,
instead of the code of its day: the set, the community file, the cue lists and the models are
read from the commit with ``git show`` and stay those of the day, so a candidate is judged
under the mechanisms it will actually run with. ``--setting NAME=VALUE`` (repeatable, only
with ``--current-code``) sets a field of :class:`nlp.Rules` — ``model_weight``,
``model_cap``, ``threshold``, ``model_alone``, ``urgency_threshold`` … — for the run with the
candidates, so a setting is replayed the same way (the candidates file may then be left out).

The set measured in round N is found as the parent of the commit "Classifier round N+1: …"
(the newest set is at HEAD). Without ``--current-code`` each is checked out once as a git
worktree under a temporary folder, which is removed afterwards. Needs the repository's history
(not a shallow clone).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

import yaml

from nlp.evaluate import Report, evaluate, read_tsv
from nlp.ngram import NgramModel
from nlp.rules import BUILT_IN_GROUPS, Cues, Rules, keyword_table_from_yaml, load_cues

ROOT = Path(__file__).resolve().parent.parent
COMMUNITY = Path("bot/demo/community.yaml")
CUES = Path("nlp/data/cues.yaml")
HELD_OUT = Path("tests/data/heldout.tsv")
_ROUND_RE = re.compile(r"^([0-9a-f]+) Classifier round (\d+):")
_ERROR_RE = re.compile(r"line \d+: (\w+ -> \w+)[^\t]*\t(.*)")
_FALSE_ALARM_RE = re.compile(r"line \d+: (\w+)\t(.*)")
URGENT = "cues:urgent:"
REMOVE = "-"


@dataclass(frozen=True)
class Candidate:
    """One rule to add (or, where the section starts with ``-``, to remove): where it goes
    and the line as written."""

    section: str
    line: str

    @property
    def removal(self) -> bool:
        return self.section.startswith(REMOVE)


@dataclass(frozen=True)
class Outcome:
    """What evaluating one held-out set printed."""

    macro_f1: float
    false_tickets: float
    missed: float
    errors: frozenset[tuple[str, str]]  # (label -> predicted, text)


def read_candidates(text: str) -> list[Candidate]:
    """The candidate rules of a CANDIDATES file; raises ValueError on a malformed line."""
    candidates = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        section, tab, line = raw.partition("\t")
        section = section.strip()
        removal = section.startswith(REMOVE)
        weighed = not removal and not section.startswith(URGENT)
        if not tab or not line.strip() or (weighed and ":" not in line):
            raise ValueError(f"line {number}: expected SECTION<TAB>RULE: WEIGHT")
        if removal and len(section) == 1:
            raise ValueError(f"line {number}: expected -SECTION<TAB>RULE")
        candidates.append(Candidate(section, line.strip()))
    return candidates


def add_rules(community: str, cues: str, candidates: list[Candidate]) -> tuple[str, str]:
    """The community and cue files with each candidate put first in its section (removals
    are left to :func:`remove_rules`)."""
    for candidate in candidates:
        if candidate.removal:
            continue
        if candidate.section.startswith(URGENT):
            category = candidate.section[len(URGENT) :]
            top = cues.find("\nurgent:\n")
            head = f"\n  {category}:\n"
            at = cues.find(head, top) if top >= 0 else -1
            if at < 0:
                raise ValueError(f"no emergency list {category!r}")
            at += len(head)
            cues = f"{cues[:at]}    - {candidate.line}\n{cues[at:]}"
        elif candidate.section.startswith("cues:"):
            group = candidate.section[5:]
            head = group + ":\n"
            if head not in cues and group in BUILT_IN_GROUPS:
                cues = f"{cues.rstrip()}\n{head}"  # a group an earlier day's file did not have yet
            if head not in cues:
                raise ValueError(f"no cue group {group!r}")
            cues = cues.replace(head, f"{head}  {candidate.line}\n", 1)
        else:
            head = f"  {candidate.section}:\n"
            if head not in community:
                raise ValueError(f"no keyword section {candidate.section!r}")
            community = community.replace(head, f"{head}    {candidate.line}\n", 1)
    return community, cues


def parse_report(out: str) -> Outcome:
    """The figures and misclassified rows of ``python -m nlp.evaluate``'s report."""

    _, _, alarms = out.partition("flagged urgent but marked not urgent")

    def figure(pattern: str) -> float:
        found = re.search(pattern, out)
        if found is None:
            raise ValueError(f"no {pattern!r} in the report")
        return float(found.group(1))

    return Outcome(
        figure(r"macro-F1\s+([\d.]+)"),
        figure(r"false-ticket rate[^\n]*?([\d.]+)%"),
        figure(r"missed-request rate[^\n]*?([\d.]+)%"),
        frozenset(
            [(m.group(1), m.group(2)) for m in _ERROR_RE.finditer(out)]
            + [(f"{m.group(1)} false alarm", m.group(2)) for m in _FALSE_ALARM_RE.finditer(alarms)]
        ),
    )


def measured_commits(first: int, last: int | None) -> dict[int, str]:
    """The commit where each held-out set from ``first`` on was measured."""
    log = subprocess.run(
        ["git", "log", "--format=%h %s"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    rounds = {int(m.group(2)): m.group(1) for m in map(_ROUND_RE.match, log.splitlines()) if m}
    if not rounds:
        raise SystemExit("no 'Classifier round N:' commits in this history")
    newest = max(rounds)
    last = newest if last is None else min(last, newest)
    return {
        n: (f"{rounds[n + 1]}^" if n + 1 in rounds else "HEAD")
        for n in range(first, last + 1)
        if n in rounds
    }


def evaluate_at(tree: Path, config: Path) -> Outcome:
    """Evaluate the worktree's held-out set with its own code and the given community file."""
    env = dict(os.environ, PYTHONPATH=str(tree), COMMUNITY_CONFIG=str(config))
    out = subprocess.run(
        [sys.executable, "-m", "nlp.evaluate", str(HELD_OUT)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return parse_report(out)


def replay(candidates: list[Candidate], commits: dict[int, str], work: Path) -> tuple[int, int]:
    """Print each set's figures before and after; return the total errors before and after."""
    before_total = after_total = 0
    for number, commit in commits.items():
        tree = work / str(number)
        subprocess.run(
            ["git", "worktree", "add", "-q", "--detach", str(tree), commit], cwd=ROOT, check=True
        )
        try:
            before = evaluate_at(tree, tree / COMMUNITY)
            community, cues = add_rules(
                (tree / COMMUNITY).read_text(encoding="utf-8"),
                (tree / CUES).read_text(encoding="utf-8"),
                candidates,
            )
            config = work / f"{number}.yaml"
            config.write_text(community, encoding="utf-8")
            (tree / CUES).write_text(cues, encoding="utf-8")  # a throwaway checkout
            after = evaluate_at(tree, config)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False
            )
        before_total += len(before.errors)
        after_total += len(after.errors)
        show(number, before, after)
    return before_total, after_total


def show(number: int, before: Outcome, after: Outcome) -> None:
    """Print one set's figures before and after, and the messages fixed and broken."""
    print(
        f"{number}: macro-F1 {before.macro_f1:.3f} -> {after.macro_f1:.3f}, false tickets "
        f"{before.false_tickets}% -> {after.false_tickets}%, missed {before.missed}% -> "
        f"{after.missed}%, errors {len(before.errors)} -> {len(after.errors)}"
    )
    for kind, text in sorted(before.errors - after.errors):
        print(f"    fixed  {kind}  {text}")
    for kind, text in sorted(after.errors - before.errors):
        print(f"    BROKE  {kind}  {text}")


def parse_setting(text: str) -> tuple[str, float | bool]:
    """``NAME=VALUE`` for a field of :class:`nlp.Rules`: a number, or true / false."""
    name, equals, value = text.partition("=")
    name, value = name.strip(), value.strip()
    settable = {f.name for f in dataclass_fields(Rules) if f.init}
    settable -= {"keywords", "cues", "model", "urgency"}
    if not equals or name not in settable:
        raise ValueError(f"expected NAME=VALUE for a setting of nlp.Rules, got {text!r}")
    if value.lower() in ("true", "false"):
        return name, value.lower() == "true"
    try:
        return name, float(value)
    except ValueError:
        raise ValueError(f"setting {name}: {value!r} is not a number or true/false") from None


def outcome_of(report: Report) -> Outcome:
    """The figures and errors of an in-process evaluation, as :func:`parse_report` reads them
    from the printed report (percentages rounded the same way)."""
    return Outcome(
        round(report.macro_f1, 3),
        round(report.false_ticket_rate * 100, 2),
        round(report.missed_request_rate * 100, 2),
        frozenset(
            [(f"{row.label} -> {predicted}", row.text) for row, predicted, _ in report.mistakes]
            + [(f"{row.label} false alarm", row.text) for row in report.false_alarms]
        ),
    )


DAY_FILES = {
    "community": COMMUNITY,
    "cues": CUES,
    "model": Path("nlp/data/ngram_model.tsv"),
    "urgency": Path("nlp/data/urgency_model.tsv"),
    "held_out": HELD_OUT,
}


def day_files(commit: str, folder: Path) -> dict[str, Path]:
    """Write the files of ``commit`` the classifier reads into ``folder`` (a model the commit
    does not have is left out: the urgency model came in round 48)."""
    found = {}
    for name, path in DAY_FILES.items():
        shown = subprocess.run(
            ["git", "show", f"{commit}:{path.as_posix()}"],
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
        if shown.returncode == 0:
            found[name] = folder / f"{name}{path.suffix}"
            found[name].write_bytes(shown.stdout)
    return found


def remove_rules(
    keywords: dict[str, dict[str, float]],
    cues: Cues,
    candidates: list[Candidate],
    strict: bool = True,
) -> tuple[dict[str, dict[str, float]], Cues]:
    """The keyword table and cue lists without the rules the removals name. Raises
    ValueError where a section does not hold the rule, unless not ``strict`` (an earlier
    day's files may not have it yet: nothing is removed then)."""
    groups = {group: dict(entries) for group, entries in cues.groups.items()}
    urgent = {category: list(entries) for category, entries in cues.urgent.items()}
    keywords = {category: dict(entries) for category, entries in keywords.items()}
    for candidate in candidates:
        if not candidate.removal:
            continue
        section = candidate.section[len(REMOVE) :]
        if section.startswith(URGENT):
            category = section[len(URGENT) :]
            if category not in urgent:
                raise ValueError(f"no emergency list {category!r}")
            family = [(entry, 0.0) for entry in urgent[category]]
            kept = _remove(family, candidate.line, section, strict)
            urgent[category] = [entry for entry, _ in kept]
        elif section.startswith("cues:"):
            if section[5:] not in groups:
                raise ValueError(f"no cue group {section[5:]!r}")
            group = list(groups[section[5:]].items())
            groups[section[5:]] = dict(_remove(group, candidate.line, section, strict))
        else:
            table = list(keywords.get(section, {}).items())
            keywords[section] = dict(_remove(table, candidate.line, section, strict))
    trimmed = replace(
        cues,
        groups=groups,
        urgent={category: tuple(entries) for category, entries in urgent.items()},
    )
    return keywords, trimmed


def _remove(
    entries: list[tuple[str, float]], rule: str, section: str, strict: bool
) -> list[tuple[str, float]]:
    """One section's entries without ``rule``: every entry written so, or else the one
    alternative of each one-part entry that has it (a rule may be given in its quotes; in
    double quotes it is read as YAML reads it, so ``\\n`` is a line break, as in the file)."""
    if len(rule) > 1 and rule[0] == rule[-1] == '"':
        rule = str(yaml.safe_load(rule))
    elif len(rule) > 1 and rule[0] == rule[-1] == "'":
        rule = rule[1:-1]
    if any(entry == rule for entry, _ in entries):
        return [(entry, weight) for entry, weight in entries if entry != rule]
    kept, found = [], False
    for entry, weight in entries:
        alternatives = entry.split("|")
        one_part = not (entry.startswith("re:") or "&" in entry or "+" in entry)
        if one_part and rule in alternatives:
            found = True
            if rest := "|".join(a for a in alternatives if a != rule):
                kept.append((rest, weight))
        else:
            kept.append((entry, weight))
    if not found and strict:
        raise ValueError(f"no rule {rule!r} in {section}")
    return kept


def models_of_day(files: dict[str, Path]) -> tuple[NgramModel | None, NgramModel | None]:
    """The day's wording model and urgency model (None where the day has none)."""
    model = NgramModel.load(files["model"]) if "model" in files else None
    urgency = NgramModel.load(files["urgency"]) if "urgency" in files else None
    return model, urgency


def rules_of_day(
    files: dict[str, Path],
    candidates: list[Candidate],
    settings: dict[str, Any],
    work: Path,
    models: tuple[NgramModel | None, NgramModel | None] | None = None,
) -> Rules:
    """Today's classifier with one day's community file, cue lists and models, the candidates
    added and the settings applied. ``models`` (from :func:`models_of_day`) spares a caller
    that builds several rule sets for one day reading the models again, and indexing their
    n-grams again."""
    community, cues = add_rules(
        files["community"].read_text(encoding="utf-8"),
        files["cues"].read_text(encoding="utf-8"),
        candidates,
    )
    (work / "community.yaml").write_text(community, encoding="utf-8")
    (work / "cues.yaml").write_text(cues, encoding="utf-8")
    model, urgency = models if models is not None else models_of_day(files)
    keywords, cue_lists = remove_rules(
        keyword_table_from_yaml(work / "community.yaml"),
        load_cues(work / "cues.yaml"),
        candidates,
        strict=False,
    )
    return Rules(
        keywords=keywords,
        cues=cue_lists,
        model=model,
        urgency=urgency,
        **settings,
    )


def replay_current(
    candidates: list[Candidate],
    commits: dict[int, str],
    work: Path,
    settings: dict[str, Any],
) -> tuple[int, int]:
    """Like :func:`replay`, with today's code in this process; the settings apply to the run
    with the candidates."""
    # a removal must name a rule the newest day's files hold (an earlier day may not have it)
    if commits and any(candidate.removal for candidate in candidates):
        newest = work / "newest"
        newest.mkdir()
        files = day_files(commits[max(commits)], newest)
        remove_rules(
            keyword_table_from_yaml(files["community"]), load_cues(files["cues"]), candidates
        )
    before_total = after_total = 0
    for number, commit in commits.items():
        folder = work / str(number)
        folder.mkdir()
        files = day_files(commit, folder)
        if "held_out" not in files or "community" not in files or "cues" not in files:
            print(f"{number}: {commit} lacks a held-out set, community file or cue file; skipped")
            continue
        rows, _ = read_tsv(files["held_out"])
        models = models_of_day(files)
        before = outcome_of(evaluate(rows, rules_of_day(files, [], {}, folder, models)))
        after = outcome_of(
            evaluate(rows, rules_of_day(files, candidates, settings, folder, models))
        )
        before_total += len(before.errors)
        after_total += len(after.errors)
        show(number, before, after)
    return before_total, after_total


def main(argv: list[str] | None = None) -> int:
    """Run the replay and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replay", description=__doc__)
    parser.add_argument("candidates", type=Path, nargs="?")
    parser.add_argument("--first", type=int, default=44, help="first held-out set (default 44)")
    parser.add_argument("--last", type=int, default=None, help="last held-out set (default: all)")
    parser.add_argument(
        "--current-code",
        action="store_true",
        help="classify with today's nlp package (the rules and models stay those of each day)",
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of nlp.Rules for the run with the candidates (with --current-code)",
    )
    args = parser.parse_args(argv)
    try:
        settings = dict(parse_setting(text) for text in args.setting)
        if settings and not args.current_code:
            raise ValueError("--setting needs --current-code")
        if args.candidates is None and not settings:
            raise ValueError("give a candidates file, or --setting with --current-code")
        try:
            text = args.candidates.read_text(encoding="utf-8") if args.candidates else ""
            candidates = read_candidates(text)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{args.candidates}: {exc}") from None
        if any(candidate.removal for candidate in candidates) and not args.current_code:
            raise ValueError("removing a rule needs --current-code")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    commits = measured_commits(args.first, args.last)
    with tempfile.TemporaryDirectory(prefix="replay-") as work:
        try:
            if args.current_code:
                before, after = replay_current(candidates, commits, Path(work), settings)
            else:
                before, after = replay(candidates, commits, Path(work))
        except (ValueError, yaml.YAMLError) as exc:  # a candidate the file cannot hold
            print(f"error: {exc}", file=sys.stderr)
            return 2
        finally:
            subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=False)
    print(f"{len(commits)} sets: {before} errors as measured, {after} with the candidates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
