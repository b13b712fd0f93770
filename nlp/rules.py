"""Classifier rules as data, compiled into one automaton.

A rule is a string:

* ``电梯`` — a word, matched as a substring of the normalised text. A one-character word
  (``吵``, ``修``) only counts where jieba starts a token with it, so ``修`` fires in
  "修一下" but not in "装修".
* ``灯+不亮`` — a phrase: the parts in this order within one clause (between punctuation).
* ``燃气&味`` — the parts in any order, within a short reach.
* ``燃气|煤气&味|漏`` — ``|`` gives alternatives for a part (any one will do); in a
  one-part rule (``电梯|电体``) each alternative becomes a rule of its own.
* ``re:PATTERN`` — a regular expression; each costs a scan per message, so use few.

Category keywords come from the community (the file's ``keywords:`` and, at runtime, the
database); the cue lists are built in (``nlp/data/cues.yaml``). All words, phrase parts and
cues share one Aho-Corasick automaton, so a message is scanned once however many rules exist.
"""

from __future__ import annotations

import re
import re._constants as sre_constants  # type: ignore[import-not-found]  # a pattern's anchor
import re._parser as sre_parser  # type: ignore[import-not-found]
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import ahocorasick
import yaml

from nlp.ngram import GramIndex, NgramModel, default_model, default_urgency_model, gram_index
from nlp.normalize import normalize_rules

CATEGORIES = ("repair", "dispute", "service")
CUE_GROUPS = ("cancel", "notice", "chatter", "question", "complaint")
# Cue lists only the built-in file holds: "ordinary" names matters the corpora count as
# ordinary repairs (水箱溢水), where the urgency model's guess is not taken (a rule still is).
BUILT_IN_GROUPS = ("ordinary",)
ALL_CUE_GROUPS = CUE_GROUPS + BUILT_IN_GROUPS
# What a community's keyword table may hold: category words, and cue words that add to the
# built-in cue lists (a compound's own way of saying "fixed" or "notice").
EDITABLE_KINDS = CATEGORIES + CUE_GROUPS
CUES_FILE = Path(__file__).parent / "data" / "cues.yaml"
DEFAULT_THRESHOLD = 3.0
# A keyword this heavy names its category whatever the wording model says (see Rules).
DECISIVE_WEIGHT = 4.0
MAX_PHRASE_SPAN = 16  # characters from the first part's start to the last part's end
# The models' places in Rules.grams (see gram_index in Rules.__post_init__).
BACKOFF, URGENCY = 0, 1


class RuleError(ValueError):
    """A rule string cannot be compiled (for example a bad regular expression)."""


class Rule(NamedTuple):
    """One compiled rule: what it is, where it points and how much it weighs (a tuple:
    thousands are built on every rule change)."""

    kind: str  # a category, a cue group, "urgent:<category>", "tier:<tier>"
    text: str  # the rule as written (after normalisation), for the evidence
    weight: float
    parts: tuple[str, ...] = ()  # phrase parts; a plain word has one part
    pattern: re.Pattern[str] | None = None
    # A one-character category word must begin a word (see the module doc).
    gated: bool = False
    # Fires wherever its one part occurs: no gating, no phrase, no pattern.
    plain: bool = False
    # Phrase parts must come in the written order ("a+b"); "a&b" takes any order.
    ordered: bool = True


@dataclass(frozen=True)
class Cues:
    """The built-in cue lists (see ``nlp/data/cues.yaml``)."""

    groups: Mapping[str, Mapping[str, float]]
    negation: tuple[str, ...]
    urgent: Mapping[str, tuple[str, ...]]
    tiers: Mapping[str, tuple[str, ...]]
    # Words that turn a message round (但是, 结果): "fixed" before one does not close
    # a fault reported after it (修好了，但是没两天又坏了).
    contrast: tuple[str, ...] = ()


@cache
def default_cues() -> Cues:
    """The shipped cue lists, read once."""
    return load_cues(CUES_FILE)


