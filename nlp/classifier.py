"""The rule-based classifier: one automaton pass, jieba token boundaries, cues and negation."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import cache, cached_property
from itertools import product
from math import prod
from typing import Any, NamedTuple

from nlp.location import parse_location
from nlp.ngram import URGENT, GramIndex, NgramModel
from nlp.normalize import normalize
from nlp.rules import ALL_CUE_GROUPS, BACKOFF, CATEGORIES, MAX_PHRASE_SPAN, URGENCY, Rule, Rules
from nlp.segment import cut, tokenizer, word_starts

MAX_CLASSIFY_CHARS = 2000
COMPLAINT_CAP = 1.5  # the most that complaint cues add to a category's score
MIN_CATEGORY_EVIDENCE = 1.0  # the least category evidence complaint cues may lift
_CLAUSE_BREAK = r"[,.!?;:，。！？；：\n]"
_CLAUSE_BREAK_RE = re.compile(_CLAUSE_BREAK)
_LAST_CLAUSE_BREAK_RE = re.compile(r"(?s:.*)" + _CLAUSE_BREAK)  # the last one before a point
# What keeps an emergency word from reporting one: a near miss (差点摔), a fear or a
# supposition (怕哪天掉下去, 万一着火) in the same clause before it.
# A habit is no emergency either (老母亲起夜总摔: a grab bar is wanted, not an ambulance).
# (预防 / 防跌: prevention is no emergency, 防跌倒评估; round 89)
_HYPOTHETICAL_RE = re.compile(
    "差点|差一点|险些|万一|要是|如果|假如|生怕|怕哪天|担心会|以防|防止|预防|总摔|老摔|经常摔|容易摔|怕摔|防摔|防跌"
)
# Question forms that contain a negator but ask rather than deny (是不是跳闸了, 有没有漏水).
_NOT_NEGATION = ("是不是", "是否", "有没有", "能不能", "会不会", "可不可以")
_NEGATION_GAP = "再也都还太很真"  # 没再漏, 不太吵, 不是真着火
# jieba keeps some adverb + verb runs as one word (又坏了, 都坏了); a one-character rule may
# still fire inside such a token when only these characters come before it.
_ADVERB_PREFIX = frozenset("又也都还就全总老再太很真好快一直经常天")


class Evidence(NamedTuple):
    """One rule that fired, and what it did to the decision (a tuple: cheap to make)."""

    rule: str  # keyword, cancel, notice, chatter, question, complaint, urgent, negated,
    # shadowed, overruled (a cancel or notice cue before 但是 and a fault reported after it),
    # ngram (the backoff's pull, with its strongest n-grams as the word), urgent_model (the
    # urgency model made the message urgent: its strongest n-grams and log-odds)
    word: str
    category: str | None = None
    weight: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form for logs, the CLI and the admin's *try it* box."""
        out: dict[str, Any] = {"rule": self.rule, "word": self.word}
        if self.category is not None:
            out["category"] = self.category
        if self.weight:
            out["weight"] = self.weight
        return out


@dataclass(frozen=True)
class Classification:
    """What a message is, how sure the classifier is, and why."""

    category: str
    confidence: float
    urgent: bool
    tier: str
    rule_evidence: tuple[Evidence, ...] = ()
    scores: dict[str, float] = field(default_factory=dict)
    normalized: str = ""
    # (category, pull, model) of the n-gram backoff; named in the evidence on demand
    ngram: tuple[str, float, NgramModel | None] | None = field(default=None, repr=False)
    # (log-odds, model) when the urgency model, not a rule, made the message urgent
    urgency: tuple[float, NgramModel] | None = field(default=None, repr=False)

    @cached_property
    def location(self) -> dict[str, str]:
        """Building, unit and room named in the message (parsed on first use)."""
        return parse_location(self.normalized)

    @cached_property
    def evidence(self) -> tuple[Evidence, ...]:
        """The rules that fired, then the n-gram backoff's pull with its strongest n-grams,
        then the urgency model's odds where it made the message urgent."""
        found = self.rule_evidence
        if self.ngram is not None:
            category, pull, model = self.ngram
            if model is not None and abs(pull) >= 0.05:
                grams = "·".join(model.strongest(self.normalized, category))
                found = (*found, Evidence("ngram", grams, category, pull))
        if self.urgency is not None:
            odds, urgency = self.urgency
            grams = "·".join(urgency.strongest(self.normalized, URGENT))
            found = (*found, Evidence("urgent_model", grams, None, odds))
        return found

    @property
    def tokens(self) -> tuple[str, ...]:
        """jieba's words of the normalised text (computed on demand, for display)."""
        return tuple(w for w in cut(self.normalized) if w.strip())

    @property
    def is_request(self) -> bool:
        """True for repair, dispute or service."""
        return self.category != "none"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "category": self.category,
            "confidence": round(self.confidence, 3),
            "urgent": self.urgent,
            "tier": self.tier,
            "location": self.location,
            "evidence": [e.as_dict() for e in self.evidence],
        }


