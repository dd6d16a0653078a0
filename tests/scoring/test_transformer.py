from __future__ import annotations

import pytest

from router.scoring.heads import DEFAULT_MODELS_DIR
from router.scoring.protocol import EmotionScorer
from router.scoring.topics import MOT_TOPICS

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(
        not (DEFAULT_MODELS_DIR / "heads.json").exists(), reason="models/heads.json not trained"
    ),
]

EMOTIONAL = "my card was stolen and someone emptied my account, I am panicking"
ROUTINE = "what are your opening hours"


@pytest.fixture(scope="module")
def scorer():  # type: ignore[no-untyped-def]
    from router.scoring.transformer import TransformerScorer

    return TransformerScorer(cache_size=64)


def test_protocol_order_and_ranges(scorer) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(scorer, EmotionScorer)
    texts = [ROUTINE, EMOTIONAL, "", "x " * 500, "I want to speak to a human right now", ROUTINE]
    out = scorer.score(texts)
    assert len(out) == len(texts)
    for s in out:
        assert s.source == "transformer"
        assert 0.0 <= s.intensity <= 1.0
        assert 0.0 <= s.topic_prob <= 1.0
        assert 0.0 <= s.wants_human <= 1.0
        assert s.topic is None or s.topic in MOT_TOPICS
        assert abs(sum(s.emotions.values()) - 1.0) < 1e-2
    assert out[0] == out[5]
    # order is preserved: the same texts scored one by one give the same answers (up to float noise on
    # torch; int8 ONNX scales activations per batch, so its answers move a little with the batch-mates)
    scorer.clear_caches()
    single = [scorer.score([t])[0] for t in texts[:2]]
    tolerance = 0.02 if scorer.backend == "onnx" else 1e-3
    assert [s.intensity for s in single] == pytest.approx([s.intensity for s in out[:2]], abs=tolerance)
    assert scorer.score([]) == []


def test_emotional_moment_of_truth_above_routine(scorer) -> None:  # type: ignore[no-untyped-def]
    emo, routine = scorer.score([EMOTIONAL, ROUTINE])
    assert emo.intensity > routine.intensity + 0.2
    assert emo.topic in ("lost_card", "fraud")
    assert emo.topic_prob > 0.5
    assert routine.topic is None
    stolen = scorer.score(["my card was stolen and there are payments I didn't make"])[0]
    assert stolen.topic in ("lost_card", "fraud")


def test_wants_human(scorer) -> None:  # type: ignore[no-untyped-def]
    human, routine = scorer.score(["I want to talk to a real person, not a bot", ROUTINE])
    assert human.wants_human > 0.5 > routine.wants_human


def test_cache_hits(scorer) -> None:  # type: ignore[no-untyped-def]
    scorer.clear_caches()
    encoded = scorer.encoded
    scorer.score(["yes", "agent please", "yes"])
    assert scorer.encoded == encoded + 2  # duplicates in one batch are encoded once
    assert scorer.cache.misses == 3
    scorer.score(["yes", "agent please"])
    assert scorer.cache.hits == 2
    assert scorer.encoded == encoded + 2


def test_one_turn_detector_verdicts(scorer) -> None:  # type: ignore[no-untyped-def]
    import io
    import json

    from router.scoring.score_cli import run_score
    from router.settings import Settings

    lines = [
        json.dumps({"text": "my card was stolen and there are payments I didn't make"}),
        json.dumps({"text": ROUTINE}),
    ]
    out = io.StringIO()
    run_score(lines, out, Settings(scorer="transformer"), scorer=scorer)
    stolen, routine = (json.loads(x) for x in out.getvalue().splitlines())
    assert stolen["moment_of_truth"] is True
    assert stolen["topic"] == "lost_card"
    assert routine["moment_of_truth"] is False
    assert routine["topic"] is None


def test_non_english_uses_multilingual_head(scorer) -> None:  # type: ignore[no-untyped-def]
    assert "intensity_ml" in scorer.heads
    angry, calm = scorer.score(
        [
            "Sono furioso, mi avete bloccato la carta e nessuno risponde!",
            "Buongiorno, a che ora aprite sabato?",
        ],
        languages=["it", "it"],
    )
    assert angry.intensity > calm.intensity + 0.15


def test_a_regional_language_tag_reads_as_its_language(scorer) -> None:  # type: ignore[no-untyped-def]
    """A contact's language may carry a region (the event contract allows "en-GB", "pt-BR"): the English
    head still reads an English contact, and a Brazilian one reads as Portuguese."""
    texts = ["My flight got cancelled and nobody will tell me anything.", "Estou muito chateado com vocês."]
    emb = scorer.encoder.embed(texts)
    regional = scorer.intensities(emb, texts, ["en-GB", "pt-BR"])
    plain = scorer.intensities(emb, texts, ["en", "pt"])
    assert regional.tolist() == plain.tolist()
    assert scorer.intensities(emb, texts, ["it", "it"])[0] != plain[0]


