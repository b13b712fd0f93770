"""``python -m nlp.train``: rebuild the n-gram backoff model from the tuning corpora.

Reads tests/data/*.tsv except the held-out set (heldout.tsv, which must never be trained or
tuned on) and writes nlp/data/ngram_model.tsv. Deterministic: the same corpora give the
same file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nlp.evaluate import read_tsv
from nlp.ngram import MODEL_FILE, NgramModel
from nlp.normalize import normalize

CORPORA = Path(__file__).resolve().parent.parent / "tests" / "data"
HELD_OUT = "heldout.tsv"


def training_files() -> list[Path]:
    """The corpora the model learns from."""
    return sorted(p for p in CORPORA.glob("*.tsv") if p.name != HELD_OUT)


def build() -> NgramModel:
    """Train on every tuning corpus."""
    examples = []
    for path in training_files():
        rows, _ = read_tsv(path)
        examples += [(row.label, normalize(row.text)) for row in rows]
    return NgramModel.train(examples)


def main() -> int:
    """Write the model file."""
    model = build()
    model.save(MODEL_FILE)
    names = ", ".join(p.name for p in training_files())
    print(f"wrote {MODEL_FILE} ({len(model.odds):,} n-grams) from {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