WORD_WINDOW = 6  # characters left of a one-character word searched for a word running over it
MAX_BLOCK = 40  # the most characters each side of it segmented to decide where words start
# Characters jieba's default mode never puts inside a word (outside re_han_default).
_SEPARATOR = r"[^\u4e00-\u9fd5a-zA-Z0-9+#&._%\-]"
_SEPARATOR_RE = re.compile(_SEPARATOR)
_LAST_SEPARATOR_RE = re.compile(r"(?s:.*)" + _SEPARATOR)  # the last one before a point


class _Message:
    """One message being classified, with jieba's word boundaries where a rule needs them."""

    def __init__(self, clean: str) -> None:
        self.clean = clean
        self._window: tuple[int, int, list[int]] | None = None  # low, high, token starts
        self._grams: tuple[int, ...] | None = None

    def grams(self, index: GramIndex) -> tuple[int, ...]:
        """The message's known n-grams, found once for both models."""
        if self._grams is None:
            self._grams = index.grams(self.clean)
        return self._grams

    def starts_word(self, index: int) -> bool:
        """Whether a word begins at ``index``: jieba starts a token there, or only adverbs of
        the same token come before it (又坏了).

        Only one-character rules ask, so jieba segments just the stretch of text it would
        segment on its own — the run between punctuation or spaces around the character
        (jieba never joins across them) — rather than the whole message: the same decision
        as full segmentation (tests/test_nlp.py checks every character of the corpora), at
        a fraction of the cost. Only in a run longer than MAX_BLOCK characters either side
        is the decision taken on a window of that size.
        """
        text = self.clean
        if index == 0 or _SEPARATOR_RE.match(text, index - 1):
            return True  # jieba never joins across the start, spaces or punctuation
        if not self._may_be_covered(index):
            return True  # no dictionary word can run across it: every cut starts a word here
        window = self._window
        if window is None or not (window[0] <= index < window[1]):
            floor = max(0, index - MAX_BLOCK)
            before = _LAST_SEPARATOR_RE.match(text, floor, index)
            low = before.end() if before else floor
            after = _SEPARATOR_RE.search(text, index, index + MAX_BLOCK)
            high = after.start() if after else min(len(text), index + MAX_BLOCK)
            starts = [low + start for start in word_starts(text[low:high])]
            window = self._window = (low, high, starts)
        starts = window[2]
        token_start = starts[bisect_right(starts, index) - 1]
        return all(ch in _ADVERB_PREFIX for ch in text[token_start:index])

    def _may_be_covered(self, index: int) -> bool:
        """Whether a dictionary word might start left of ``index`` and run over it: jieba's
        prefix dictionary holds every prefix of every word, so if no text from a start
        within the window up to ``index`` is such a prefix, none can. A few lookups instead
        of a segmentation for most one-character hits."""
        text = self.clean
        prefixes = tokenizer().FREQ
        for start in range(index - 1, max(-1, index - WORD_WINDOW - 1), -1):
            if _SEPARATOR_RE.match(text, start):
                return False
            if text[start : index + 1] in prefixes:
                return True
        return False

    def same_clause(self, start: int, end: int) -> bool:
        return _CLAUSE_BREAK_RE.search(self.clean, start, end) is None

    def negated(self, start: int, negators: tuple[str, ...]) -> bool:
        before = self.clean[max(0, start - 4) : start]
        if before.endswith(_NOT_NEGATION):
            return False
        if before.endswith(negators):
            return True
        # one softening character in between: 没有再漏水, 不太吵
        return (
            len(before) >= 2
            and before[-1] in _NEGATION_GAP
            and before[:-1].endswith(negators)
            and not before[:-1].endswith(_NOT_NEGATION)
        )


