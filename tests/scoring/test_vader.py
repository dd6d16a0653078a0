"""FastVader must give exactly the reference ``vaderSentiment`` output: the heads were trained on it."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import (
    BOOSTER_DICT,
    NEGATE,
    SPECIAL_CASES,
    SentimentIntensityAnalyzer,
)

from router.scoring.bench import ACCEPTANCE_TEXTS, QUALITY_TEXTS
from router.scoring.vader import FastVader
from router.sim.texts import DEFAULT_DATA_DIR

REF = SentimentIntensityAnalyzer()
FAST = FastVader()

# every word a VADER rule looks at, so that generated sentences exercise negation within three words,
# boosters in capitals, "no" before a sentiment word, "least", "kind of", "but", idioms and emoji
_RULE_WORDS = sorted(
    {w for phrase in [*BOOSTER_DICT, *SPECIAL_CASES] for w in phrase.split()}
    | set(NEGATE)
    | {"no", "or", "nor", "least", "at", "very", "never", "so", "this", "without", "doubt", "but", "kind"}
)
_SENTIMENT_WORDS = [
    "good", "bad", "great", "terrible", "love", "hate", "angry", "happy", "sux", "lol", ":)", ":(", "crap",
    "funny", "smart", "horrible", "stolen", "cancelled", "useless", "thanks", "help", "worst", "best",
]  # fmt: skip
_NOISE = ["the", "flight", "card", "my", "is", "was", "!", "?", "!!!", "???", "...", ",", "💘", "😡", "👍"]
_token = st.sampled_from(_RULE_WORDS + _SENTIMENT_WORDS + _NOISE) | st.sampled_from(
    _SENTIMENT_WORDS + _RULE_WORDS
).map(str.upper)
_sentence = st.lists(_token, max_size=24).flatmap(
    lambda words: st.sampled_from([" ", "", "  "]).map(lambda sep: sep.join(words))
)

README_EXAMPLES = [
    "VADER is smart, handsome, and funny.",
    "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
    "VADER is not smart, handsome, nor funny.",
    "At least it isn't a horrible book.",
    "The book was only kind of good.",
    "The plot was good, but the characters are uncompelling and the dialog is not great.",
    "Today only kinda sux! But I'll get by, lol",
    "Make sure you :) or :D today!",
    "Catch utf-8 emoji such as 💘 and 💋 and 😁",
    "Not bad at all",
    "no good no bad no",
    # one sentence per rule branch: "least" after "at"/"very" or not, "never so", "without doubt",
    # "no" up to three words back, boosters in capitals, idioms and special cases around a sentiment word
    "at least good",
    "the very least good",
    "least good",
    "it is the least happy",
    "never so good",
    "never this bad",
    "never really so bad",
    "without doubt good",
    "without a doubt bad",
    "no problem at all",
    "no or nor good",
    "not very good",
    "it isn't really that bad",
    "kind of good",
    "sort of bad",
    "VERY GOOD but bad",
    "this is the shit",
    "yeah right good",
    "the kiss of death",
    "a bus stop sucks",
    "to die for great",
    "this is so bad ass",
    "then she gave a kiss of death",
    "we waited at one bad bus stop",
    "",
    "   ",
    "!!!",
]


@pytest.mark.parametrize("text", README_EXAMPLES + QUALITY_TEXTS + ACCEPTANCE_TEXTS)
def test_same_scores_as_the_reference_on_known_texts(text: str) -> None:
    assert FAST.polarity_scores(text) == REF.polarity_scores(text)


@settings(max_examples=600, deadline=None)
@given(_sentence)
def test_same_scores_as_the_reference_on_generated_sentences(text: str) -> None:
    assert FAST.polarity_scores(text) == REF.polarity_scores(text)


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_same_scores_as_the_reference_on_arbitrary_unicode(text: str) -> None:
    assert FAST.polarity_scores(text) == REF.polarity_scores(text)


@pytest.mark.slow
@pytest.mark.skipif(not (DEFAULT_DATA_DIR / "airline_tweets").exists(), reason="../shared/data not present")
def test_same_scores_as_the_reference_on_real_tweets() -> None:
    with (DEFAULT_DATA_DIR / "airline_tweets" / "Tweets.csv").open(encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    assert len(texts) > 10_000
    differ = [t for t in texts if FAST.polarity_scores(t) != REF.polarity_scores(t)]
    assert differ == []
