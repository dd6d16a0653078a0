"""The shipped model keeps its published quality: the corpus test split and a fixed public subset are scored
in CI and compared with the figures in models/quality.json (what README and the model card publish)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router.scoring.heads import DEFAULT_MODELS_DIR
from router.scoring.measures import stable_fraction

pytestmark = pytest.mark.model

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
PUBLISHED = json.loads((DEFAULT_MODELS_DIR / "quality.json").read_text(encoding="utf-8"))
MARGIN = PUBLISHED["margin"]
LANGUAGE_MARGIN = PUBLISHED["margin_per_language"]


@pytest.fixture(scope="module")
def scorer():  # type: ignore[no-untyped-def]
    from router.scoring.transformer import TransformerScorer

    s = TransformerScorer(cache_size=0)
    assert s.backend == "onnx", (
        "the published figures are the int8 backend's (bash scripts/setup.sh builds it)"
    )
    return s


def test_corpus_test_split(scorer) -> None:  # type: ignore[no-untyped-def]
    from router.domain.mot import MotThresholds
    from router.scoring.corpus import load_corpus
    from router.scoring.detector import evaluate_corpus, load_mot_model

    test = load_corpus().split("test")
    got = evaluate_corpus(test, scorer.score, MotThresholds(model=load_mot_model()))
    for lang, want in PUBLISHED["corpus_test"].items():
        assert got[lang]["f1"] >= want["f1"] - LANGUAGE_MARGIN, (lang, got[lang])
        assert got[lang]["turn_auroc"] >= want["turn_auroc"] - LANGUAGE_MARGIN, (lang, got[lang])
    conv = [m["conversations"] for m in got.values()]
    on_time = sum(c["on_time"] for c in conv) / sum(c["mot_conversations"] for c in conv)
    flagged = sum(c["routine_flagged"] for c in conv) / sum(c["routine_conversations"] for c in conv)
    assert on_time >= PUBLISHED["corpus_conversations"]["on_time_share"] - MARGIN
    assert flagged <= PUBLISHED["corpus_conversations"]["routine_flagged_share"] + MARGIN


def test_plain_probes(scorer) -> None:  # type: ignore[no-untyped-def]
    """Plain sentences as a new user types them ("The socket in my bedroom is sparking"), one-turn contacts:
    the share of moments of truth flagged, and routine sentences flagged, stay where they were published."""
    from router.domain.mot import MotThresholds
    from router.scoring.corpus import load_probes
    from router.scoring.detector import load_mot_model, probe_summary

    th = MotThresholds(model=load_mot_model())
    for name, part in load_probes().items():
        got = probe_summary(part, scorer.score, th)
        want = PUBLISHED["probes"][name]
        assert got["mot_flagged_share"] >= want["mot_flagged_share"] - LANGUAGE_MARGIN, (name, got["wrong"])
        assert got["routine_flagged"] <= want["routine_flagged"] + 1, (name, got["wrong"])


@pytest.mark.skipif(not DATA.exists(), reason="../shared/data is not beside the project")
def test_public_subset(scorer) -> None:  # type: ignore[no-untyped-def]
    from router.scoring import evaluate as ev

    airline = ev.load_airline(DATA)
    keep = [i for i, t in enumerate(airline.texts) if stable_fraction(t) < 0.25]
    texts = [airline.texts[i] for i in keep]
    scores = scorer.score(texts)
    gold = [airline.gold[i] for i in keep]
    verdict = ev.verdict_probabilities(scores)
    assert verdict is not None, "the published airline figure is the detector's (models/detector.json)"
    assert ev.auroc(gold, verdict) >= PUBLISHED["airline_auroc_quarter"] - MARGIN
    noisy_or = ev.auroc(gold, [ev.mot_score(s) for s in scores])
    assert noisy_or >= PUBLISHED["airline_auroc_noisy_or_quarter"] - MARGIN
    brighter = ev.load_brighter(DATA)
    r = ev.pearson(brighter.gold, [s.intensity for s in scorer.score(brighter.texts)])
    assert r >= PUBLISHED["brighter_en_pearson"] - MARGIN
    for code, task in ev.load_languages(DATA).items():
        if code in PUBLISHED["per_language_auroc"]:
            s = scorer.score(task.texts, languages=[code] * len(task.texts))
            got = ev.auroc(task.gold, [x.intensity for x in s])
            assert got >= PUBLISHED["per_language_auroc"][code] - MARGIN, code
