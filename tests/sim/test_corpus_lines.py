"""Journeys replay the project's moment-of-truth corpus, held-out splits by default, with the corpus labels as
their ground truth, in all eleven languages; the floor speaks every one of them."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from router.errors import ConfigError
from router.scoring.corpus import LANGUAGES, Corpus, CorpusConversation, CorpusTurn
from router.settings import Settings
from router.sim.agents import MIN_SPEAKERS, build_floor
from router.sim.arrivals import SCENARIOS
from router.sim.corpus_lines import HUMAN_CATEGORY, STORM_CATEGORY, CorpusLines, load_lines
from router.sim.journeys import SimJourney, build_journeys
from router.sim.pool_lines import PoolLines
from router.sim.simulate import plan_day, run_simulate
from router.store.connect import open_store

DAY = SCENARIOS["day"]
BURST = SCENARIOS["burst"]
HELDOUT = ("dev", "test")


@pytest.fixture(scope="module")
def day(corpus: Corpus) -> list[SimJourney]:
    return build_journeys(3_000, random.Random(11), CorpusLines.from_corpus(corpus), DAY)


def _index(corpus: Corpus) -> tuple[dict[str, CorpusConversation], dict[str, CorpusTurn]]:
    return {c.id: c for c in corpus.conversations}, {t.id: t for t in corpus.turns}


def _check_against_corpus(j: SimJourney, corpus: Corpus, splits: tuple[str, ...]) -> None:
    """The journey's lines are the corpus items it names, and its ground truth is their label."""
    convs, turns = _index(corpus)
    assert j.sources, j.contact_id
    if j.sources[0] in convs:
        (cid,) = j.sources
        conv = convs[cid]
        assert conv.split in splits
        assert j.turns == tuple(conv.customer_texts)
        assert (j.language, j.channel) == (conv.lang, conv.channel)
        if conv.mot_turn is not None:
            assert j.truth_mot and j.need_turn == conv.mot_turn - 1
            assert j.kind == ("mot" if conv.mot_turn == 1 else "turning")
        else:
            assert j.kind == "routine" and j.need_turn is None and not j.truth_mot
            assert conv.category != HUMAN_CATEGORY
        return
    picked = [turns[i] for i in j.sources]
    assert j.turns == tuple(t.text for t in picked)
    assert all(t.split in splits and t.lang == j.language and not t.mot for t in picked)
    assert not j.truth_mot
    human = [k for k, t in enumerate(picked) if t.category == HUMAN_CATEGORY]
    if j.kind == "routine":
        assert j.need_turn is None and human == []
    else:
        assert j.kind == "routine_human" and j.need_turn == 1 and human == [1]


def test_journeys_replay_the_heldout_corpus_with_its_labels(corpus: Corpus, day: list[SimJourney]) -> None:
    for j in day:
        _check_against_corpus(j, corpus, HELDOUT)
    kinds = Counter(j.kind for j in day)
    assert set(kinds) == {"routine", "routine_human", "mot", "turning"}
    assert 0.07 < (kinds["mot"] + kinds["turning"]) / len(day) < 0.13  # moments of truth: 10%
    replayed = sum(1 for j in day if j.kind == "routine" and len(j.sources) == 1)
    assert 0.3 < replayed / kinds["routine"] < 0.7  # half the routine journeys replay a conversation


def test_no_journey_line_comes_from_the_train_split(corpus: Corpus, day: list[SimJourney]) -> None:
    train_ids = {c.id for c in corpus.split("train").conversations} | {
        t.id for t in corpus.split("train").turns
    }
    assert not any(set(j.sources) & train_ids for j in day)


def test_every_corpus_language_appears_with_english_the_majority(day: list[SimJourney]) -> None:
    langs = Counter(j.language for j in day)
    assert set(langs) == set(LANGUAGES)
    assert 0.44 < langs["en"] / len(day) < 0.56  # en 50, the other ten 5 each
    for lang in LANGUAGES:
        if lang != "en":
            assert 0.025 < langs[lang] / len(day) < 0.08, lang
    moments = Counter(j.language for j in day if j.truth_mot)
    assert set(moments) == set(LANGUAGES)  # every language has its moments of truth


