"""The keyword cues' fast path (lower-cased ASCII, case-sensitive patterns) finds what IGNORECASE finds."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from router.scoring.bench import ACCEPTANCE_TEXTS, QUALITY_TEXTS
from router.scoring.topics import HUMAN_REQUEST, TOPIC_CUES, asks_for_human, cue_topic

CUES = [*TOPIC_CUES.values(), HUMAN_REQUEST]
_WORDS = sorted({w for cue in CUES for w in re.findall(r"[a-z']+", re.sub(r"\\.", " ", cue.source))})
# cue words in any case, with the characters between them that the patterns care about
_token = st.sampled_from(_WORDS).flatmap(
    lambda w: st.sampled_from([w, w.upper(), w.title(), w[:1].upper() + w[1:].lower()])
) | st.sampled_from([" ", "  ", ",", "!", "my", "the", "3", "was", "ſ", "K", "İ", "é"])


def _reference_topic(text: str) -> str | None:
    return next((t for t, cue in TOPIC_CUES.items() if cue.folded.search(text)), None)


def test_patterns_have_only_lower_case_literals() -> None:
    # the case-sensitive copy is only equivalent when every literal letter is lower case
    for cue in CUES:
        literals = re.sub(r"\\.", "", cue.source)
        assert literals == literals.lower(), cue.source


@settings(max_examples=800, deadline=None)
@given(st.lists(_token, max_size=16).map(" ".join))
def test_fast_path_finds_what_ignorecase_finds(text: str) -> None:
    assert cue_topic(text) == _reference_topic(text)
    assert asks_for_human(text) == (HUMAN_REQUEST.folded.search(text) is not None)


def test_known_texts() -> None:
    for text in QUALITY_TEXTS + ACCEPTANCE_TEXTS:
        assert cue_topic(text) == _reference_topic(text), text
    assert cue_topic("My CARD was STOLEN") == "lost_card"
    assert cue_topic("what are your opening hours") is None
    assert asks_for_human("I want to SPEAK TO A REAL PERSON")
    assert cue_topic("Mi hanno rubato la carta, non è colpa mia; my card was stolen") == "lost_card"
