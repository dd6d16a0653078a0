from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from router.scoring.textnorm import is_shouted, unshout


def test_a_shouted_message_reads_in_sentence_case() -> None:
    assert unshout("KÜNDIGUNG. SOFORT. ALLES.") == "Kündigung. Sofort. Alles."
    out = unshout("WHERE IS MY PARCEL? I ORDERED IT ON MONDAY")
    assert out == "Where is my parcel? I ordered it on monday"
    assert unshout("REAL PERSON.") == "Real person."
    # Greek capitals: the final sigma comes back as a final sigma
    assert unshout("ΧΑΣΑΜΕ ΤΗΝ ΠΤΗΣΗ ΣΑΣ") == "Χασαμε την πτηση σας"


def test_emphasis_acronyms_and_short_messages_are_left_alone() -> None:
    for text in (
        "I just got an email saying it's CANCELLED?? My sister's wedding is tomorrow!",
        "My PIN and the ATM both fail",
        "OK THX",  # fewer than eight letters: not shouting
        "12345 !!!",
        "",
    ):
        assert not is_shouted(text)
        assert unshout(text) == text


@given(st.text(max_size=80))
def test_it_only_lowers_capitals_of_a_shouted_text_and_is_idempotent(text: str) -> None:
    out = unshout(text)
    assert unshout(out) == out
    if out != text:
        assert is_shouted(text)
        # lower-casing may lengthen a letter ("İ"), never drop one; no capital is added
        assert len(out) >= len(text)
        assert sum(c.isupper() for c in out) < sum(c.isupper() for c in text)
