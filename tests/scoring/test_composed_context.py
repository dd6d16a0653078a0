"""scripts/train_detector.py's composed context rows: a churn or vulnerable-customer conversation's calm
labelled turn after another conversation's earlier turns, always of the same category, fold and language,
never from the test split; their counterweights, a routine calm change after unrelated routine turns and
the turns before the label after the same earlier turns, labelled 0; and the strung routine contacts the
detector is judged on beside dev's conversations."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from train_detector import (
    BENIGN_CHANGE_CATEGORIES,
    COMPOSED_CATEGORIES,
    Scores,
    bare,
    benign_change_context_rows,
    composed_context_rows,
    composed_earlier_context_rows,
    copies_of,
    fold_of,
    load_dump,
    strung_routine,
    write_dump,
)

from router.scoring.corpus import Corpus, TrainingRow, held_out_lines, load_corpus
from router.scoring.overlap import EvalIndex, norm_text
from router.scoring.protocol import EmotionScore


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return load_corpus()


def test_each_turn_follows_another_conversations_turns_of_its_category_fold_and_language(
    corpus: Corpus,
) -> None:
    rows = composed_context_rows(corpus, 8)
    later = [
        c
        for c in corpus.conversations
        if c.split != "test" and c.category in COMPOSED_CATEGORIES and (c.mot_turn or 0) >= 2
    ]
    turn_of = {c.customer_texts[c.mot_turn - 1]: c for c in later}  # type: ignore[operator]
    prefix_of = {tuple(c.customer_texts[: c.mot_turn - 1]): c for c in later}  # type: ignore[operator]
    assert len(rows) > 3 * len(later)  # most groups hold a few other conversations
    assert {turn_of[r.text].category for r in rows} == set(COMPOSED_CATEGORIES)
    for r in rows:
        turn, source = turn_of[r.text], prefix_of[r.earlier]
        assert r.mot == 1.0 and r.scenario == turn.scenario
        assert source.id != turn.id and source.lang == turn.lang and source.category == turn.category
        assert fold_of(source.scenario) == fold_of(turn.scenario)
    per_turn = {r.text: sum(1 for x in rows if x.text == r.text) for r in rows}
    assert max(per_turn.values()) <= 8


def test_same_seed_same_rows_and_none_when_off(corpus: Corpus) -> None:
    assert composed_context_rows(corpus, 4, seed=3) == composed_context_rows(corpus, 4, seed=3)
    assert composed_context_rows(corpus, 4, seed=3) != composed_context_rows(corpus, 4, seed=4)
    assert composed_context_rows(corpus, 0) == []


def test_no_test_line_is_composed(corpus: Corpus) -> None:
    test = held_out_lines(corpus)
    rows = composed_context_rows(corpus, 8)
    assert not any(norm_text(t) in test for r in rows for t in (r.text, *r.earlier))


def test_turns_before_the_label_follow_the_same_earlier_turns_as_the_decisions_labelled_0(
    corpus: Corpus,
) -> None:
    rows = composed_earlier_context_rows(corpus, 4)
    composed = composed_context_rows(corpus, 8)
    later = {
        c.id: c
        for c in corpus.conversations
        if c.split != "test" and c.category in COMPOSED_CATEGORIES and (c.mot_turn or 0) >= 2
    }
    before = {t: c for c in later.values() for t in c.customer_texts[: c.mot_turn - 1]}  # type: ignore[operator]
    prefix_of = {tuple(c.customer_texts[: c.mot_turn - 1]): c for c in later.values()}  # type: ignore[operator]
    assert len(rows) > len(later)
    for r in rows:
        turn, source = before[r.text], prefix_of[r.earlier]
        assert r.mot == 0.0 and r.scenario == turn.scenario and source.id != turn.id
        assert (source.category, source.lang) == (turn.category, turn.lang)
        assert fold_of(source.scenario) == fold_of(turn.scenario)
    # the same earlier turns precede a decision labelled 1: the head must read the turn, not the position
    assert {r.earlier for r in rows} <= {r.earlier for r in composed}
    said = Counter((t, c.scenario) for c in later.values() for t in c.customer_texts[: c.mot_turn - 1])  # type: ignore[operator]
    drawn = Counter((r.text, r.scenario) for r in rows)
    assert all(n <= 4 * said[key] for key, n in drawn.items())  # up to 4 rows each time a turn is said
    test = held_out_lines(corpus)
    assert not any(norm_text(t) in test for r in rows for t in (r.text, *r.earlier))
    assert composed_earlier_context_rows(corpus, 0) == []
    # drawn from its own generator: the composed rows are what they were without it
    assert composed == composed_context_rows(corpus, 8)


def test_benign_changes_follow_unrelated_routine_turns_of_their_fold_and_language(corpus: Corpus) -> None:
    rows = benign_change_context_rows(corpus, 2)
    turns = {t.text: t for t in corpus.turns if t.split != "test"}
    changes = [t for t in turns.values() if t.category in BENIGN_CHANGE_CATEGORIES and not t.mot]
    assert len(rows) >= len(changes)  # two each, less the few whose line a test line repeats
    for r in rows:
        turn = turns[r.text]
        assert r.mot == 0.0 and r.scenario == turn.scenario
        assert turn.category in BENIGN_CHANGE_CATEGORIES and not turn.mot
        assert 1 <= len(r.earlier) <= 2 and r.text not in r.earlier
        for text in r.earlier:
            before = turns[text]
            assert not before.mot and before.category != "routine_human" and before.lang == turn.lang
            assert fold_of(before.scenario) == fold_of(turn.scenario)
    test = held_out_lines(corpus)
    assert not any(norm_text(t) in test for r in rows for t in (r.text, *r.earlier))
    assert benign_change_context_rows(corpus, 2, seed=3) == benign_change_context_rows(corpus, 2, seed=3)
    assert benign_change_context_rows(corpus, 0) == []


def test_near_miss_targets_move_only_routine_single_turns_of_the_hard_negative_categories(
    corpus: Corpus,
) -> None:
    from train_detector import NEAR_MISS_CATEGORIES, near_miss_targets

    from router.scoring.corpus import training_rows

    rows = training_rows(corpus, "train")
    plain, graded = near_miss_targets(rows, corpus, 0.0), near_miss_targets(rows, corpus, 0.15)
    assert list(plain) == [r.mot for r in rows]
    category = {t.text: t.category for t in corpus.split("train").turns if not t.mot}
    moved = [r for r, g in zip(rows, graded, strict=True) if g != r.mot]
    assert all(g in (r.mot, 0.15) for r, g in zip(rows, graded, strict=True))
    assert all(r.mot == 0 and category.get(r.text) in NEAR_MISS_CATEGORIES for r in moved)
    assert {category[r.text] for r in moved} == set(NEAR_MISS_CATEGORIES)


def test_strung_contacts_are_two_or_three_routine_dev_turns_of_one_fold_and_language(corpus: Corpus) -> None:
    strung = strung_routine(corpus, per_language=20)
    turns = {t.text: t for t in corpus.split("dev").turns}
    test = held_out_lines(corpus)
    assert len(strung.conversations) == 20 * len(corpus.languages()) and not strung.turns
    assert {len(c.turns) for c in strung.conversations} == {2, 3}
    for c in strung.conversations:
        picked = [turns[text] for text in c.customer_texts]  # every turn a dev single turn
        assert c.mot_turn is None and c.split == "dev" and len(set(c.customer_texts)) == len(picked)
        assert all(not t.mot and t.category != "routine_human" and t.lang == c.lang for t in picked)
        assert {fold_of(t.scenario) for t in picked} == {fold_of(c.scenario)}  # read out of fold
        assert not any(norm_text(t) in test for t in c.customer_texts)
    assert len({c.id for c in strung.conversations}) == len(strung.conversations)
    assert strung_routine(corpus, 5, seed=3) == strung_routine(corpus, 5, seed=3)
    assert strung_routine(corpus, 0).conversations == ()


def test_strung_contacts_of_the_train_split_hold_train_turns_only(corpus: Corpus) -> None:
    strung = strung_routine(corpus, per_language=10, split="train")
    turns = {t.text: t for t in corpus.split("train").turns}
    assert len(strung.conversations) == 10 * len(corpus.languages())
    assert all(c.split == "train" and all(t in turns for t in c.customer_texts) for c in strung.conversations)
    dev_ids = {c.id for c in strung_routine(corpus, per_language=10).conversations}
    assert not dev_ids & {c.id for c in strung.conversations}  # both can sit in one corpus the script reads


def test_copies_skip_unchanged_texts_evaluation_lines_and_texts_already_held() -> None:
    rows = [
        TrainingRow("My card was STOLEN", 1.0, "lost_card", 0.0, "s-1"),
        TrainingRow("what are your opening hours", 0.0, "none", 0.0, "s-2"),
        TrainingRow("Great, thank you.", 0.0, "none", 0.0, "s-3"),
        TrainingRow("Ο λογαριασμός μου άδειασε", 1.0, "fraud", 0.0, "s-4"),
        TrainingRow("GREAT, THANK YOU.", 0.0, "none", 0.0, "s-5"),
    ]
    # an evaluation set holds the third row (matched after normalisation): no copy of it trains
    assert copies_of(rows, EvalIndex(["great thank you"]), str.lower, {r.text for r in rows}) == [0, 3]
    # the fifth row's lower case is the third's: one copy of that text, in one fold
    assert copies_of(rows, set(), str.lower, {r.text for r in rows}) == [0, 2, 3]
    taken = {r.text for r in rows} | {"great, thank you."}
    assert copies_of(rows, set(), str.lower, taken) == [0, 3]
    # each copy's text is held afterwards
    assert "my card was stolen" in taken and "ο λογαριασμός μου άδειασε" in taken


@pytest.mark.parametrize(
    ("text", "bare_text"),
    [
        ("Great, thank you.", "Great thank you"),
        ("It's CANCELLED?? I'm stuck!!", "It's CANCELLED I'm stuck"),
        ("my e-mail says 3.5 kg... why?", "my e-mail says 3.5 kg why"),
        ("«Mi hanno chiuso il conto» — perché?", "Mi hanno chiuso il conto perché"),
        ("Thanks 🙏🙏", "Thanks 🙏🙏"),
        ("ok", "ok"),
    ],
)
def test_bare_drops_the_punctuation_chat_leaves_out(text: str, bare_text: str) -> None:
    assert bare(text) == bare_text
    assert bare(bare_text) == bare_text


def test_a_dump_reads_back_without_the_script_and_as_written(corpus: Corpus, tmp_path: Path) -> None:
    strung = strung_routine(corpus, per_language=2)
    scored = {
        c.id: [EmotionScore(intensity=0.1 * k, mot_prob=0.2 * k, words=k) for k in range(len(c.turns))]
        for c in strung.conversations
    }
    alone = {
        t: EmotionScore(intensity=0.5, topic="lost_card")
        for c in strung.conversations
        for t in c.customer_texts
    }
    backends = [Scores(alone, scored), Scores({}, {})]
    write_dump(tmp_path / "d.pkl", {"dev": corpus.split("dev"), "strung": strung}, backends)
    # a dataclass pickled from the script run as __main__ would not load where the script is not imported
    code = "import pickle, sys; d = pickle.load(open(sys.argv[1], 'rb')); print(sorted(d))"
    read = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "d.pkl")], capture_output=True, text=True, check=True
    )
    assert read.stdout.strip() == "['backends', 'dev', 'strung']"
    dumped = load_dump(tmp_path / "d.pkl")
    assert dumped["backends"] == backends and dumped["strung"] == strung
    assert dumped["dev"] == corpus.split("dev")
