"""`router demo` replays the corpus's held-out lines, so the recall and precision it prints measure the
real detector on text it never learned from; the bundled lines serve a checkout without the corpus."""

from __future__ import annotations

import random
from collections import Counter

from router.scoring.corpus import Corpus
from router.sim.corpus_lines import CorpusLines
from router.sim.demo import DEMO_CHANNELS, SECOND_LANGUAGE, build_agents, build_journeys
from router.sim.pool_lines import PoolLines
from router.sim.texts import bundled_pools


def test_demo_journeys_are_heldout_corpus_lines_with_their_labels(corpus: Corpus) -> None:
    lines = CorpusLines.from_corpus(corpus)
    journeys = build_journeys(600, random.Random(3), lines, 50.0)
    split_of_conv = {tuple(c.customer_texts): (c.split, c.mot_turn) for c in corpus.conversations}
    split_of_turn = {t.text: t.split for t in corpus.turns}
    for j in journeys:
        replayed = split_of_conv.get(tuple(j.turns))
        if replayed is not None:
            split, mot_turn = replayed
            assert split in ("dev", "test")
            assert j.kind == ("routine" if mot_turn is None else "mot" if mot_turn == 1 else "turning")
        else:  # composed from single routine turns (and a request for a person)
            assert j.kind in ("routine", "routine_human")
            assert all(split_of_turn[t] in ("dev", "test") for t in j.turns)
        assert j.channel in DEMO_CHANNELS
    kinds = Counter(j.kind for j in journeys)
    assert 0.25 < (kinds["mot"] + kinds["turning"]) / len(journeys) < 0.43
    assert kinds["turning"] > 0  # moments of truth that arrive at a later turn
    languages = Counter(j.language for j in journeys)
    assert set(languages) == {"en", SECOND_LANGUAGE} and languages["en"] > 0.9 * len(journeys)
    # the demo floor speaks every language its customers do
    spoken = {lang for a in build_agents(random.Random(3)) for lang in a.languages}
    assert set(languages) <= spoken


def test_demo_journeys_are_deterministic(corpus: Corpus) -> None:
    lines = CorpusLines.from_corpus(corpus)
    assert build_journeys(200, random.Random(9), lines, 20.0) == build_journeys(
        200, random.Random(9), lines, 20.0
    )


def test_demo_journeys_fall_back_to_the_bundled_english_lines() -> None:
    journeys = build_journeys(200, random.Random(4), PoolLines(bundled_pools()), 20.0)
    assert {j.language for j in journeys} == {"en"}
    assert {j.kind for j in journeys} == {"routine", "routine_human", "mot", "turning"}
