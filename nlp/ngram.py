"""A character n-gram backoff for the rules: what residents' wording suggests.

Keyword rules recognise the words someone wrote down; residents vary them endlessly
(趴着不动, 卡死, 全黑). Character 1-3-grams, counted over the labelled corpora, carry that
variation: for each n-gram the model keeps how much more likely it is in each category than
in non-requests (naive Bayes log-odds). The classifier adds a small, capped share of these
odds to the rule scores, so the model tips borderline messages but never opens a ticket on
its own, and community rules still decide. Regenerate with ``python -m nlp.train``.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import ahocorasick

MODEL_FILE = Path(__file__).parent / "data" / "ngram_model.tsv"
CATEGORIES = ("repair", "dispute", "service")
LABELS = (*CATEGORIES, "none")
_NOT_TEXT_RE = re.compile(r"[^\u4e00-\u9fff0-9a-z]+")
SMOOTHING = 0.5
MIN_COUNT = 3  # messages an n-gram must occur in to be kept


def features(clean: str) -> set[str]:
    """The character 1-, 2- and 3-grams of normalised text (letters, digits, CJK only)."""
    text = _NOT_TEXT_RE.sub("", clean)
    return {
        *text,
        *map(str.__add__, text, text[1:]),
        *map("".join, zip(text, text[1:], text[2:], strict=False)),
    }


@dataclass(frozen=True)
class NgramModel:
    """Per-n-gram log-odds of each category against non-requests, and the prior odds."""

    prior: tuple[float, float, float]
    odds: dict[str, tuple[float, float, float]]
    # The n-grams in one automaton: a message's known n-grams are found in a single C-level
    # pass instead of building every n-gram string and looking each one up.
    _matcher: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.odds:
            return
        automaton = ahocorasick.Automaton()
        for number, (gram, row) in enumerate(self.odds.items()):
            automaton.add_word(gram, (number, *row))
        automaton.make_automaton()
        object.__setattr__(self, "_matcher", automaton)

    @classmethod
    def train(cls, examples: Iterable[tuple[str, str]]) -> NgramModel:
        """Multinomial naive Bayes over n-gram presence; ``examples`` are (label, clean)."""
        counts = {label: Counter[str]() for label in LABELS}
        documents: Counter[str] = Counter()
        for label, clean in examples:
            documents[label] += 1
            counts[label].update(features(clean))
        vocabulary = set().union(*counts.values())
        log_p = {}
        for label in LABELS:
            total = sum(counts[label].values()) + SMOOTHING * len(vocabulary)
            log_p[label] = {f: math.log((counts[label][f] + SMOOTHING) / total) for f in vocabulary}
        n_docs = sum(documents.values())
        prior_none = math.log(documents["none"] / n_docs)
        prior = tuple(math.log(documents[c] / n_docs) - prior_none for c in CATEGORIES)
        # n-grams seen fewer than MIN_COUNT times are left out: they are most of the table,
        # slow every lookup and, measured on seventeen held-out sets, decide nothing.
        odds = {
            f: tuple(round(log_p[c][f] - log_p["none"][f], 3) for c in CATEGORIES)
            for f in sorted(vocabulary)
            if sum(counts[label][f] for label in LABELS) >= MIN_COUNT
        }
        return cls((prior[0], prior[1], prior[2]), odds)  # type: ignore[arg-type]

    def log_odds(self, clean: str) -> dict[str, float]:
        """Log-odds of each category against a non-request for this text."""
        text = _NOT_TEXT_RE.sub("", clean)
        # Keyed by n-gram number: each counts once however often it occurs (presence, as in
        # training), exactly the known members of features(clean).
        matcher = self._matcher
        rows = {hit[0]: hit for _, hit in matcher.iter(text)} if text and matcher else {}
        if not rows:
            return dict(zip(CATEGORIES, self.prior, strict=True))
        _, repair, dispute, service = zip(*rows.values(), strict=True)
        return {
            "repair": self.prior[0] + sum(repair),
            "dispute": self.prior[1] + sum(dispute),
            "service": self.prior[2] + sum(service),
        }

    def strongest(self, clean: str, category: str, count: int = 3) -> list[str]:
        """The n-grams (longer than one character) that pull hardest towards ``category``."""
        index = CATEGORIES.index(category)
        ranked = heapq.nlargest(
            count,
            ((row[index], g) for g in features(clean) if len(g) > 1 and (row := self.odds.get(g))),
        )
        return [g for _, g in ranked]

    def save(self, path: Path) -> None:
        """Write the model as TSV: a prior line, then one n-gram per line."""
        lines = ["#prior\t" + "\t".join(f"{p:.3f}" for p in self.prior)]
        lines += [f"{g}\t{r[0]:g}\t{r[1]:g}\t{r[2]:g}" for g, r in self.odds.items()]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> NgramModel:
        """Read a model written by :meth:`save`."""
        prior: tuple[float, float, float] = (0.0, 0.0, 0.0)
        odds: dict[str, tuple[float, float, float]] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            gram, a, b, c = line.split("\t")
            if gram == "#prior":
                prior = (float(a), float(b), float(c))
            else:
                odds[gram] = (float(a), float(b), float(c))
        return cls(prior, odds)


@cache
def default_model() -> NgramModel | None:
    """The shipped model, or None when the file is missing (the rules then work alone)."""
    return NgramModel.load(MODEL_FILE) if MODEL_FILE.is_file() else None
