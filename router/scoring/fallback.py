"""Fallback wrapper: a failing or stalled primary scorer never crashes a worker; the lexicon answers."""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from router.errors import ScorerError
from router.scoring.protocol import EmotionScore, EmotionScorer

_log = logging.getLogger(__name__)


class FallbackScorer:
    """Scores with ``primary``; on an exception, a wrong-sized answer or (with ``stall_timeout_s``) a batch
    that takes too long, logs a warning, increments ``fallbacks`` and scores with ``fallback``.

    With a stall timeout the primary runs in one background thread; while a stalled batch is still running,
    later batches go straight to the fallback instead of queueing behind it (counted in ``fallbacks``).
    """

    def __init__(
        self,
        primary: EmotionScorer,
        fallback: EmotionScorer,
        logger: logging.Logger | None = None,
        stall_timeout_s: float | None = None,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.logger = logger or _log
        self.stall_timeout_s = stall_timeout_s
        self.name = primary.name
        self.supports_languages = True
        # once, not per batch: whether the primary reads each text after its contact's earlier turns
        self._primary_takes_contexts = "contexts" in inspect.signature(primary.score).parameters
        self.fallbacks = 0
        self.stalls = 0
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._inflight: Future[list[EmotionScore]] | None = None

    def _call_primary(
        self,
        texts: Sequence[str],
        languages: Sequence[str | None] | None,
        contexts: Sequence[Sequence[str]] | None = None,
    ) -> list[EmotionScore]:
        if contexts is not None and self._primary_takes_contexts:
            return self.primary.score(texts, languages=languages, contexts=contexts)  # type: ignore[call-arg]
        if languages is not None and getattr(self.primary, "supports_languages", False):
            return self.primary.score(texts, languages=languages)  # type: ignore[call-arg]
        return self.primary.score(texts)

    def _run_primary(
        self,
        texts: Sequence[str],
        languages: Sequence[str | None] | None = None,
        contexts: Sequence[Sequence[str]] | None = None,
    ) -> list[EmotionScore]:
        if self.stall_timeout_s is None:
            return self._call_primary(texts, languages, contexts)
        with self._lock:
            if self._inflight is not None and not self._inflight.done():
                raise ScorerError("primary scorer still busy with a stalled batch")
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scorer")
            fut = self._executor.submit(self._call_primary, list(texts), languages, contexts)
            self._inflight = fut
        try:
            return fut.result(timeout=self.stall_timeout_s)
        except FutureTimeout:
            self.stalls += 1
            raise ScorerError(f"primary scorer took longer than {self.stall_timeout_s} s") from None

    def score(
        self,
        texts: Sequence[str],
        languages: Sequence[str | None] | None = None,
        contexts: Sequence[Sequence[str]] | None = None,
    ) -> list[EmotionScore]:
        """``languages`` (one ISO code or None per text) reaches primaries that declare
        ``supports_languages`` (the transformer scorer's multilingual head), and ``contexts`` (each text's
        earlier customer turns) primaries whose ``score`` takes them; others ignore them."""
        if not texts:
            return []
        try:
            out = self._run_primary(texts, languages, contexts)
            if len(out) != len(texts):
                raise ScorerError(f"primary returned {len(out)} scores for {len(texts)} texts")
            return out
        except Exception as exc:
            self.fallbacks += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.logger.warning(
                "scorer %s failed on a batch of %d (%s); using %s (fallbacks=%d)",
                self.primary.name,
                len(texts),
                self.last_error,
                self.fallback.name,
                self.fallbacks,
            )
        try:
            return self.fallback.score(texts)
        except Exception:
            self.logger.exception(
                "fallback scorer %s failed too; returning neutral scores", self.fallback.name
            )
            return [EmotionScore(intensity=0.0, source="none") for _ in texts]

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


class DegradedScorer:
    """The lexicon standing in for a model that could not load; the name says so (``lexicon-fallback``)."""

    def __init__(self, inner: EmotionScorer, reason: str) -> None:
        self.inner = inner
        self.reason = reason
        self.name = f"{inner.name}-fallback"

    def score(self, texts: Sequence[str]) -> list[EmotionScore]:
        return self.inner.score(texts)
