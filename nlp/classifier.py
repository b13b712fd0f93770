"""The rule-based classifier: weighted keywords over jieba tokens, with cues and negation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nlp.location import parse_location
from nlp.normalize import normalize
from nlp.rules import CATEGORIES, Rules
from nlp.segment import cut

MAX_CLASSIFY_CHARS = 2000
_NEGATIONS = ("不是", "没有", "并非", "不算")


@dataclass(frozen=True)
class Evidence:
    """One rule that fired, and what it did to the decision."""

    rule: str  # "keyword", "cancel", "notice", "urgent", "negated"
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
    location: dict[str, str]
    evidence: tuple[Evidence, ...] = ()
    scores: dict[str, float] = field(default_factory=dict)
    tokens: tuple[str, ...] = ()

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


def _negated(text: str, start: int) -> bool:
    before = text[max(0, start - 3) : start]
    return any(before.endswith(n) or before[:-1].endswith(n) for n in _NEGATIONS)


def classify(text: str, rules: Rules) -> Classification:
    """Classify one message. Pure and synchronous; long texts are cut to 2,000 characters."""
    clean = normalize(text[: MAX_CLASSIFY_CHARS * 2])[:MAX_CLASSIFY_CHARS]
    tokens = tuple(cut(clean)) if clean else ()
    evidence: list[Evidence] = []
    scores = dict.fromkeys(CATEGORIES, 0.0)
    for category in CATEGORIES:
        for word, weight in rules.words(category).items():
            start = clean.find(word)
            if start < 0:
                continue
            if _negated(clean, start):
                evidence.append(Evidence("negated", word, category, -weight))
                continue
            scores[category] += weight
            evidence.append(Evidence("keyword", word, category, weight))

    urgent_hits = [cue for cue in rules.urgent_cues if cue in clean]
    cancel_hits = [cue for cue in rules.cancel_cues if cue in clean]
    notice_hits = [cue for cue in rules.notice_cues if cue in clean]
    evidence += [Evidence("urgent", cue) for cue in urgent_hits]
    evidence += [Evidence("cancel", cue) for cue in cancel_hits]
    evidence += [Evidence("notice", cue) for cue in notice_hits]

    best = max(CATEGORIES, key=lambda c: scores[c])
    top = scores[best]
    urgent = bool(urgent_hits) and not cancel_hits and not notice_hits
    if urgent and top < rules.threshold:
        # An emergency is a request even when no routing word fired: people must go now.
        best, top = "repair", max(top, rules.threshold)
    is_request = top >= rules.threshold and not cancel_hits and not notice_hits
    category = best if is_request else "none"
    confidence = top / (top + rules.threshold) if is_request else 1.0 - top / (top + 4.0)
    tier = _tier(clean, rules, urgent) if is_request else "general"
    return Classification(
        category=category,
        confidence=round(confidence, 3),
        urgent=urgent and is_request,
        tier=tier,
        location=parse_location(clean),
        evidence=tuple(evidence),
        scores=scores,
        tokens=tokens,
    )


def _tier(text: str, rules: Rules, urgent: bool) -> str:
    if any(cue in text for cue in rules.complex_cues):
        return "complex"
    if urgent or any(cue in text for cue in rules.major_cues):
        return "major"
    return "general"