def load_cues(path: Path) -> Cues:
    """Cue lists from a file in the format of ``nlp/data/cues.yaml`` (the replay tool reads
    earlier versions of it)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return Cues(
        groups={group: dict(data.get(group) or {}) for group in ALL_CUE_GROUPS},
        negation=tuple(data.get("negation") or ()),
        urgent={cat: tuple(words) for cat, words in (data.get("urgent") or {}).items()},
        tiers={tier: tuple(data.get(tier) or ()) for tier in ("major", "complex")},
        contrast=tuple(data.get("contrast") or ()),
    )


def _word_rule(kind: str, word: str, weight: float) -> Rule:
    """A single word: matched at its first occurrence, except a one-character category word,
    which must begin a word (修 in 修一下, not 装修) and so is checked by segmentation."""
    gated = len(word) == 1 and kind in CATEGORIES
    return Rule(kind, word, weight, (word,), None, gated, not gated)


def compile_rule(kind: str, raw: str, weight: float, normalized: str | None = None) -> Rule:
    """Compile one rule string; raises :class:`RuleError` when it cannot be used.

    ``normalized`` is the rule already passed through :func:`normalize_rules` (batched by
    :class:`Rules` for speed); without it the rule is normalised here.
    """
    text = raw.strip()
    if not text:
        raise RuleError("empty rule")
    if text.startswith("re:"):
        try:
            pattern = re.compile(text[3:])
        except re.error as exc:
            raise RuleError(f"bad regular expression {text[3:]!r}: {exc}") from None
        return Rule(kind, text, weight, pattern=pattern)
    if normalized is None:
        normalized = normalize_rules([text])[0]
    if "&" in normalized:
        parts = tuple(p for p in (part.strip() for part in normalized.split("&")) if p)
        if len(parts) < 2:
            raise RuleError(f"rule {raw!r} needs two parts around '&'")
        return Rule(kind, "&".join(parts), weight, parts=parts, ordered=False)
    if "+" not in normalized:
        if not normalized:
            raise RuleError(f"rule {raw!r} has nothing left to match after normalisation")
        return _word_rule(kind, normalized, weight)
    parts = tuple(p for p in (part.strip() for part in normalized.split("+")) if p)
    if not parts:
        raise RuleError(f"rule {raw!r} has nothing left to match after normalisation")
    if len(parts) == 1:
        return compile_rule(kind, parts[0], weight, parts[0])
    return Rule(kind, "+".join(parts), weight, parts=parts)


@dataclass
class Rules:
    """Everything the classifier decides with. Immutable once built; swap it whole.

    Args:
        keywords: ``{category: {rule: weight}}`` from the community.
        cues: the built-in cue lists.
        threshold: the score a category needs for a message to become a ticket.
        version: a stamp the caller may use to tell rule sets apart.
    """

    keywords: Mapping[str, Mapping[str, float]]
    cues: Cues = field(default_factory=default_cues)
    threshold: float = DEFAULT_THRESHOLD
    version: int = 0
    # The n-gram backoff (see nlp.ngram): its log-odds times this weight are added to the
    # rule scores, moving a category by at most ``model_cap`` either way. It moves by at most
    # ``model_gated`` instead: upwards past more than ``model_gate`` of cancel, notice or
    # chatter cues; downwards where a turn overruled such cues, or where one keyword of at
    # least ``model_decisive`` names the category — so such a keyword (an admin's word of
    # weight 4) always opens a ticket unless a cue speaks against it. The model does not
    # undo what the rules read plainly. Where no keyword points at a category it is
    # consulted only if ``model_alone`` and no cancel, notice or chatter cue fired: its
    # capped pull alone must then reach the threshold (log-odds threshold / weight = 15).
    # Replayed on the 44th-91st held-out sets with today's code and each day's rules and
    # models (round 93, BENCHMARKS.md): missed requests 5.7% -> 4.0%, false tickets 3.1% ->
    # 3.2%; the same replay then moved weight and cap from 0.25 x 4 to 0.2 x 5 (errors 422
    # -> 396, false tickets 3.0%, missed 4.0%, wrong category 98 -> 78).
    # Chosen with the threshold on the 24th-42nd held-out sets, each classified with the
    # rules and model of the day before it was read (round 43, BENCHMARKS.md): threshold 2
    # with 1 x cap 2 (the setting of rounds 40-42) gave mean macro-F1 0.920, false tickets
    # 8.2%, missed 1.6%; threshold 3 with 0.25 x cap 4 gives 0.940, 3.8%, 2.0%. A higher bar
    # and a milder model: weak words must add up, and word statistics nudge rather than
    # decide.
    model: NgramModel | None = field(default_factory=default_model)
    model_weight: float = 0.2
    model_cap: float = 5.0
    model_gate: float = 2.5
    model_gated: float = 0.5
    model_decisive: float = DECISIVE_WEIGHT
    model_alone: bool = True
    # The urgency model (urgent against ordinary messages, trained on the corpora and the
    # written emergencies): a request whose log-odds reach ``urgency_threshold`` is urgent
    # even when no emergency rule names it. It never makes a ticket, and a message that
    # announces, closes or chats about a matter is never urgent. Chosen by replaying the
    # 24th-47th held-out sets, each with the corpora of its day (round 48, BENCHMARKS.md):
    # urgent recall 80% -> 92%, ordinary messages flagged urgent 2.4% -> 4.2%. Raised from
    # 8 to 9 in round 74: replayed on the 48th-73rd sets as first measured it lost no
    # emergency and dropped 2 false alarms (10 would have lost one), on the corpora 4.
    urgency: NgramModel | None = field(default_factory=default_urgency_model)
    urgency_threshold: float = 9.0
    # Who must go to an emergency: the category of the keywords where they add up to this
    # much, else the category the first emergency rule names.
    urgent_routing: float = 2.0
    # Both models' n-grams in one automaton (slots BACKOFF and URGENCY):
    # a message needing both is scanned once. Shared by every rule set with these models.
    grams: GramIndex = field(init=False, repr=False)
    rules: list[Rule] = field(init=False, repr=False)
    patterns: list[int] = field(init=False, repr=False)
    anchored: list[bool] = field(init=False, repr=False)
    full_masks: list[int] = field(init=False, repr=False)
    unanchored: list[int] = field(init=False, repr=False)  # patterns run on every message
    automaton: Any = field(init=False, repr=False)
    errors: list[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # The built-in cues come first: their rule ids, and their part of the matcher's
        # index, are the same in every rebuild and are computed once per process.
        cue = _cue_index(self.cues)
        self.grams = gram_index(self.model, self.urgency)  # in BACKOFF, URGENCY order
        self.rules = list(cue.rules)
        self.errors = []
        for kind in EDITABLE_KINDS:
            self._add_all(kind, (self.keywords.get(kind) or {}).items())
        self._build(cue)

    def _add_all(self, kind: str, entries: Iterable[tuple[str, float]]) -> None:
        pairs: list[tuple[str, Any]] = []
        for raw, weight in entries:
            text = str(raw).strip()
            if "|" not in text:
                pairs.append((text, weight))
                continue
            try:
                variants = expand_alternatives(text)
            except RuleError as exc:  # too many variants: this entry is left out, not the rest
                self.errors.append(f"{kind}: {text!r}: {exc}")
                continue
            pairs.extend((variant.strip(), weight) for variant in variants)
        # A rule change edits a few entries: the others were compiled by an earlier build.
        compiled = _COMPILED
        keys = [
            (kind, text, weight if isinstance(weight, (int, float, str)) else None)
            for text, weight in pairs
        ]
        found = [compiled.get(key) if key[2] is not None else None for key in keys]
        missing = [i for i, result in enumerate(found) if result is None]
        if missing:
            if len(compiled) + len(missing) > MAX_COMPILED:
                compiled.clear()
            normalized = normalize_rules([pairs[i][0] for i in missing])
            for i, norm in zip(missing, normalized, strict=True):
                text, weight = pairs[i]
                found[i] = result = _compile_entry(kind, text, weight, norm)
                if keys[i][2] is not None:
                    compiled[keys[i]] = result
        append = self.rules.append
        for entry in found:
            if isinstance(entry, Rule):
                append(entry)
            else:  # one bad rule must not take routing down for the whole community
                self.errors.append(str(entry))

    def _build(self, cue: _Index) -> None:
        tables = _Index(
            self.rules,
            dict(cue.keys),
            list(cue.patterns),
            list(cue.anchored),
            list(cue.full_masks),
        )
        _index_rules(self.rules[len(cue.rules) :], len(cue.rules), tables)
        index = tables.keys
        self.patterns, self.anchored = tables.patterns, tables.anchored
        self.full_masks = tables.full_masks
        self.unanchored = [rule_id for rule_id in self.patterns if not self.anchored[rule_id]]
        automaton = ahocorasick.Automaton()
        for key, (words, parts) in index.items():
            automaton.add_word(key, (len(key), words, parts))
        if index:
            automaton.make_automaton()
        self.automaton = automaton if index else None

    def words(self, category: str) -> dict[str, float]:
        """The category's rules as written, with their weights."""
        return {r.text: r.weight for r in self.rules if r.kind == category}

    def repeated(self) -> dict[tuple[str, str], int]:
        """Rules written more than once for the same kind, with how many times: the same
        word in two entries, or an alternative of one entry (吹倒|刮倒) written again as an
        entry of its own. Each copy fires and adds its weight, which is seldom meant."""
        counts = Counter((rule.kind, rule.text) for rule in self.rules)
        return {key: count for key, count in counts.items() if count > 1}


