"""classify_turn: a resent message is recognised by its speaker, seq and text."""

from __future__ import annotations

from router.domain.turns import classify_turn, earlier_customer_turns

TRANSCRIPT = [
    {"seq": 0, "speaker": "customer", "text": "x" * 5},
    {"seq": 0, "speaker": "agent", "text": "hello"},
]


def test_new_duplicate_conflict() -> None:
    assert classify_turn(TRANSCRIPT, 1, "customer", "next", 5) == "new"
    assert classify_turn(TRANSCRIPT, 0, "customer", "x" * 9, 5) == "duplicate"  # kept as its first 5
    assert classify_turn(TRANSCRIPT, 0, "customer", "y" * 5, 5) == "conflict"
    assert classify_turn(TRANSCRIPT, 0, "agent", "hello", 5) == "duplicate"
    assert classify_turn(TRANSCRIPT, 0, "bot", "hello", 5) == "new"
    assert classify_turn([], 0, "customer", "x", 5) == "new"


def test_earlier_customer_turns_merge_the_transcript_and_the_workers_own_turns() -> None:
    transcript = [
        {"seq": 1, "speaker": "customer", "text": "first"},
        {"seq": 2, "speaker": "agent", "text": "how can I help"},
        {"seq": 3, "speaker": "customer", "text": "third, cut"},
        {"seq": 5, "speaker": "customer", "text": "fifth"},
    ]
    recent = {3: "third, whole", 4: "fourth"}
    assert earlier_customer_turns(transcript, recent, 5, 4) == ["first", "third, whole", "fourth"]
    assert earlier_customer_turns(transcript, recent, 5, 2) == ["third, whole", "fourth"]
    assert earlier_customer_turns(transcript, recent, 1, 4) == []
    assert earlier_customer_turns(transcript, {}, 9, 0) == []
    assert earlier_customer_turns([{"seq": "x", "speaker": "customer", "text": "bad"}], {}, 9, 4) == []