def test_build_scorer_transformer_wrapped_in_fallback() -> None:
    from router.scoring.factory import build_scorer
    from router.scoring.fallback import FallbackScorer
    from router.settings import Settings

    scorer = build_scorer(Settings(scorer="transformer"))
    assert isinstance(scorer, FallbackScorer)
    assert scorer.name == "transformer"
    out = scorer.score([EMOTIONAL, ROUTINE])
    assert [s.source for s in out] == ["transformer", "transformer"]
    assert scorer.fallbacks == 0
    scorer.close()


def test_a_turn_in_its_contacts_context(scorer) -> None:  # type: ignore[no-untyped-def]
    """``contexts`` re-reads the moment-of-truth probability of a turn after its contact's earlier turns:
    a calm churn after unanswered complaints rises, a thank-you after routine questions stays routine, no
    earlier turns is the turn alone, and the other scores do not move."""
    churn = "Fine. Cancel the broadband and both mobiles, I'm switching provider."
    thanks = "Perfect, thank you."
    complaints = [
        "Why did my broadband bill go up by 12 pounds this month?",
        "Nobody told me about a price rise, and I emailed twice in March without an answer.",
    ]
    routine = ["Can I change my delivery address?", "It's 14 Park Road."]
    alone = scorer.score([churn, thanks])
    read = scorer.score([churn, thanks], languages=["en", "en"], contexts=[complaints, routine])
    empty = scorer.score([churn, thanks], languages=["en", "en"], contexts=[[], []])
    assert read[0].mot_prob > alone[0].mot_prob
    assert read[1].mot_prob < 0.05
    assert [s.mot_prob for s in empty] == [s.mot_prob for s in alone]
    assert [s.intensity for s in read] == [s.intensity for s in alone]
    assert [s.topic for s in read] == [s.topic for s in alone]
    with pytest.raises(ValueError, match="contexts"):
        scorer.score([churn], contexts=[[], []])


def test_earlier_turns_never_hide_the_stakes_a_turn_states(scorer) -> None:  # type: ignore[no-untyped-def]
    """A greeting before a turn that states its stakes must not talk the model out of them (the unfloored
    context head took "my rent is short" from 0.81 to 0.00 after "hello, I am calling about my last
    order")."""
    turns = [
        "you charged me twice and now my rent is short",
        "There's a gas smell coming from the boiler you installed yesterday",
        "I'm leaving, cancel everything",
    ]
    greeting = ["hello, I am calling about my last order"]
    alone = scorer.score(turns, languages=["en"] * 3)
    read = scorer.score(turns, languages=["en"] * 3, contexts=[greeting] * 3)
    assert all(r.mot_prob >= a.mot_prob for r, a in zip(read, alone, strict=True))
    assert min(r.mot_prob for r in read) > 0.5