def _span(rule: Rule, found: list[tuple[int, int, int]], msg: _Message) -> tuple[int, int] | None:
    """Where the rule matched, or None. ``found`` holds (part number, start, end)."""
    if len(rule.parts) == 1:  # a gated one-character word (plain rules never get here)
        for _, start, end in sorted(found, key=lambda f: f[1]):
            if msg.starts_word(start):
                return start, end
        return None
    by_part: dict[int, list[tuple[int, int]]] = {}
    for part_no, start, end in found:
        by_part.setdefault(part_no, []).append((start, end))
    if len(by_part) < len(rule.parts):
        return None
    # Emergencies are often told in two clauses (狗咬了一个小孩，腿上出血了): their
    # phrases may cross punctuation, over a longer reach.
    urgent = rule.kind.startswith("urgent:")
    reach = MAX_PHRASE_SPAN * (2 if urgent else 1)
    if not rule.ordered:
        return _unordered_span(by_part, msg, reach, urgent)
    span = _ordered_span(rule, by_part)
    if span is None or span[1] - span[0] > reach:
        return None
    return span if urgent or msg.same_clause(*span) else None


MAX_COMBINATIONS = 64  # occurrences of an any-order rule's parts searched for the closest set


def _unordered_span(
    by_part: dict[int, list[tuple[int, int]]], msg: _Message, reach: int, urgent: bool
) -> tuple[int, int] | None:
    """Any order: the shortest stretch holding one occurrence of every part, within reach
    and (unless urgent) within one clause. An earlier occurrence of one part does not hide a
    closer set further on (楼上漏水…，他们电话不接: 他们 next to 电话不接 counts, not 楼上)."""
    occurrences = list(by_part.values())
    if prod(map(len, occurrences)) > MAX_COMBINATIONS:
        # a part repeated many times (a long message): its earliest occurrences decide
        occurrences = [[min(spans)] for spans in occurrences]
    best: tuple[int, int] | None = None
    for chosen in product(*occurrences):
        start, end = min(s for s, _ in chosen), max(e for _, e in chosen)
        if end - start > reach or (best is not None and end - start >= best[1] - best[0]):
            continue
        if urgent or msg.same_clause(start, end):
            best = (start, end)
    return best


def _ordered_span(rule: Rule, by_part: dict[int, list[tuple[int, int]]]) -> tuple[int, int] | None:
    """In order: the shortest chain starting from each occurrence of the first part."""
    best: tuple[int, int] | None = None
    for first_start, first_end in sorted(by_part[0]):
        position = first_end
        for part_no in range(1, len(rule.parts)):
            following = [span for span in sorted(by_part[part_no]) if span[0] >= position]
            if not following:
                return best
            position = following[0][1]
        if best is None or position - first_start < best[1] - best[0]:
            best = (first_start, position)
    return best


def _within_reach(
    scores: dict[str, float],
    pulls: dict[str, float],
    against: float,
    reach: tuple[float, float],
    rules: Rules,
) -> bool:
    """Whether the n-gram backoff could change the decision the rules make alone.

    It moves each category down by at most ``drop`` and up by at most ``lift_up`` (see
    :func:`_model_reach`): a message whose best net score stays below the threshold even
    with the lift added is a non-request; one whose best leads by more than lift plus drop
    keeps its category; one whose net score stays above the threshold even with the drop
    taken away stays a request. Elsewhere it is not consulted, which spares most messages
    its cost without changing any category or ticket decision.
    """
    lift_up, drop = reach
    ranked = sorted(scores.values(), reverse=True)
    lift = min(pulls["complaint"], COMPLAINT_CAP) if ranked[0] >= MIN_CATEGORY_EVIDENCE else 0.0
    net = ranked[0] + lift - against
    if net + lift_up < rules.threshold:
        return False  # a non-request whatever the model says
    if ranked[0] - ranked[1] <= lift_up + drop:
        return True  # the model may pick the other category
    return net - drop < rules.threshold


def _model_reach(against: float, overruled: bool, rules: Rules) -> tuple[float, float, float]:
    """How far the model may lift a category, drop one, and drop one a decisive keyword
    names: its full reach, except that it lifts only a little past a clear cancel, notice
    or chatter cue, and drops only a little where a turn overruled such cues (修好了，但是又
    漏了) or a keyword of decisive weight named the category: what the rules read plainly
    is not undone by word statistics."""
    full = rules.model_cap
    gated = min(rules.model_gated, full)
    return (
        gated if against > rules.model_gate else full,
        gated if overruled else full,
        gated,
    )


