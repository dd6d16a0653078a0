"""classify_turn: a resent message is recognised by its speaker, seq and text."""

from __future__ import annotations

from router.domain.turns import classify_turn

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