def test_an_ordered_reader_of_the_earlier_turns(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Heads that carry a ``mot_context_reader`` (router.scoring.sequence.TurnReader) have ``mot_context``
    read its GRU summary of the earlier turns, oldest first, instead of their mean embedding."""
    import numpy as np

    from router.scoring.heads import LinearHead, load_heads, save_heads
    from router.scoring.transformer import MOT_CONTEXT_HEAD, TransformerScorer, context_lift
    from tests.scoring.test_sequence_reader import random_reader

    shipped = load_heads()
    dim, hidden = shipped.dim, 8
    rng = np.random.default_rng(0)

    def w(*shape: int) -> np.ndarray:
        return (rng.normal(size=shape) * 0.3).astype(np.float32)

    reader = random_reader(rng, dim, hidden, 0.3)
    ctx = LinearHead(
        w(1, 16),
        np.full(1, 3.0, np.float32),
        "sigmoid",
        ("moment_of_truth_in_context",),
        w(16, dim + 2 * hidden),
        w(16),
    )
    save_heads(tmp_path, {**shipped.heads, MOT_CONTEXT_HEAD: ctx}, shipped.meta, shipped.neighbours, reader)
    scorer = TransformerScorer(heads_dir=str(tmp_path), cache_size=0)
    assert scorer.heads.reader is not None
    turn, earlier = "Perfect, thank you.", ["Why did my bill go up?", "Nobody answered my two emails."]
    read = scorer.score([turn, turn], languages=["en", "en"], contexts=[earlier, earlier[::-1]])
    e = scorer.encoder.embed([turn, *earlier])
    z = scorer.mot_logits(e)
    for got, order in ((read[0], [1, 2]), (read[1], [2, 1])):
        s = reader.summary(e[None, order], z[None, order], np.array([2]))
        lift = context_lift(ctx.logits(reader.features(e[:1], s))[:, 0])[0]
        assert lift > 0.5
        assert got.mot_prob == pytest.approx(float(1.0 / (1.0 + np.exp(-(z[0] + lift)))), abs=2e-3)


def test_earlier_turns_logits_come_from_the_cache_and_read_the_same() -> None:
    """A worker scores each turn as it arrives, then reads it again as an earlier turn of the next: the
    ``mot`` logit (with its neighbours' search) is taken from the cache then, and the turn in context
    reads exactly as it does for a scorer that computes everything afresh."""
    from router.scoring.transformer import TransformerScorer

    warm, cold = TransformerScorer(cache_size=64), TransformerScorer(cache_size=0)
    earlier = [
        "Hi, I booked a table for Friday.",
        "The restaurant just cancelled it. It's our 25th anniversary.",
    ]
    turn = "Is there anything at all you can do tonight?"
    warm.score(earlier, languages=["en", "en"])
    hits = warm.mot_logit_cache.hits
    got = warm.score([turn], languages=["en"], contexts=[earlier])[0]
    # the two earlier turns, and the turn itself (read alone a moment before, in the same call)
    assert warm.mot_logit_cache.hits == hits + 3
    assert got.mot_prob == cold.score([turn], languages=["en"], contexts=[earlier])[0].mot_prob


def test_a_message_in_capitals_reads_as_typed_in_sentence_case(scorer) -> None:  # type: ignore[no-untyped-def]
    from router.scoring.detector import load_mot_model
    from router.scoring.evaluate import verdict_probabilities

    model = load_mot_model()
    assert model is not None
    routine = [
        ("CAN I CHANGE THE DELIVERY ADDRESS FOR MY ORDER PLEASE", "en"),
        ("QUANDO ARRIVA LA BOLLETTA DI MARZO?", "it"),
        ("WANN KOMMT DIE NEUE KARTE PER POST?", "de"),
    ]
    shouted = scorer.score([t for t, _ in routine], [lang for _, lang in routine])
    calm = scorer.score([t.capitalize() for t, _ in routine], [lang for _, lang in routine])
    for a, b in zip(shouted, calm, strict=True):
        assert a.mot_prob == pytest.approx(b.mot_prob, abs=1e-6)
        assert a.topic_prob == pytest.approx(b.topic_prob, abs=1e-6)
    assert all(p < model.threshold for p in verdict_probabilities(shouted) or [])
    stolen = scorer.score(["SOMEONE STOLE MY CARD AND IS EMPTYING MY ACCOUNT RIGHT NOW"], ["en"])
    assert (verdict_probabilities(stolen) or [0.0])[0] >= model.threshold


# typed as chat often is: no punctuation, lower case, no apostrophes (written here, not corpus lines)
_BARE_ROUTINE = [
    ("ok so my card expires next month when does the new one come", "en"),
    ("hi i moved house last week how do i update my address", "en"),
    ("the bill went up by two pounds this month why is that", "en"),
    ("need to cancel my sons phone contract he got his own now", "en"),
    ("the app keeps logging me out its a bit annoying", "en"),
    ("i think i was charged twice for the same coffee can you check", "en"),
    ("ho cambiato casa come aggiorno l indirizzo sulla bolletta", "it"),
    ("ich ziehe nach münchen um bitte den vertrag zum monatsende kündigen", "de"),
    ("hola quería saber cuándo me llega la factura de este mes", "es"),
    ("bonjour je voudrais changer la date de prélèvement", "fr"),
    ("dzień dobry chciałbym zmienić numer telefonu w aplikacji", "pl"),
    ("hoi hoe kan ik mijn wachtwoord wijzigen in de app", "nl"),
    ("moi miten vaihdan laskutusosoitteen", "fi"),
    ("buna ziua cand vine factura pe luna asta", "ro"),
    ("γεια σας πότε έρχεται ο λογαριασμός του μήνα", "el"),
    ("olá queria mudar a data do débito direto", "pt"),
]
_BARE_MOT = [
    ("someone stole my card and is emptying my account right now", "en"),
    ("my flight got cancelled and my dads funeral is tomorrow morning", "en"),
    ("me robaron la tarjeta y alguien está vaciando mi cuenta", "es"),
]


def test_a_message_typed_without_punctuation_is_read_for_what_it_says(scorer) -> None:  # type: ignore[no-untyped-def]
    """The corpus is written with tidy punctuation; chat often has none. Typed so, dev's routine single
    turns were flagged 72 times in 1,005 (11 as written) until the `mot` head learned its rows without
    punctuation too (`train_detector.py --bare-copies`; models/MODEL_CARD.md, The detector)."""
    from router.scoring.detector import load_mot_model
    from router.scoring.evaluate import verdict_probabilities

    model = load_mot_model()
    assert model is not None

    def verdicts(lines: list[tuple[str, str]]) -> list[float]:
        return verdict_probabilities(scorer.score([t for t, _ in lines], [g for _, g in lines])) or []

    assert max(verdicts(_BARE_ROUTINE)) < model.threshold
    assert min(verdicts(_BARE_MOT)) >= model.threshold
