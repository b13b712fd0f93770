"""Pure, synchronous text classification for residents' messages.

``classify(text, rules)`` returns a :class:`Classification` with the words that decided it.
Importing this package loads nothing heavy; call :func:`warm_up` once at start-up to load
jieba's dictionaries before the first message arrives.
"""

from nlp.classifier import MAX_CLASSIFY_CHARS, Classification, Evidence, classify
from nlp.location import parse_location
from nlp.normalize import normalize
from nlp.rules import CATEGORIES, EDITABLE_KINDS, Cues, RuleError, Rules, compile_rule, default_cues
from nlp.segment import warm_up

__all__ = [
    "CATEGORIES",
    "EDITABLE_KINDS",
    "MAX_CLASSIFY_CHARS",
    "Classification",
    "Cues",
    "Evidence",
    "RuleError",
    "Rules",
    "classify",
    "compile_rule",
    "default_cues",
    "normalize",
    "parse_location",
    "warm_up",
]
