"""What the encoder reads of a customer's text: a message typed in capitals is read in sentence case.

The corpus's 46 shouted lines (of 19,255) are mostly moments of truth, so the heads learned capitals as a
cue: typed in capitals, the dev split's 1,005 routine single turns read 0.21 higher on average, the
detector flagged 148 of them as one-turn contacts (8 as written), and the topic head's probability rose
from 0.29 to 0.43 (2026-12-07; models/MODEL_CARD.md, Encoder).
A routine question in capitals is still routine, and many customers type every message that way (SMS,
older keyboards). So the encoder reads a shouted message as if typed in sentence case. Little loudness is
lost: the intensity head read the same lines in capitals barely higher (0.509 against 0.493), and
whatever reads the words themselves (VADER features, the lexical reading, language detection) still reads
the original. A single word in capitals ("it's CANCELLED") is left alone: the corpus writes such emphasis
often and labels it both ways, so it is within what the heads learned.
"""

from __future__ import annotations

import re

# a message is shouted when at least this share of its letters are capitals ...
SHOUTED_UPPER_SHARE = 0.7
# ... and it has at least this many letters ("OK", "ATM PIN" are not shouting)
SHOUTED_MIN_LETTERS = 8

_SENTENCE_START = re.compile(r"(^\s*|[.!?;:]\s+|\n\s*)(\w)")


def is_shouted(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    if len(letters) < SHOUTED_MIN_LETTERS:
        return False
    cased = [ch for ch in letters if ch.isupper() or ch.islower()]
    return bool(cased) and sum(ch.isupper() for ch in cased) >= SHOUTED_UPPER_SHARE * len(cased)


def unshout(text: str) -> str:
    """``text`` in sentence case when it is shouted (``is_shouted``), else unchanged."""
    if not is_shouted(text):
        return text
    return _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text.lower())
