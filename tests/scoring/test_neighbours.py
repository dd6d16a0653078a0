"""The mot head's neighbours (router.scoring.neighbours): the vote is bounded, reads the nearest labelled
rows, survives the heads file, and the shipped scorer adds it to the head's logit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import router.scoring.neighbours as nb
from router.scoring.heads import LinearHead, load_heads, save_heads
from router.scoring.neighbours import NeighbourVote, neighbour_vote, unit_rows


def _bank(rng: np.random.Generator, n: int = 40, d: int = 8) -> tuple[np.ndarray, np.ndarray]:
    x = unit_rows(rng.normal(size=(n, d)))
    return x, (np.arange(n) % 2).astype(np.float32)


def test_a_query_on_top_of_a_labelled_row_leans_its_way_and_never_reaches_certainty() -> None:
    x, y = _bank(np.random.default_rng(1))
    votes = neighbour_vote(x, x, y, k=5, temperature=0.02)
    # each row is its own nearest neighbour: the vote leans to its label
    assert ((votes > 0.5) == (y == 1)).mean() > 0.9
    # five votes of weight <= 1 and one pseudo-vote of 0.5: within [0.5 / 6, 5.5 / 6]
    assert votes.min() >= 0.5 / 6 - 1e-6 and votes.max() <= 5.5 / 6 + 1e-6


def test_every_neighbour_agreeing_gives_the_bound_and_a_far_bank_stays_near_the_middle() -> None:
    bank = unit_rows(np.eye(6, dtype=np.float32)[:5] + 1.0)  # five close rows, all moments of truth
    ones = np.ones(5, np.float32)
    q = unit_rows(np.ones((1, 6), np.float32))
    assert neighbour_vote(q, bank, ones, k=5, temperature=1.0)[0] == pytest.approx(5.5 / 6, abs=1e-3)
    # one row far closer than the rest: the rest weigh exp(-big) and the pseudo-vote pulls to 2/3 at most
    near = np.vstack([q, -bank[1:]]).astype(np.float32)
    vote = neighbour_vote(q, near, np.array([1, 0, 0, 0, 0], np.float32), k=5, temperature=0.02)[0]
    assert vote == pytest.approx(1.5 / 2, abs=1e-3)


def test_the_vote_does_not_depend_on_how_the_queries_are_chunked(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    x, y = _bank(rng)
    q = unit_rows(rng.normal(size=(13, 8)))
    whole = neighbour_vote(q, x, y, k=3, temperature=0.05)
    monkeypatch.setattr(nb, "_CHUNK_ROWS", 4)
    np.testing.assert_allclose(neighbour_vote(q, x, y, k=3, temperature=0.05), whole, rtol=1e-6)


def test_bad_settings_are_refused() -> None:
    x, y = _bank(np.random.default_rng(3), n=4)
    with pytest.raises(ValueError, match="k=5"):
        neighbour_vote(x, x, y, k=5, temperature=0.02)
    with pytest.raises(ValueError, match="temperature"):
        neighbour_vote(x, x, y, k=2, temperature=0.0)
    with pytest.raises(ValueError, match="labels"):
        NeighbourVote(x, y[:3], 2, 0.02, 0.5)
    with pytest.raises(ValueError, match="width 3"):
        NeighbourVote(x, y, 2, 0.02, 0.5).read(np.ones((1, 3), np.float32))


def test_the_neighbours_survive_the_heads_file_and_leave_it_when_dropped(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    x, y = _bank(rng)
    head = LinearHead(rng.normal(size=(1, 8)).astype(np.float32), np.zeros(1, np.float32), "sigmoid", ("m",))
    topics = np.where(y == 1, np.arange(len(y)) % 3, 3)
    names = ("bereavement", "fraud", "travel_disruption", "none")
    vote = NeighbourVote(x.astype(np.float16).astype(np.float32), y, 5, 0.02, 0.5, topics, names)
    save_heads(tmp_path, {"mot": head}, {"note": "test"}, vote)
    loaded = load_heads(tmp_path)
    assert loaded.neighbours is not None and loaded.meta["mot_neighbours"]["k"] == 5
    assert loaded.neighbours.topic_names == names
    np.testing.assert_array_equal(loaded.neighbours.topics, topics)
    q = rng.normal(size=(6, 8)).astype(np.float32)
    # the bank is stored in fp16 (scripts/train_detector.py rounds it so before the detector reads it)
    np.testing.assert_allclose(loaded.neighbours.logits(q), vote.logits(q), rtol=1e-6)
    assert [vote.describe(vote.read(q), i) for i in range(6)] == [
        loaded.neighbours.describe(loaded.neighbours.read(q), i) for i in range(6)
    ]
    save_heads(tmp_path, loaded.heads, loaded.meta)
    again = load_heads(tmp_path)
    assert again.neighbours is None and "mot_neighbours" not in again.meta


def test_a_reading_names_its_neighbours_nearest_first_with_their_topics() -> None:
    q = unit_rows(np.ones((1, 6), np.float32))
    # five rows at falling similarity to q: three moments of truth (two bereavements, one fraud), two routine
    bank = unit_rows(np.ones((5, 6), np.float32) + np.arange(5)[:, None] * np.eye(5, 6, dtype=np.float32))
    labels = np.array([1, 1, 0, 1, 0], np.float32)
    names = ("bereavement", "fraud", "none")
    vote = NeighbourVote(bank, labels, 5, 0.02, 0.5, np.array([0, 1, 2, 0, 2]), names)
    reading = vote.read(q)
    assert reading.index[0].tolist() == [0, 1, 2, 3, 4]
    assert reading.similarity[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert np.all(np.diff(reading.similarity[0]) <= 0)
    np.testing.assert_allclose(reading.logits, vote.logits(q))
    assert vote.describe(reading, 0) == (
        "3 of its 5 nearest labelled corpus turns are moments of truth (bereavement 2, fraud 1); "
        "the nearest at cosine 1.00"
    )
    plain = NeighbourVote(bank, labels, 5, 0.02, 0.5)  # heads written before topics were kept
    assert plain.describe(plain.read(q), 0).startswith(
        "3 of its 5 nearest labelled corpus turns are moments of truth;"
    )
    with pytest.raises(ValueError, match="topics"):
        NeighbourVote(bank, labels, 5, 0.02, 0.5, np.array([0, 1, 2, 0, 3]), names)


def test_a_centred_bank_finds_what_a_shared_direction_hides(tmp_path: Path) -> None:
    # every row shares one large direction (as e5's embeddings do); moments of truth stray far from it
    # along dimension 1, routine rows a little along dimension 2. A query that strays a little along
    # dimension 1 is nearer the routine rows by raw cosine (a small stray is a small angle) and among the
    # moments of truth once the shared direction is taken away (only the stray's direction counts)
    rng = np.random.default_rng(5)
    n = 40
    labels = (np.arange(n) % 2).astype(np.float32)
    x = np.zeros((n, 4), np.float32)
    x[:, 0] = 10.0
    x[:, 1] = np.where(labels == 1, 2.0, 0.0)
    x[:, 2] = np.where(labels == 1, 0.0, 0.2)
    x[:, 3] = rng.normal(scale=0.05, size=n)
    center = np.array([10.0, 0.0, 0.0, 0.0], np.float32)
    centred = NeighbourVote(unit_rows(x - center), labels, 5, 0.05, 0.5, center=center)
    raw = NeighbourVote(unit_rows(x), labels, 5, 0.05, 0.5)
    q = np.array([[10.0, 0.3, 0.0, 0.0]], np.float32)
    assert all(raw.labels[i] == 0 for i in raw.read(q).index[0])
    assert all(centred.labels[i] == 1 for i in centred.read(q).index[0])
    assert centred.logits(q)[0] > 0 > raw.logits(q)[0]
    assert "nearest at centred cosine" in centred.describe(centred.read(q), 0)
    head = LinearHead(np.ones((1, 4), np.float32), np.zeros(1, np.float32), "sigmoid", ("m",))
    save_heads(tmp_path, {"mot": head}, {}, centred)
    loaded = load_heads(tmp_path).neighbours
    assert loaded is not None and loaded.center is not None
    np.testing.assert_allclose(loaded.logits(q), centred.logits(q), rtol=1e-3)
    with pytest.raises(ValueError, match="centre"):
        NeighbourVote(unit_rows(x), labels, 5, 0.05, 0.5, center=np.zeros(3, np.float32))


@pytest.mark.model
def test_the_shipped_scorer_adds_the_neighbours_vote_to_the_heads_logit() -> None:
    from router.scoring.transformer import TransformerScorer

    scorer = TransformerScorer(cache_size=0)
    vote = scorer.heads.neighbours
    assert vote is not None and len(vote.bank) > 10_000
    texts = ["There's a strong gas smell in my kitchen", "what are your opening hours"]
    emb = scorer.encoder.embed(texts)
    z = scorer.heads["mot"].logits(emb)[:, 0] + vote.logits(emb)
    scores = scorer.score(texts, ["en", "en"])
    np.testing.assert_allclose([s.mot_prob for s in scores], 1 / (1 + np.exp(-z)), atol=1e-3)
    # and they say what they are: the bank keeps each row's topic for the reasons
    assert vote.topics is not None and "health_safety" in vote.topic_names
    gas, hours = (s.mot_neighbours for s in scores)
    assert "health safety" in gas and gas.startswith(("4 of its 5", "5 of its 5")), gas
    assert hours.startswith(("0 of its 5", "1 of its 5")), hours
