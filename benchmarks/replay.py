"""Replay candidate rules on the held-out sets as they were first measured.

    python -m benchmarks.replay CANDIDATES.txt [--first 44] [--last N] [--current-code]

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

Errors are the misclassified messages (an emergency not flagged counts as one) and the
urgent false alarms, each with its text.

With ``--current-code`` each set is classified by today's ``nlp`` package instead of the
code of its day (its rules, cue lists and models stay those of the day): a candidate is then
judged under the mechanisms it will actually run with.

The set measured in round N is found as the parent of the commit "Classifier round N+1: …"
(the newest set is at HEAD). Each is checked out once as a git worktree under a temporary
folder, which is removed afterwards. Needs the repository's history (not a shallow clone).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMUNITY = Path("bot/demo/community.yaml")
CUES = Path("nlp/data/cues.yaml")
HELD_OUT = Path("tests/data/heldout.tsv")
_ROUND_RE = re.compile(r"^([0-9a-f]+) Classifier round (\d+):")
_ERROR_RE = re.compile(r"line \d+: (\w+ -> \w+)[^\t]*\t(.*)")
_FALSE_ALARM_RE = re.compile(r"line \d+: (\w+)\t(.*)")
URGENT = "cues:urgent:"


@dataclass(frozen=True)
class Candidate:
    """One rule to add: where it goes and the line as written."""

    section: str
    line: str


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
        weighed = not section.strip().startswith(URGENT)
        if not tab or not line.strip() or (weighed and ":" not in line):
            raise ValueError(f"line {number}: expected SECTION<TAB>RULE: WEIGHT")
        candidates.append(Candidate(section.strip(), line.strip()))
    return candidates


def add_rules(community: str, cues: str, candidates: list[Candidate]) -> tuple[str, str]:
    """The community and cue files with each candidate put first in its section."""
    for candidate in candidates:
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
            head = candidate.section[5:] + ":\n"
            if head not in cues:
                raise ValueError(f"no cue group {candidate.section[5:]!r}")
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


def overlay_code(source: Path, tree: Path) -> int:
    """Copy the ``nlp`` package's Python files from ``source`` over those of ``tree`` (its
    data files stay); return how many were copied."""
    copied = 0
    for module in sorted((source / "nlp").glob("*.py")):
        shutil.copyfile(module, tree / "nlp" / module.name)
        copied += 1
    return copied


def replay(
    candidates: list[Candidate], commits: dict[int, str], work: Path, current_code: bool = False
) -> tuple[int, int]:
    """Print each set's figures before and after; return the total errors before and after."""
    before_total = after_total = 0
    for number, commit in commits.items():
        tree = work / str(number)
        subprocess.run(
            ["git", "worktree", "add", "-q", "--detach", str(tree), commit], cwd=ROOT, check=True
        )
        try:
            if current_code:
                overlay_code(ROOT, tree)
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
        print(
            f"{number}: macro-F1 {before.macro_f1:.3f} -> {after.macro_f1:.3f}, false tickets "
            f"{before.false_tickets}% -> {after.false_tickets}%, missed {before.missed}% -> "
            f"{after.missed}%, errors {len(before.errors)} -> {len(after.errors)}"
        )
        for kind, text in sorted(before.errors - after.errors):
            print(f"    fixed  {kind}  {text}")
        for kind, text in sorted(after.errors - before.errors):
            print(f"    BROKE  {kind}  {text}")
    return before_total, after_total


def main(argv: list[str] | None = None) -> int:
    """Run the replay and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replay", description=__doc__)
    parser.add_argument("candidates", type=Path)
    parser.add_argument("--first", type=int, default=44, help="first held-out set (default 44)")
    parser.add_argument("--last", type=int, default=None, help="last held-out set (default: all)")
    parser.add_argument(
        "--current-code",
        action="store_true",
        help="classify with today's nlp package (the rules and models stay those of each day)",
    )
    args = parser.parse_args(argv)
    try:
        candidates = read_candidates(args.candidates.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"error: {args.candidates}: {exc}", file=sys.stderr)
        return 2
    commits = measured_commits(args.first, args.last)
    with tempfile.TemporaryDirectory(prefix="replay-") as work:
        try:
            before, after = replay(candidates, commits, Path(work), args.current_code)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        finally:
            subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=False)
    print(f"{len(commits)} sets: {before} errors as measured, {after} with the candidates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