MAX_VARIANTS = 256
# Compiled rules by (kind, rule as written, weight), shared by every build in the process;
# emptied when it would grow past this many (a rebuild then compiles everything again).
MAX_COMPILED = 50_000
_COMPILED: dict[tuple[str, str, Any], Rule | str] = {}


def forget_compiled() -> None:
    """Drop the compiled entries kept between builds (the benchmark's first build)."""
    _COMPILED.clear()


def _compile_entry(kind: str, text: str, weight: Any, norm: str) -> Rule | str:
    """One entry's rule, or the error that keeps it out (for :class:`Rules` ``errors``)."""
    try:
        if norm and text[:3] != "re:" and not _SYNTAX.intersection(norm):
            # a single word, by far the most common rule: no parsing needed
            return _word_rule(kind, norm, float(weight))
        return compile_rule(kind, text, float(weight), norm)
    except (RuleError, ValueError, TypeError) as exc:
        return f"{kind}: {text!r}: {exc}"


_SYNTAX = frozenset("+&")  # characters that make a rule a phrase


@lru_cache(maxsize=4096)
def pattern_anchors(pattern: str) -> tuple[str, ...]:
    """Literal texts one of which every match of ``pattern`` must contain, or () when there
    are none: the longest run of literal characters outside groups, alternatives, repeats
    and look-arounds; failing that, a group of alternatives each with a literal run of its
    own ((社区|居委会|街道办)…: every match holds one of the three).

    Cached: a rebuild sees the same patterns again, and parsing them was about a sixth of
    its time (the ``re`` module caches compiled patterns, not this parse)."""
    try:
        parsed = sre_parser.parse(pattern)
    except (re.error, RecursionError):
        return ()
    run = _literal_run(parsed.data)
    if run:
        return (run,)
    for op, value in parsed.data:
        if op is sre_constants.SUBPATTERN:
            body = value[-1].data
            if len(body) == 1 and body[0][0] is sre_constants.BRANCH:
                runs = tuple(_literal_run(branch.data) for branch in body[0][1][1])
                if all(runs):
                    return runs
    return ()