def _yields(category: str, span: tuple[int, int], claims: list[tuple[str, int, int, bool]]) -> bool:
    """Whether a keyword match gives way to another category's match over the same text:
    one that contains it and is longer (门禁卡 over 门禁), or an emergency cue that overlaps
    it (摔倒了 is a fall, not the 倒了 of a fallen tree)."""
    start, end = span
    for other, other_start, other_end, urgent in claims:
        if other == category:
            continue
        if urgent and other_start < end and start < other_end:
            return True
        if other_start <= start and end <= other_end and other_end - other_start > end - start:
            return True
    return False


_PULLS = ALL_CUE_GROUPS  # every cue group adds to its pull; which pulls count is decided below


class _Tally(NamedTuple):
    """What the fired rules add up to."""

    scores: dict[str, float]
    pulls: dict[str, float]
    urgent_for: list[str]
    tiers: set[str]
    evidence: list[Evidence]
    overruled: bool
    decisive: frozenset[str]  # categories named by one keyword of decisive weight
    # an emergency rule matched but was negated (打不着火, 没有困人); a near miss (差点被困)
    # is not: the hazard that nearly hurt someone is often still there
    averted: bool


def _match(msg: _Message, rules: Rules) -> list[tuple[Rule, tuple[int, int]]]:
    """Every rule that fires, with where: one automaton pass plus the few regex rules."""
    # Plain rules (most hits) fire at their first occurrence; gated words and phrases
    # collect every occurrence and are resolved by _span.
    first: dict[int, tuple[int, int]] = {}
    found: dict[int, list[tuple[int, int, int]]] = {}
    seen: dict[int, int] = {}  # bitmask of the parts of each multi-part rule seen so far
    if rules.automaton is not None and msg.clean:
        for end, (length, words, parts) in rules.automaton.iter(msg.clean):
            start, stop = end - length + 1, end + 1
            for rule_id in words:
                if rule_id not in first:
                    first[rule_id] = (start, stop)
            for rule_id, part_no, bit in parts:
                if rule_id in seen:
                    found[rule_id].append((part_no, start, stop))
                    seen[rule_id] |= bit
                else:
                    found[rule_id] = [(part_no, start, stop)]
                    seen[rule_id] = bit
    all_rules = rules.rules
    fired = [(all_rules[rule_id], span) for rule_id, span in first.items()]
    full = rules.full_masks
    # Patterns run in rule order: one without an anchor always, an anchored one (its mask is
    # -1) only when the automaton saw its anchor literal — most messages run none.
    for rule_id in sorted([*rules.unanchored, *(r for r in found if full[r] == -1)]):
        pattern = all_rules[rule_id].pattern
        if pattern is not None and (match := pattern.search(msg.clean)):
            fired.append((all_rules[rule_id], (match.start(), match.end())))
    for rule_id, occurrences in found.items():
        if seen[rule_id] != full[rule_id]:
            continue  # a part is missing: the rule cannot fire
        if (span := _span(all_rules[rule_id], occurrences, msg)) is not None:
            fired.append((all_rules[rule_id], span))
    return fired


# a turn marker holding one of these reports by itself (又坏, 也没用, 一天了没来, 一周了没动静)
_SELF_REPORTING = ("又", "没用", "没来", "不来", "没动静", "没下文")


def _last_turn(clean: str, markers: tuple[str, ...]) -> tuple[int, bool] | None:
    """Where the last 但是 / 结果 / 又坏 of the message starts, and whether the marker itself
    says something went wrong again, did not help or did not come (又坏, 没两天又, 贴了告示
    也没用, 说马上来，一天了没来)."""
    if not markers:
        return None
    # One scan of the reversed text finds the last marker (the longest where two end at
    # the same character).
    match = _reversed_markers(markers).search(clean[::-1])
    if match is None:
        return None
    found = match.group()[::-1]
    return len(clean) - match.end(), any(word in found for word in _SELF_REPORTING)


@cache
def _negator_ends(negators: tuple[str, ...]) -> frozenset[str]:
    return frozenset(_NEGATION_GAP).union(negator[-1] for negator in negators if negator)


@cache
def _reversed_markers(markers: tuple[str, ...]) -> re.Pattern[str]:
    ordered = sorted(markers, key=len, reverse=True)
    return re.compile("|".join(re.escape(marker[::-1]) for marker in ordered))


# What each rule kind does in the tally, looked up once per fired rule instead of testing
# prefixes: (role, what it names: a category, cue group, urgent category or tier).
_CATEGORY, _PULL, _URGENT, _TIER, _OTHER = range(5)
_ROLES: dict[str, tuple[int, str]] = {}


