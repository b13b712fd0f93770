"""Text normalisation before matching: script, width, case, noise and repeated punctuation."""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import opencc

_URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
# @mentions name people, not problems; "@所有人" / "@全体成员" mark announcements and stay.
_MENTION_RE = re.compile(r"@(?!所有人|全体成员)[^\s@,，。!！?？:：]{1,24}")
# Emoji, pictographs and control characters become spaces so they do not glue words together.
_NOISE_RE = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\ufe0f\u200b-\u200f\u20e3"
    "\x00-\x08\x0b-\x1f\x7f]+"
)
_BRACKETED_RE = re.compile(r"\[(?:图片|语音|表情|视频|动画表情|文件)\]")
_REPEAT_PUNCT_RE = re.compile(r"([!?.,~、…。，！？])\1+")
_SPACE_RE = re.compile(r"\s+")


@cache
def _converter() -> opencc.OpenCC:
    # Traditional to simplified (t2s): 電梯壞了 → 电梯坏了. Simplified text passes unchanged.
    return opencc.OpenCC("t2s")


@cache
def _traditional() -> frozenset[str]:
    """The characters OpenCC changes, found by converting the CJK blocks once (~20 ms).

    Most messages are already simplified; checking for these characters first spares them
    the conversion call, which costs more than the rest of normalisation together.
    """
    chars = "".join(chr(code) for code in range(0x3400, 0xA000))
    converted = str(_converter().convert(chars))
    if len(converted) != len(chars):  # not one-to-one: fall back to always converting
        return frozenset(chars)
    return frozenset(a for a, b in zip(chars, converted, strict=True) if a != b)


def to_simplified(text: str) -> str:
    """Convert traditional characters to simplified ones."""
    if _traditional().isdisjoint(text):
        return text
    try:
        return str(_converter().convert(text))
    except UnicodeEncodeError:
        # Lone surrogates (only in forged input) cannot be encoded; replace them and go on.
        return str(_converter().convert(text.encode("utf-8", "replace").decode("utf-8")))


def normalize_rules(texts: list[str]) -> list[str]:
    """Normalise many rule strings at once (width, script, case), for fast rule rebuilds."""
    if not texts:
        return []
    joined = unicodedata.normalize("NFKC", "\n".join(t.replace("\n", " ") for t in texts))
    return [part.strip() for part in to_simplified(joined).lower().split("\n")]


def normalize(text: str) -> str:
    """Return the text in the form rules are matched against.

    NFKC folds full-width letters, digits and punctuation to half-width (３号楼 → 3号楼);
    traditional characters become simplified; URLs, @mentions, emoji and chat placeholders
    such as [图片] are dropped; runs of punctuation collapse; letters are lower-cased.
    """
    text = unicodedata.normalize("NFKC", text)
    if "http" in text or "www." in text:
        text = _URL_RE.sub(" ", text)
    if "@" in text:
        text = _MENTION_RE.sub(" ", text)
    if "[" in text:
        text = _BRACKETED_RE.sub(" ", text)
    text = _NOISE_RE.sub(" ", text)
    text = _REPEAT_PUNCT_RE.sub(r"\1", text)
    text = to_simplified(text).lower()
    return _SPACE_RE.sub(" ", text).strip()