def _literal_run(items: list[tuple[Any, Any]]) -> str:
    """The longest run of consecutive literal characters among a pattern's items."""
    best = run = ""
    for op, value in items:
        if op is sre_constants.LITERAL:
            run += chr(value)
        else:
            best, run = max(best, run, key=len), ""
    return max(best, run, key=len)


def expand_alternatives(raw: str) -> list[str]:
    """``燃气|煤气&味|漏`` → 燃气&味, 燃气&漏, 煤气&味, 煤气&漏. Patterns are left alone."""
    text = raw.strip()
    # Multi-part rules keep their alternatives: each alternative becomes a key of the same
    # part (see Rules._build), so a family like 摔|晕|…&老|人|… stays one rule.
    if text.startswith("re:") or "|" not in text or "+" in text or "&" in text:
        return [text]
    variants = [""]
    for token in re.split(r"([+&])", text):
        if token in ("+", "&"):
            variants = [v + token for v in variants]
        else:
            options = [o for o in token.split("|") if o.strip()] or [token]
            variants = [v + o for v in variants for o in options]
        if len(variants) > MAX_VARIANTS:
            raise RuleError(f"rule {raw!r} expands to more than {MAX_VARIANTS} rules")
    return variants


_CUE_INDEX: dict[int, tuple[Cues, _Index]] = {}
_NO_TARGETS: tuple[tuple[int, ...], tuple[tuple[int, int, int], ...]] = ((), ())