def _role(kind: str) -> tuple[int, str]:
    role = _ROLES.get(kind)
    if role is None:
        if kind in CATEGORIES:
            role = (_CATEGORY, kind)
        elif kind in _PULLS:
            role = (_PULL, kind)
        elif kind.startswith("urgent:"):
            role = (_URGENT, kind[7:])
        elif kind.startswith("tier:"):
            role = (_TIER, kind[5:])
        else:
            role = (_OTHER, kind)
        _ROLES[kind] = role
    return role


# Evidence from a plain tuple: one C call, where the NamedTuple constructor is a Python one
# (a few fired rules per message, each with its evidence).
_new_tuple = tuple.__new__


def _hypothetical(clean: str, span: tuple[int, int], rule: Rule) -> bool:
    """Whether a near miss, a fear or a supposition comes before the end of an emergency
    rule's match, in the clause where the match starts — unless the rule names it itself
    (差点砸到: a thing that fell and nearly hit someone is the emergency)."""
    before = _LAST_CLAUSE_BREAK_RE.match(clean, 0, span[0])
    found = _HYPOTHETICAL_RE.search(clean, before.end() if before else 0, span[1])
    return found is not None and found.group() not in rule.text


def _tally(fired: list[tuple[Rule, tuple[int, int]]], msg: _Message, rules: Rules) -> _Tally:
    """Add up the fired rules, leaving out negated and shadowed ones."""
    scores = dict.fromkeys(CATEGORIES, 0.0)
    pulls = dict.fromkeys(_PULLS, 0.0)
    urgent_for: list[str] = []
    overruled = averted = False
    decisive: set[str] = set()
    tiers: set[str] = set()
    evidence: list[Evidence] = []
    roles = [_role(rule.kind) for rule, _ in fired]
    claims = [
        (name, start, end, role == _URGENT)
        for (role, name), (_, (start, end)) in zip(roles, fired, strict=True)
        if role in (_CATEGORY, _URGENT)
    ]
    negators = rules.cues.negation
    # Only a rule right after a negator's last character (or a softening one) can be
    # negated: one set lookup spares most rules the full check.
    negator_ends, clean = _negator_ends(negators), msg.clean
    turn = _last_turn(clean, rules.cues.contrast)
    if turn is not None and not (
        turn[1]
        or any(
            (role == _CATEGORY or name == "complaint") and start >= turn[0]
            for (role, name), (_, (start, _)) in zip(roles, fired, strict=True)
        )
    ):
        turn = None  # nothing is reported or chased after the turn: the cues before it stand
    shadowing = len(claims) > 1
    decisive_weight = rules.model_decisive
    for (role, name), (rule, span) in zip(roles, fired, strict=True):
        if role == _TIER:
            tiers.add(name)
        elif role == _CATEGORY and shadowing and _yields(name, span, claims):
            evidence.append(_new_tuple(Evidence, ("shadowed", rule.text, name, rule.weight)))
        elif span[0] and clean[span[0] - 1] in negator_ends and msg.negated(span[0], negators):
            averted = averted or role == _URGENT
            evidence.append(_new_tuple(Evidence, ("negated", rule.text, rule.kind, rule.weight)))
        elif role == _CATEGORY:
            scores[name] += rule.weight
            evidence.append(_new_tuple(Evidence, ("keyword", rule.text, name, rule.weight)))
            if rule.weight >= decisive_weight:
                decisive.add(name)
        elif role == _PULL:
            if turn is not None and span[1] <= turn[0] and name in ("cancel", "notice"):
                overruled = True
                evidence.append(_new_tuple(Evidence, ("overruled", rule.text, None, rule.weight)))
            else:
                pulls[name] += rule.weight
                evidence.append(_new_tuple(Evidence, (name, rule.text, None, rule.weight)))
        elif role == _URGENT and _hypothetical(clean, span, rule):
            evidence.append(_new_tuple(Evidence, ("negated", rule.text, rule.kind, 0.0)))
        elif role == _URGENT:
            urgent_for.append(name)
            evidence.append(_new_tuple(Evidence, ("urgent", rule.text, name, 0.0)))
    return _Tally(
        scores, pulls, urgent_for, tiers, evidence, overruled, frozenset(decisive), averted
    )


