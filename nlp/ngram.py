"""A character n-gram backoff for the rules: what residents' wording suggests.

Keyword rules recognise the words someone wrote down; residents vary them endlessly
(趴着不动, 卡死, 全黑). Character 1-3-grams, counted over the labelled corpora, carry that
variation: for each n-gram the model keeps how much more likely it is in each category than
in non-requests (naive Bayes log-odds). The classifier adds a small, capped share of these
odds to the rule scores, so the model tips borderline messages, and community rules still
decide where they speak; where no keyword points at a category and no cue speaks against a
request, its capped pull alone may reach the threshold (``Rules.model_alone``). Regenerate
with ``python -m nlp.train``.
"""

from __future__ import annotations

import heapq
import math
import re
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Any

import ahocorasick

MODEL_FILE = Path(__file__).parent / "data" / "ngram_model.tsv"
URGENCY_FILE = Path(__file__).parent / "data" / "urgency_model.tsv"
CATEGORIES = ("repair", "dispute", "service")
URGENT = "urgent"  # the urgency model's one column (urgent against ordinary messages)
_NOT_TEXT_RE = re.compile(r"[^\u4e00-\u9fff0-9a-z]+")
SMOOTHING = 0.5
MIN_COUNT = 3  # messages an n-gram must occur in to be kept
_SECOND = itemgetter(1)  # the value of an automaton hit (end, value)


def features(clean: str) -> set[str]:
    """The character 1-, 2- and 3-grams of normalised text (letters, digits, CJK only)."""
    text = _NOT_TEXT_RE.sub("", clean)
    return {
        *text,
        *map(str.__add__, text, text[1:]),
        *map("".join, zip(text, text[1:], text[2:], strict=False)),
    }


@dataclass(frozen=True, eq=False)
class NgramModel:
    """Per-n-gram log-odds of each column against a base label, and the prior odds.

    The backoff's columns are the three categories against non-requests; the urgency model
    (see :func:`default_urgency_model`) has one column, urgent against ordinary messages.
    """

    prior: tuple[float, ...]
    odds: dict[str, tuple[float, ...]]
    columns: tuple[str, ...] = CATEGORIES

    @classmethod
    def train(
        cls,
        examples: Iterable[tuple[str, str]],
        columns: tuple[str, ...] = CATEGORIES,
        base: str = "none",
    ) -> NgramModel:
        """Multinomial naive Bayes over n-gram presence; ``examples`` are (label, clean),
        each label one of ``columns`` or ``base``."""
        labels = (*columns, base)
        counts = {label: Counter[str]() for label in labels}
        documents: Counter[str] = Counter()
        for label, clean in examples:
            documents[label] += 1
            counts[label].update(features(clean))
        vocabulary = set().union(*counts.values())
        log_p = {}
        for label in labels:
            total = sum(counts[label].values()) + SMOOTHING * len(vocabulary)
            log_p[label] = {f: math.log((counts[label][f] + SMOOTHING) / total) for f in vocabulary}
        n_docs = sum(documents.values())
        prior_base = math.log(documents[base] / n_docs)
        prior = tuple(math.log(documents[c] / n_docs) - prior_base for c in columns)
        # n-grams seen fewer than MIN_COUNT times are left out: they are most of the table,
        # slow every lookup and, measured on seventeen held-out sets, decide nothing.
        odds = {
            f: tuple(round(log_p[c][f] - log_p[base][f], 3) for c in columns)
            for f in sorted(vocabulary)
            if sum(counts[label][f] for label in labels) >= MIN_COUNT
        }
        return cls(prior, odds, columns)

    def log_odds(self, clean: str) -> dict[str, float]:
        """Log-odds of each column against the base label for this text."""
        lookup = gram_index(self)
        return lookup.log_odds(0, lookup.grams(clean))

    def strongest(self, clean: str, column: str, count: int = 3) -> list[str]:
        """The n-grams (longer than one character) that pull hardest towards ``column``."""
        index = self.columns.index(column)
        ranked = heapq.nlargest(
            count,
            ((row[index], g) for g in features(clean) if len(g) > 1 and (row := self.odds.get(g))),
        )
        return [g for _, g in ranked]

    def save(self, path: Path) -> None:
        """Write the model as TSV: the columns, a prior line, then one n-gram per line."""
        lines = ["#columns\t" + "\t".join(self.columns)]
        lines.append("#prior\t" + "\t".join(f"{p:.3f}" for p in self.prior))
        lines += [g + "".join(f"\t{v:g}" for v in r) for g, r in self.odds.items()]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> NgramModel:
        """Read a model written by :meth:`save` (a file without a columns line holds the
        three categories)."""
        columns: tuple[str, ...] = CATEGORIES
        prior: tuple[float, ...] = ()
        odds: dict[str, tuple[float, ...]] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            gram, *values = line.split("\t")
            if gram == "#columns":
                columns = tuple(values)
            elif gram == "#prior":
                prior = tuple(map(float, values))
            else:
                odds[gram] = tuple(map(float, values))
        return cls(prior or (0.0,) * len(columns), odds, columns)


