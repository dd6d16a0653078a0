"""Keep evaluation text out of training: a normalised-text index of every evaluation set.

A line counts as the same text when it is equal after lower-casing, accent folding and dropping everything
but letters and digits (so "Can't believe it!!" and "cant believe it" meet). Training loaders drop every row
found in the index (``router.scoring.evaluate.evaluation_index`` builds it from every evaluation set);
``tests/scoring/test_overlap.py`` runs the check on the real data in CI.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
# lines this short are everywhere ("thank you", "ok"): sharing one is not leakage
MIN_CHARS = 12


def _fold(text: str) -> str:
    """Lower case, accents folded, mentions and links blanked."""
    t = unicodedata.normalize("NFKD", text.lower())
    t = "".join(ch for ch in t if not unicodedata.combining(ch))
    return re.sub(r"@\w+|https?://\S+", " ", t)


def norm_text(text: str) -> str:
    return _NON_WORD.sub("", _fold(text))


class EvalIndex:
    """The normalised texts of the evaluation sets."""

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self._keys: set[str] = set()
        self.add(texts)

    def add(self, texts: Iterable[str]) -> None:
        self._keys.update(k for k in map(norm_text, texts) if len(k) >= MIN_CHARS)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, text: object) -> bool:
        return isinstance(text, str) and norm_text(text) in self._keys

    def drop(self, rows: Sequence[T], text: Callable[[T], str]) -> list[T]:
        """``rows`` without those whose ``text(row)`` is in the index."""
        return [row for row in rows if text(row) not in self]


_PLACEHOLDER = re.compile(r"<\|[A-Z]+\|>")


def word_set(text: str) -> frozenset[str]:
    """The distinct words of ``text`` (normalised as ``norm_text``, placeholders such as ``<|PERSON|>``
    dropped, words of three letters or more)."""
    return frozenset(w for w in _NON_WORD.split(_fold(_PLACEHOLDER.sub(" ", text))) if len(w) >= 3)


class NearIndex:
    """Evaluation texts found again with a few words changed: a re-annotated copy of a tweet whose names
    were anonymised ("<|PERSON|>") is not equal to it after ``norm_text``, so ``EvalIndex`` misses it.
    A row is near a text when their word sets' Jaccard similarity reaches ``min_jaccard``."""

    def __init__(self, texts: Iterable[str], min_jaccard: float = 0.5) -> None:
        self.min_jaccard = min_jaccard
        self._sets: list[frozenset[str]] = []
        self._by_word: dict[str, list[int]] = {}
        for text in texts:
            words = word_set(text)
            if words:
                for w in words:
                    self._by_word.setdefault(w, []).append(len(self._sets))
                self._sets.append(words)

    def nearest(self, text: str) -> float:
        """The highest Jaccard similarity of ``text`` to any indexed text (0 when none shares a word)."""
        words = word_set(text)
        candidates = {i for w in words for i in self._by_word.get(w, ())}
        return max((len(words & self._sets[i]) / len(words | self._sets[i]) for i in candidates), default=0.0)

    def drop(self, rows: Sequence[T], text: Callable[[T], str]) -> list[T]:
        """``rows`` without those near an indexed text."""
        return [row for row in rows if self.nearest(text(row)) < self.min_jaccard]
