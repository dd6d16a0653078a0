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


def earlier_customer_turns(
    transcript: Sequence[Mapping[str, Any]], recent: Mapping[int, str], seq: int, limit: int
) -> list[str]:
    """The customer turns before turn ``seq``, oldest first, at most ``limit``: from ``recent`` (turns this
    worker scored, whole texts, possibly not committed yet) and the stored transcript tail (texts cut to its
    kept length), each turn once by its seq; a resent turn ``seq`` itself is not its own context."""
    by_seq = {s: t for s, t in recent.items() if s < seq}
    for turn in transcript:
        s = turn.get("seq")
        if turn.get("speaker") == "customer" and isinstance(s, int) and s < seq and s not in by_seq:
            by_seq[s] = str(turn.get("text", ""))
    return [by_seq[s] for s in sorted(by_seq)][-limit:] if limit > 0 else []
