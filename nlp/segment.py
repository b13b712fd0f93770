"""jieba segmentation with the domain dictionary, loaded once per process.

jieba keeps its prefix dictionary (about 500,000 entries) in a marshal cache that takes
about 1.5 s to load here; the same dictionary pickled loads in about 0.4 s. So the first
start builds jieba's dictionary as usual and saves a pickle of it in the user's cache
folder; later starts load that. The pickle is only read when this user owns it and nobody
else can write it, since loading a pickle runs code.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import stat
import tempfile
import threading
from math import inf, log
from pathlib import Path

import jieba

logger = logging.getLogger(__name__)
USER_DICT = Path(__file__).parent / "data" / "userdict.txt"
CACHE_FORMAT = 1
# jieba's own patterns: what it segments as text, and the spaces it keeps as words.
_HAN_RE = jieba.re_han_default
_SKIP_RE = jieba.re_skip_default
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")

_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None


def _cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    source = Path(jieba.__file__).parent / jieba.DEFAULT_DICT_NAME
    try:
        info = source.stat()
        key = f"{CACHE_FORMAT}:{source}:{info.st_size}:{info.st_mtime_ns}"
    except OSError:
        key = f"{CACHE_FORMAT}:{source}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(base) / "grid-5321-bot" / f"jieba-{digest}.pickle"


def _trusted(path: Path) -> bool:
    try:
        info = path.stat()
    except OSError:
        return False
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _load_dictionary(tokenizer: jieba.Tokenizer) -> None:
    path = _cache_path()
    if _trusted(path):
        try:
            with path.open("rb") as handle:
                freq, total = pickle.load(handle)
            tokenizer.FREQ, tokenizer.total, tokenizer.initialized = freq, total, True
            return
        except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError):
            logger.warning("jieba dictionary cache %s unreadable; rebuilding it", path)
    tokenizer.initialize()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".jieba-")
        with os.fdopen(fd, "wb") as handle:
            pickle.dump((tokenizer.FREQ, tokenizer.total), handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, path)
    except OSError as exc:  # a read-only home is fine: we just start slower next time
        logger.info("could not save the jieba dictionary cache: %s", exc)


def tokenizer() -> jieba.Tokenizer:
    """The process-wide tokenizer; the first call loads the dictionaries."""
    global _tokenizer  # noqa: PLW0603 - a lazily built, process-wide singleton
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                # jieba logs its dictionary loading at DEBUG through its own stderr handler.
                jieba.setLogLevel(logging.WARNING)
                built = jieba.Tokenizer()
                _load_dictionary(built)
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
    new-word discovery would cost a third more time without helping any rule fire.
    """
    return list(tokenizer().cut(text, HMM=False))


def word_starts(text: str) -> list[int]:
    """Where ``cut(text)`` starts its words, computed without building them.

    The same decisions as jieba's dictionary segmentation (``cut(text, HMM=False)``): its
    blocks, its word graph, its most probable route with ties to the longer word, runs of
    single letters and digits kept as one word, and each whitespace or other character
    alone. The classifier asks this for the clause around a one-character rule
    word; skipping jieba's generators and per-word strings makes that about twice as fast
    (tests/test_nlp.py checks it against ``cut`` on every corpus message).
    """
    segmenter = tokenizer()
    freq = segmenter.FREQ
    logtotal = log(segmenter.total)
    starts: list[int] = []
    offset = 0
    for block in _HAN_RE.split(text):
        if not block:
            continue
        if _HAN_RE.match(block):
            _route_starts(block, offset, freq, logtotal, starts)
        else:
            for piece in _SKIP_RE.split(block):
                if _SKIP_RE.match(piece):
                    starts.append(offset)  # a space or a line break is a word of its own
                else:
                    starts.extend(range(offset, offset + len(piece)))
                offset += len(piece)
            continue
        offset += len(block)
    return starts


def _route_starts(
    block: str, offset: int, freq: dict[str, int], logtotal: float, starts: list[int]
) -> None:
    """jieba's route through one block (``Tokenizer.get_DAG`` and ``calc``), its word starts
    appended to ``starts``. The scores are computed exactly as jieba computes them, so even
    ties resolve the same way."""
    size = len(block)
    score = [0.0] * (size + 1)
    last = list(range(size + 1))  # the last character of the best first word from each index
    for index in range(size - 1, -1, -1):
        best, best_end = -inf, index
        end, fragment = index, block[index]
        found = False
        while end < size and fragment in freq:
            if count := freq[fragment]:
                found = True
                value = log(count) - logtotal + score[end + 1]
                if value >= best:  # jieba's max over (score, end): a tie goes to the longer
                    best, best_end = value, end
            end += 1
            fragment = block[index : end + 1]
        if not found:
            best = log(freq.get(block[index]) or 1) - logtotal + score[index + 1]
        score[index], last[index] = best, best_end
    index, in_run = 0, False
    while index < size:
        following = last[index] + 1
        if following - index == 1 and block[index] in _ALNUM:
            if not in_run:  # jieba gathers single letters and digits into one word
                starts.append(offset + index)
                in_run = True
        else:
            starts.append(offset + index)
            in_run = False
        index = following
