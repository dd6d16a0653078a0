from __future__ import annotations

import io
import json

import pytest

from router.scoring.evaluate import auroc, clean_tweet, macro_f1, pearson
from router.scoring.language import detect_language
from router.scoring.lexicon import LexiconScorer
from router.scoring.score_cli import run_score
from router.settings import Settings


def test_run_score_lines_and_errors() -> None:
    lines = [
        json.dumps({"text": "my card was stolen and someone emptied my account, I am panicking"}),
        "not json",
        json.dumps({"text": 5}),
        "",
        json.dumps({"text": "what are your opening hours", "language": "en"}),
        "[1, 2]",
    ]
    out = io.StringIO()
    run_score(lines, out, Settings(scorer="lexicon"), scorer=LexiconScorer(), batch_size=2)
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(rows) == 6
    assert [("error" in r) for r in rows] == [False, True, True, True, False, True]
    assert rows[0]["moment_of_truth"] is True
    assert rows[0]["topic"] == "lost_card"
    assert rows[0]["reasons"] and all({"code", "text"} <= set(r) for r in rows[0]["reasons"])
    assert rows[4]["moment_of_truth"] is False
    assert 0.0 <= rows[4]["intensity"] <= 1.0
    assert rows[1]["line"] == 2


def test_metrics() -> None:
    assert auroc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert auroc([0, 1], [0.5, 0.5]) == 0.5
    assert auroc([1, 0, 1, 0], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(0.25)
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert macro_f1(["a", "b", "none"], ["a", "none", "none"], ["a", "b"]) == pytest.approx(0.5)


def test_airline_leak_restored_and_mentions_stripped() -> None:
    assert clean_tweet("@united you Cancelled Flightled my flight, Late Flightr rebooked") == (
        "you cancelled my flight, later rebooked"
    )


def test_language_detection() -> None:
    assert detect_language("what are your opening hours") == "en"
    assert detect_language("non è possibile, la mia carta è stata rubata") == "it"
    assert detect_language("minä en ole tyytyväinen ja se on huono") == "fi"
    assert detect_language("Nu pot să cred că este așa") == "ro"
    assert detect_language("η κάρτα μου κλάπηκε") == "el"
    assert detect_language("Ukradli mi kartę i ktoś czyści moje konto") == "pl"
    assert detect_language("Mijn kaart is gestolen en ik heb geen geld voor de huur") == "nl"


class _ContextLexicon(LexiconScorer):
    """The lexicon, recording the earlier turns each text is given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, list[str]]] = []

    def score(self, texts, languages=None, contexts=None):  # type: ignore[no-untyped-def,override]
        assert contexts is not None
        self.seen.extend((t, list(c)) for t, c in zip(texts, contexts, strict=True))
        return super().score(texts)


def test_run_score_reads_a_contacts_lines_as_its_turns() -> None:
    lines = [
        json.dumps({"text": "why did my bill go up", "contact": "c1"}),
        json.dumps({"text": "what are your opening hours"}),
        json.dumps({"text": "nobody answered my emails", "contact": "c1"}),
        json.dumps({"text": "hello", "contact": "c2"}),
        json.dumps({"text": "my card was stolen, I am panicking", "contact": "c1"}),
        json.dumps({"text": "x", "contact": ""}),
        json.dumps({"text": "thanks", "contact": "c1"}),
    ]
    out = io.StringIO()
    scorer = _ContextLexicon()
    run_score(lines, out, Settings(scorer="lexicon"), scorer=scorer, batch_size=2)
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [r.get("turn") for r in rows] == [1, None, 2, 1, 3, None, 4]
    assert "contact" in rows[5]["error"]
    assert scorer.seen[:5] == [
        ("why did my bill go up", []),
        ("what are your opening hours", []),
        ("nobody answered my emails", ["why did my bill go up"]),
        ("hello", []),
        ("my card was stolen, I am panicking", ["why did my bill go up", "nobody answered my emails"]),
    ]
    # the verdict is the contact's: once a moment of truth, it stays one on a calm "thanks"
    assert rows[4]["moment_of_truth"] is True and rows[6]["moment_of_truth"] is True
    assert any("turn 3" in r["text"] for r in rows[6]["reasons"])


def test_verdict_probabilities_are_the_detectors_one_turn_verdict() -> None:
    """The public moment-of-truth figure scores what the router decides on: each text as a one-turn
    contact through the shipped detector, crossing its threshold exactly when the verdict is a moment of
    truth."""
    from router.domain.mot import MotThresholds
    from router.scoring.detector import load_mot_model, replay
    from router.scoring.evaluate import verdict_probabilities
    from router.scoring.protocol import EmotionScore

    model = load_mot_model()
    assert model is not None
    scores = [
        EmotionScore(intensity=i, topic="lost_card" if t else None, topic_prob=t, mot_prob=p)
        for p in (0.05, 0.5, 0.8, 0.9, 0.99)
        for i, t in ((0.1, 0.0), (0.7, 0.9))
    ]
    got = verdict_probabilities(scores)
    assert got is not None
    th = MotThresholds(model=model)
    for s, p in zip(scores, got, strict=True):
        feats, flagged = replay([s], th)
        assert p == pytest.approx(model.probability(feats[0]))
        assert (p >= model.threshold) == (flagged == 1)
    assert got[0] < got[-2] and got[1] < got[-1]  # a surer turn reads as a surer moment of truth


def test_category_rows_read_on_time_for_moments_of_truth_and_flags_for_routine() -> None:
    """``router evaluate`` prints one row per corpus category: the on-time share of a moment-of-truth
    category's conversations, the flagged share of a routine one's, with the counts behind each."""
    from router.scoring.detector import ConversationOutcome, conversation_summary
    from router.scoring.evaluate import _category_rows

    churn = [ConversationOutcome(3, 3), ConversationOutcome(3, 1), ConversationOutcome(2, None)]
    change = [ConversationOutcome(None, None), ConversationOutcome(None, 2)]
    rows = _category_rows(
        {
            "churn_threat": {
                "mot": True,
                "turns": 5,
                "turns_flagged": 4,
                "conversations": conversation_summary(churn),
            },
            "polite_change": {
                "mot": False,
                "turns": 9,
                "turns_flagged": 1,
                "conversations": conversation_summary(change),
            },
        }
    )
    assert [(name, round(value or 0, 4)) for name, _, value, _, _ in rows] == [
        ("corpus_on_time[churn_threat]", 0.3333),
        ("corpus_flagged[polite_change]", 0.5),
    ]
    assert "early 1, late 0, missed 1; single turns flagged 4 of 5" in rows[0][1]
    assert "2 conversations, flagged 1; single turns flagged 1 of 9" in rows[1][1]
