from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from router.scoring.factory import build_scorer
from router.scoring.fallback import DegradedScorer, FallbackScorer
from router.scoring.lexicon import LexiconScorer
from router.scoring.protocol import EmotionScore, EmotionScorer
from router.settings import Settings


class Boom:
    name = "boom"

    def score(self, texts: Sequence[str]) -> list[EmotionScore]:
        raise RuntimeError("model exploded")


class Short:
    name = "short"

    def score(self, texts: Sequence[str]) -> list[EmotionScore]:
        return []


class Slow:
    name = "slow"

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.release = threading.Event()

    def score(self, texts: Sequence[str]) -> list[EmotionScore]:
        self.release.wait(self.delay)
        return [EmotionScore(intensity=0.5, source="slow") for _ in texts]


TEXTS = ["I want to speak to a human, my card was stolen", "what are your opening hours"]


def test_fallback_on_exception_logs_counts_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    scorer = FallbackScorer(Boom(), LexiconScorer(), logging.getLogger("t"))
    with caplog.at_level(logging.WARNING):
        out = scorer.score(TEXTS)
    assert [s.source for s in out] == ["lexicon", "lexicon"]
    assert scorer.fallbacks == 1
    assert "model exploded" in caplog.text
    assert scorer.score([]) == []
    assert isinstance(scorer, EmotionScorer)


def test_fallback_on_wrong_sized_answer() -> None:
    scorer = FallbackScorer(Short(), LexiconScorer())
    assert len(scorer.score(TEXTS)) == 2
    assert scorer.fallbacks == 1


def test_fallback_on_stall_and_skips_primary_while_stalled() -> None:
    slow = Slow(delay=5.0)
    scorer = FallbackScorer(slow, LexiconScorer(), stall_timeout_s=0.05)
    t = time.perf_counter()
    out = scorer.score(TEXTS)
    assert time.perf_counter() - t < 1.0
    assert [s.source for s in out] == ["lexicon", "lexicon"]
    assert scorer.stalls == 1
    out = scorer.score(TEXTS)  # still stalled: straight to the lexicon
    assert out[0].source == "lexicon"
    assert scorer.fallbacks == 2
    slow.release.set()
    time.sleep(0.1)
    slow.delay = 0.0
    assert scorer.score(TEXTS)[0].source == "slow"
    scorer.close()


def test_fallback_fast_primary_with_timeout_is_used() -> None:
    slow = Slow(delay=0.0)
    scorer = FallbackScorer(slow, LexiconScorer(), stall_timeout_s=2.0)
    assert [s.source for s in scorer.score(TEXTS)] == ["slow", "slow"]
    assert scorer.fallbacks == 0
    scorer.close()


def test_build_scorer_lexicon() -> None:
    assert build_scorer(Settings(scorer="lexicon")).name == "lexicon"


def test_build_scorer_degrades_visibly_when_model_missing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        scorer = build_scorer(Settings(scorer="transformer", model_dir=str(tmp_path / "nope")))
    assert isinstance(scorer, DegradedScorer)
    assert scorer.name == "lexicon-fallback"
    assert "could not load" in caplog.text
    assert scorer.score(["my card was stolen"])[0].topic == "lost_card"


def test_build_scorer_pipeline_without_model_degrades() -> None:
    scorer = build_scorer(Settings(scorer="pipeline", hf_model=""))
    assert scorer.name == "lexicon-fallback"


class LangAware:
    name = "lang"
    supports_languages = True

    def __init__(self) -> None:
        self.seen: list[str | None] | None = None

    def score(
        self, texts: Sequence[str], languages: Sequence[str | None] | None = None
    ) -> list[EmotionScore]:
        self.seen = list(languages) if languages is not None else None
        return [EmotionScore(intensity=0.1, source="lang") for _ in texts]


def test_fallback_forwards_languages_only_to_primaries_that_support_them() -> None:
    primary = LangAware()
    scorer = FallbackScorer(primary, LexiconScorer(), stall_timeout_s=2.0)
    scorer.score(["ciao", "hello"], languages=["it", None])
    assert primary.seen == ["it", None]
    plain = FallbackScorer(Slow(0.0), LexiconScorer())
    assert plain.score(["hi"], languages=["en"])[0].source == "slow"
    scorer.close()
