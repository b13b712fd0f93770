"""``python -m nlp.train``: rebuild the n-gram models from the tuning corpora.

Reads tests/data/*.tsv except the held-out set (heldout.tsv, which must never be trained or
tuned on) and writes nlp/data/ngram_model.tsv (categories against non-requests). The
urgency model, nlp/data/urgency_model.tsv (urgent against ordinary messages), also learns
from the written emergencies and chatter under tests/data/*/, since those are exactly the
messages it must tell apart. Deterministic: the same corpora give the same files.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nlp.evaluate import read_tsv
from nlp.ngram import MODEL_FILE, URGENCY_FILE, URGENT, NgramModel
from nlp.normalize import normalize

CORPORA = Path(__file__).resolve().parent.parent / "tests" / "data"
HELD_OUT = "heldout.tsv"


def training_files() -> list[Path]:
    """The corpora the model learns from."""
    return sorted(p for p in CORPORA.glob("*.tsv") if p.name != HELD_OUT)


def urgency_files() -> list[Path]:
    """The corpora the urgency model learns from: the tuning sets and the written
    emergencies and chatter."""
    nested = sorted(p for p in CORPORA.glob("*/*.tsv") if p.name != HELD_OUT)
    return training_files() + nested


def build() -> NgramModel:
    """Train the backoff on every tuning corpus."""
    examples = []
    for path in training_files():
        rows, _ = read_tsv(path)
        examples += [(row.label, normalize(row.text)) for row in rows]
    return NgramModel.train(examples)


def build_urgency() -> NgramModel:
    """Train the urgency model on every message whose urgency is marked."""
    examples = []
    for path in urgency_files():
        rows, _ = read_tsv(path)
        examples += [
            (URGENT if row.urgent else "ordinary", normalize(row.text))
            for row in rows
            if row.urgent is not None
        ]
    return NgramModel.train(examples, columns=(URGENT,), base="ordinary")


def main() -> int:
    """Write the model files."""
    model = build()
    model.save(MODEL_FILE)
    names = ", ".join(p.name for p in training_files())
    print(f"wrote {MODEL_FILE} ({len(model.odds):,} n-grams) from {names}")
    urgency = build_urgency()
    urgency.save(URGENCY_FILE)
    print(f"wrote {URGENCY_FILE} ({len(urgency.odds):,} n-grams) from {len(urgency_files())} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
