"""jieba segmentation with the domain dictionary, loaded once per process."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import jieba

USER_DICT = Path(__file__).parent / "data" / "userdict.txt"

_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None


def tokenizer() -> jieba.Tokenizer:
    """The process-wide tokenizer; the first call loads the dictionaries (about a second)."""
    global _tokenizer  # noqa: PLW0603 - a lazily built, process-wide singleton
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                # jieba logs its dictionary loading at DEBUG through its own stderr handler.
                jieba.setLogLevel(logging.WARNING)
                built = jieba.Tokenizer()
                built.initialize()
                # Given a path, jieba leaves the file open; hand it a file we close ourselves.
                with USER_DICT.open("rb") as handle:
                    built.load_userdict(handle)
                _tokenizer = built
    return _tokenizer


def warm_up() -> None:
    """Load the dictionaries now, so the first message does not pay for it."""
    cut("预热")


def cut(text: str) -> list[str]:
    """Segment normalised text into words (whitespace kept, so offsets add up).

    Dictionary segmentation without jieba's HMM: rules match dictionary words, and HMM
    new-word discovery would cost a quarter more time without helping any rule fire.
    """
    return list(tokenizer().cut(text, HMM=False))