def classify(text: str, rules: Rules) -> Classification:
    """Classify one message. Pure and synchronous; long texts are cut to 2,000 characters."""
    clean = normalize(text[: MAX_CLASSIFY_CHARS * 2])[:MAX_CLASSIFY_CHARS]
    msg = _Message(clean)
    tally = _tally(_match(msg, rules), msg, rules)
    scores, pulls = tally.scores, tally.pulls
    if scores["service"] > 0:
        # A service enquiry reads like a question: 在哪办, 需要带什么.
        scores["service"] += min(pulls["question"], 1.5)
    against = pulls["cancel"] + pulls["notice"] + pulls["chatter"]
    combined = dict(scores)
    ngram: tuple[str, float, NgramModel | None] | None = None
    up, drop, decisive_drop = _model_reach(against, tally.overruled, rules)
    leader = max(CATEGORIES, key=scores.__getitem__)
    leader_drop = decisive_drop if leader in tally.decisive else drop
    # The model is consulted where some keyword points at a category, and — when
    # ``model_alone`` allows — where none does and no cue speaks against a request: then its
    # pull alone, capped as ever, must reach the threshold (log-odds of threshold / weight).
    alone = rules.model_alone and scores[leader] == 0 and against == 0
    if rules.model is not None and (
        alone
        or (scores[leader] > 0 and _within_reach(scores, pulls, against, (up, leader_drop), rules))
    ):
        for cat, odds in rules.grams.log_odds(BACKOFF, msg.grams(rules.grams)).items():
            floor = decisive_drop if cat in tally.decisive else drop
            combined[cat] += max(-floor, min(up, rules.model_weight * odds))
    best = max(CATEGORIES, key=lambda c: combined[c])
    top = combined[best]
    second = max(combined[c] for c in CATEGORIES if c != best)
    if combined != scores:
        ngram = (best, round(combined[best] - scores[best], 3), rules.model)
    # How a message is said (又, 好几天了, 能不能管管, 楼道里) shows a resident reporting
    # something; it lifts a category that already has evidence, never creates one.
    lift = min(pulls["complaint"], COMPLAINT_CAP) if scores[best] >= MIN_CATEGORY_EVIDENCE else 0.0
    net = top + lift - against
    is_request = net >= rules.threshold
    # Emergencies bypass the threshold unless the message announces or closes a matter —
    # the cues counted together, as the threshold counts them (救护车 … 大家别担心: a notice
    # cue and a cancel cue, neither enough alone; round 87, two corpus false alarms fewer).
    calm = against < 3
    urgent = bool(tally.urgent_for) and calm
    if urgent:
        # Who must go follows the routing words alone; where they do not decide, the
        # emergency itself says.
        rule_best = max(CATEGORIES, key=lambda c: scores[c])
        is_request = True
        best = rule_best if scores[rule_best] >= rules.urgent_routing else tally.urgent_for[0]
    urgency: tuple[float, NgramModel] | None = None
    if (
        is_request
        and calm
        and not urgent
        and not tally.averted
        and not pulls["ordinary"]
        and rules.urgency is not None
    ):
        # An emergency no rule names (一个拿菜刀出来了, 外机往下沉): the urgency model reads
        # the wording. Only for a request: it never opens a ticket. Not where the message
        # itself denies the emergency a rule found (打不着火, 没有人被困): the wording around
        # a denied emergency is an emergency's wording. Nor where the built-in ``ordinary``
        # list names a matter the corpora count as an ordinary repair (水箱溢水): the model,
        # trained on neighbouring emergencies, reads those as one now and then.
        odds = rules.grams.log_odds(URGENCY, msg.grams(rules.grams)).get(URGENT, 0.0)
        if odds >= rules.urgency_threshold:
            urgent = True
            urgency = (round(odds, 3), rules.urgency)
    evidence = tuple(tally.evidence)
    if not is_request:
        confidence = 1.0 - 0.5 * max(0.0, min(net, rules.threshold)) / rules.threshold
        return Classification(
            "none",
            round(confidence, 3),
            False,
            "general",
            evidence,
            scores,
            clean,
            ngram,
        )
    margin = (top - second) / top if top > 0 else 1.0
    confidence = 0.5 + 0.25 * min(1.0, max(0.0, net - rules.threshold) / rules.threshold)
    confidence = min(1.0, confidence + 0.25 * margin)
    if "complex" in tally.tiers:
        tier = "complex"
    elif urgent or "major" in tally.tiers:
        tier = "major"
    else:
        tier = "general"
    return Classification(
        best, round(confidence, 3), urgent, tier, evidence, scores, clean, ngram, urgency
    )
