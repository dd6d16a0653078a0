"""Is a message a turn the contact already has? A platform that resends a message (a retry with a new
event_id, or none) must not add a second turn, and a seq reused for other text is a platform's bug."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

# "new": not in the transcript; "duplicate": the same speaker, seq and text again; "conflict": the same
# speaker and seq with other text
TurnRepeat = Literal["new", "duplicate", "conflict"]


def classify_turn(
    transcript: Sequence[Mapping[str, Any]], seq: int, speaker: str, text: str, kept_chars: int
) -> TurnRepeat:
    """Compare with the transcript, which keeps each text's first ``kept_chars`` characters (and only the
    latest turns: an older repeat is not recognised)."""
    for turn in transcript:
        if turn.get("seq") == seq and turn.get("speaker") == speaker:
            return "duplicate" if turn.get("text") == text[:kept_chars] else "conflict"
    return "new"