class _Index(NamedTuple):
    """Rules and their entries in the matcher's index (see :func:`_index_rules`)."""

    rules: list[Rule]
    # each key: the plain rules it fires (at its first occurrence) and the parts it is of
    # other rules (rule id, part number, the part's bit in the rule's mask), kept apart so
    # the matcher's inner loop needs no test per target
    keys: dict[str, tuple[tuple[int, ...], tuple[tuple[int, int, int], ...]]]
    patterns: list[int]
    anchored: list[bool]
    full_masks: list[int]


def _index_rules(rules: list[Rule], first_id: int, tables: _Index) -> None:
    """Add ``rules`` (numbered from ``first_id``) to the matcher's tables: each word or
    phrase part becomes an automaton key pointing at the rule (and the part)."""
    index, patterns, anchored = tables.keys, tables.patterns, tables.anchored
    full_masks = tables.full_masks
    get = index.get
    for rule_id, rule in enumerate(rules, first_id):
        mask, is_anchored = (1 << len(rule.parts)) - 1, False
        if rule.pattern is not None:
            patterns.append(rule_id)
            # A pattern runs only when the automaton saw a literal it cannot match without
            # (the 说 of 说(了)?明天, or one of 社区 / 居委会 in (社区|居委会)…): most messages
            # skip most patterns. Each anchor is recorded like a phrase part whose rule can
            # never complete.
            if anchors := pattern_anchors(rule.pattern.pattern):
                mask, is_anchored = -1, True
                for anchor in dict.fromkeys(anchors):
                    words, parts = get(anchor, _NO_TARGETS)
                    index[anchor] = (words, (*parts, (rule_id, 0, 1)))
        elif rule.plain:
            words, parts = get(rule.text, _NO_TARGETS)
            index[rule.text] = ((*words, rule_id), parts)
        else:
            for part_no, part in enumerate(rule.parts):
                bit = 1 << part_no
                for alternative in part.split("|"):
                    if alternative:
                        words, parts = get(alternative, _NO_TARGETS)
                        index[alternative] = (words, (*parts, (rule_id, part_no, bit)))
        anchored.append(is_anchored)
        full_masks.append(mask)


def _cue_index(cues: Cues) -> _Index:
    """The cue lists compiled and indexed once per process; they do not change while it
    runs."""
    cached = _CUE_INDEX.get(id(cues))
    if cached is not None and cached[0] is cues:
        return cached[1]
    holder = Rules.__new__(Rules)
    holder.rules, holder.errors = [], []
    for group in ALL_CUE_GROUPS:
        holder._add_all(group, cues.groups.get(group, {}).items())
    for category, words in cues.urgent.items():
        holder._add_all(f"urgent:{category}", ((w, 0.0) for w in words))
    for tier, words in cues.tiers.items():
        holder._add_all(f"tier:{tier}", ((w, 0.0) for w in words))
    if holder.errors:
        raise RuleError("; ".join(holder.errors))
    built = _Index(holder.rules, {}, [], [], [])
    _index_rules(built.rules, 0, built)
    _CUE_INDEX[id(cues)] = (cues, built)
    return built


def keyword_table_from_yaml(path: Path) -> dict[str, dict[str, float]]:
    """Read only the ``keywords:`` block of a community file (for the command-line tools).

    The bot itself validates the whole file through ``bot.config``; this reader is lenient so
    an admin can try rules while the rest of the file is still being written.
    """
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    table = data.get("keywords") or {}
    if not isinstance(table, dict):
        raise RuleError(f"{path}: keywords must be a mapping of category to words")
    return {
        str(category): {str(word): float(weight) for word, weight in (words or {}).items()}
        for category, words in table.items()
        if category in CATEGORIES
    }
