"""``python -m nlp.bench``: classifier speed against bare jieba, cold start, rule rebuild.

Prints, for the same messages (every text of the corpora under tests/data, repeated):
messages per second for bare ``jieba.lcut`` (its default, with HMM), for ``jieba.lcut``
without HMM (what the classifier uses), and for the full classifier; the time from a fresh
interpreter's ``import nlp`` to its first classification; and the time to rebuild the rules
(the matcher) for 5,000 keywords after one keyword changed, and with every rule compiled anew
(as on start-up). Figures, not a pass/fail: see BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import jieba

from nlp.classifier import classify
from nlp.cli import rules_from_environment
from nlp.evaluate import read_tsv
from nlp.normalize import normalize
from nlp.rules import Rules, forget_compiled
from nlp.segment import cut as segment_cut
from nlp.segment import warm_up
from nlp.train import CORPORA

COLD_START = (
    "import time; t = time.perf_counter(); import nlp; from nlp.cli import rules_from_environment;"
    " r = rules_from_environment(); nlp.classify('3号楼电梯坏了', r);"
    " print(time.perf_counter() - t)"
)


def corpus_texts() -> list[str]:
    """Every message text in the corpora."""
    return [row.text for path in sorted(CORPORA.glob("*.tsv")) for row in read_tsv(path)[0]]


def rate(function: Callable[[str], object], messages: list[str]) -> float:
    """Messages per second of ``function`` over ``messages``."""
    started = time.perf_counter()
    for text in messages:
        function(text)
    return len(messages) / (time.perf_counter() - started)


def show(label: str, per_second: float) -> None:
    """Print one throughput line."""
    print(f"  {label:<34}{per_second:>10,.0f} msg/s  ({1e6 / per_second:6.1f} µs/msg)")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m nlp.bench", description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)

    texts = corpus_texts()
    messages = (texts * (args.messages // len(texts) + 1))[: args.messages]
    average = sum(map(len, messages)) / len(messages)
    print(
        f"{len(messages):,} messages ({len(texts)} distinct, {average:.1f} characters on average)"
    )

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    warm_up()
    rules = rules_from_environment()
    print("throughput (one core; each round times bare jieba and the classifier back to back):")
    bare_rates, full_rates, both_rates, ratios = [], [], [], []
    for _ in range(args.rounds):
        bare_rates.append(rate(jieba.lcut, messages))
        full_rates.append(rate(lambda t: classify(t, rules), messages))
        ratios.append(full_rates[-1] / bare_rates[-1])
    for _ in range(max(1, args.rounds // 2)):
        both_rates.append(rate(lambda t: (classify(t, rules), segment_cut(normalize(t))), messages))
    nohmm = rate(lambda t: jieba.lcut(t, HMM=False), messages)
    show("jieba.lcut (default, HMM)", statistics.median(bare_rates))
    show("jieba.lcut(HMM=False)", nohmm)
    show("full classifier", statistics.median(full_rates))
    show("classifier + full segmentation", statistics.median(both_rates))
    print(
        f"  classifier / bare jieba.lcut: median {statistics.median(ratios):.2f}x over "
        f"{len(ratios)} rounds (range {min(ratios):.2f}-{max(ratios):.2f}; target >= 0.8x)"
    )

    colds = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", COLD_START], capture_output=True, text=True, check=True
        )
        colds.append(float(out.stdout.strip()))
    print(
        f"cold start, import to first classification: median {statistics.median(colds):.2f} s"
        f" (runs: {', '.join(f'{c:.2f}' for c in colds)}; target <= 1.5 s)"
    )

    table = {category: dict(words) for category, words in rules.keywords.items()}
    for i in range(5_000 - sum(len(w) for w in table.values())):
        table["repair"][f"测试词{i}号"] = 1.0
    count = sum(len(w) for w in table.values())
    firsts, builds = [], []
    for round_ in range(5):
        forget_compiled()  # as on start-up: every rule compiled
        started = time.perf_counter()
        Rules(keywords=table)
        firsts.append((time.perf_counter() - started) * 1000)
        # an admin's change: one keyword's weight, the other rules kept from the build before
        table["repair"][f"测试词{round_}号"] = 2.0
        started = time.perf_counter()
        Rules(keywords=table)
        builds.append((time.perf_counter() - started) * 1000)
    print(
        f"rule rebuild for {count:,} keywords plus the cue lists, one keyword changed: median "
        f"{statistics.median(builds):.1f} ms (target <= 50 ms); every rule compiled (first "
        f"build): median {statistics.median(firsts):.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