def test_corpus_journeys_are_deterministic(corpus: Corpus, day: list[SimJourney]) -> None:
    again = build_journeys(3_000, random.Random(11), CorpusLines.from_corpus(corpus), DAY)
    assert again == day
    other = build_journeys(3_000, random.Random(12), CorpusLines.from_corpus(corpus), DAY)
    assert other != day
    assert plan_day(200, 3, DAY) == plan_day(200, 3, DAY)


def test_returning_customers_keep_their_language(day: list[SimJourney]) -> None:
    first = {j.customer_id: j.language for j in day if not j.returning}
    returning = [j for j in day if j.returning]
    assert returning and all(j.language == first[j.customer_id] for j in returning)


def test_the_storm_replays_heldout_travel_disruptions(corpus: Corpus) -> None:
    js = build_journeys(2_000, random.Random(13), CorpusLines.from_corpus(corpus), BURST)
    convs, _ = _index(corpus)
    storm = [j for j in js if j.burst and j.truth_mot]
    assert len(storm) > 0.75 * sum(1 for j in js if j.burst)
    for j in storm:
        _check_against_corpus(j, corpus, HELDOUT)
        assert convs[j.sources[0]].category == STORM_CATEGORY
    assert Counter(j.language for j in storm).most_common(1)[0][0] == "en"


def test_split_all_also_replays_train_lines(corpus: Corpus) -> None:
    lines = CorpusLines.from_corpus(corpus, "all")
    held = CorpusLines.from_corpus(corpus)
    assert (
        lines.describe()["pool_sizes"]["moment_conversations"]
        > held.describe()["pool_sizes"]["moment_conversations"]
    )
    js = build_journeys(1_000, random.Random(14), lines, DAY)
    for j in js:
        _check_against_corpus(j, corpus, ("train", "dev", "test"))
    convs, turns = _index(corpus)
    splits = {(convs.get(i) or turns[i]).split for j in js for i in j.sources}
    assert splits == {"train", "dev", "test"}


def test_load_lines_reads_the_corpus_and_falls_back_to_the_bundled_lines(
    corpus: Corpus, tmp_path: Path
) -> None:
    lines = load_lines()
    assert isinstance(lines, CorpusLines) and lines.split == "heldout"
    assert lines.describe()["source"] == "corpus" and lines.describe()["splits"] == list(HELDOUT)
    fallback = load_lines(tmp_path / "absent")
    assert isinstance(fallback, PoolLines) and fallback.describe()["source"] == "bundled"
    js = build_journeys(100, random.Random(1), fallback, DAY)
    assert {j.language for j in js} == {"en"}


@pytest.mark.parametrize("n_voice, n_digital", [(2, 6), (5, 7), (20, 40)])
def test_the_floor_speaks_every_language_on_every_profile(n_voice: int, n_digital: int) -> None:
    floor = build_floor(n_voice, n_digital, random.Random(2), DAY, LANGUAGES)
    assert floor == build_floor(n_voice, n_digital, random.Random(2), DAY, LANGUAGES)
    assert all(a.languages[0] == "en" for a in floor)
    assert any(len(a.languages) > 2 for a in floor)  # some agents are multilingual
    for profile, size in (("voice", n_voice), ("digital", n_digital)):
        for lang in LANGUAGES:
            speakers = [a for a in floor if a.profile == profile and lang in a.languages]
            assert len(speakers) >= min(size, MIN_SPEAKERS), (profile, lang)


def test_plan_day_staffs_every_language_of_its_journeys(corpus: Corpus) -> None:
    journeys, floor, texts = plan_day(400, 5, DAY)
    assert texts["source"] == "corpus" and texts["corpus_split"] == "heldout"
    for j in journeys:
        profile = "voice" if j.channel == "voice" else "digital"
        assert any(a.profile == profile and j.language in a.languages for a in floor), j.contact_id


def test_an_unknown_corpus_split_is_refused() -> None:
    with open_store("", "fakeredis") as handle, pytest.raises(ConfigError, match="corpus split"):
        run_simulate(Settings(scorer="lexicon"), handle, contacts=5, corpus_split="train")
