"""Text normalisation before segmentation: width, case, noise and repeated punctuation."""

from __future__ import annotations

import re
import unicodedata

_URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION_RE = re.compile(r"@\S+?(?=\s|$)|@[\w\u4e00-\u9fff]{1,20}")
# Emoji and pictographs carry no routing signal; they become spaces so they do not glue words.
_EMOJI_RE = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f900-\U0001f9ff\ufe0f\u200d\u20e3]"
)
_REPEAT_PUNCT_RE = re.compile(r"([!?.,，。！？、~…])\1+")
_SPACE_RE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Return the text in the form the classifier matches against.

    NFKC folds full-width letters and digits to half-width (３号楼 → 3号楼) and compatibility
    forms; URLs, @mentions and emoji are dropped; runs of punctuation are collapsed.
    """
    text = unicodedata.normalize("NFKC", text)
    text = _URL_RE.sub(" ", text)
    text = _MENTION_RE.sub(" ", text)
    text = _EMOJI_RE.sub(" ", text)
    text = _REPEAT_PUNCT_RE.sub(r"\1", text)
    text = "".join(ch for ch in text if ch.isprintable() or ch.isspace())
    return _SPACE_RE.sub(" ", text).strip().lower()