class GramIndex:
    """The n-grams of one or more models in one automaton.

    A message's known n-grams are found in a single C-level pass, instead of building every
    n-gram string and looking each one up; the classifier's two models (the backoff and the
    urgency model) share the pass. :meth:`grams` gives the numbers of the distinct known
    n-grams of a text (presence, as in training), and :meth:`log_odds` one model's odds
    for them: its prior plus the sum of their rows, in the order they occur (the same sum,
    to the last bit, as adding the rows up one by one).
    """

    def __init__(self, models: tuple[NgramModel | None, ...]) -> None:
        self.models = models
        vocabulary = list(dict.fromkeys(g for m in models if m is not None for g in m.odds))
        self._automaton: Any = None
        if vocabulary:
            automaton = ahocorasick.Automaton()
            for number, gram in enumerate(vocabulary):
                automaton.add_word(gram, number)
            automaton.make_automaton()
            self._automaton = automaton
        # per model, per column: the odds of every n-gram by number (0 where the model has
        # not kept it, which adds nothing), as packed doubles: a column is one block of
        # memory, where a list would scatter its float objects (the lookups of a message
        # land all over the vocabulary, and in the classifier's working set that costs
        # cache misses: about 3 µs a message, measured)
        self._columns: tuple[tuple[array[float], ...], ...] = tuple(
            _by_number(m, vocabulary) if m is not None else () for m in models
        )

    def grams(self, clean: str) -> tuple[int, ...]:
        """The numbers of the distinct known n-grams of normalised text, first seen first."""
        text = _NOT_TEXT_RE.sub("", clean)
        if not text or self._automaton is None:
            return ()
        return tuple(dict.fromkeys(map(_SECOND, self._automaton.iter(text))))

    def log_odds(self, slot: int, grams: tuple[int, ...]) -> dict[str, float]:
        """Log-odds of each column of model number ``slot`` for n-grams from :meth:`grams`."""
        model = self.models[slot]
        assert model is not None, "no model in this slot"
        # One C call gathers a column's odds for these n-grams (itemgetter of a single index
        # gives the item, not a tuple, so short lists are gathered by hand).
        pick = itemgetter(*grams) if len(grams) > 1 else lambda odds: [odds[g] for g in grams]
        return {
            column: prior + sum(pick(odds))
            for column, prior, odds in zip(
                model.columns, model.prior, self._columns[slot], strict=True
            )
        }


def _by_number(model: NgramModel, vocabulary: list[str]) -> tuple[array[float], ...]:
    blank = (0.0,) * len(model.columns)
    rows = [model.odds.get(gram, blank) for gram in vocabulary]
    return tuple(array("d", [row[i] for row in rows]) for i in range(len(model.columns)))


@lru_cache(maxsize=8)
def gram_index(*models: NgramModel | None) -> GramIndex:
    """One shared index per combination of models (built once: tens of milliseconds)."""
    return GramIndex(models)


@cache
def default_model() -> NgramModel | None:
    """The shipped model, or None when the file is missing (the rules then work alone)."""
    return NgramModel.load(MODEL_FILE) if MODEL_FILE.is_file() else None


@cache
def default_urgency_model() -> NgramModel | None:
    """The shipped urgency model (urgent against ordinary messages), or None when missing."""
    return NgramModel.load(URGENCY_FILE) if URGENCY_FILE.is_file() else None
