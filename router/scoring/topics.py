"""Moment-of-truth topics: the label set every scorer shares, and the keyword cues the lexicon uses."""

from __future__ import annotations

import re

# Order is part of the model contract: the topic head's output index i is MOT_TOPICS[i].
MOT_TOPICS: tuple[str, ...] = (
    "lost_card",
    "fraud",
    "travel_disruption",
    "lost_luggage",
    "double_charge",
    "product_failure",
    "service_cut_off",
    "account_blocked",
    "bereavement",
    # the rest of the corpus's moment-of-truth categories (router.scoring.corpus.MOT_CATEGORIES)
    "health_safety",
    "financial_hardship",
    "life_event",
    "repeated_failure",
    "churn_threat",
    "human_after_failure",
    "vulnerable_customer",
)
# corpus category -> topic label, where the two names differ
CORPUS_TOPICS: dict[str, str] = {"lost_stolen_card": "lost_card", "fraud_takeover": "fraud"}


def corpus_topic(category: str) -> str:
    """The topic label of a corpus moment-of-truth category."""
    return CORPUS_TOPICS.get(category, category)


_CUES: dict[str, tuple[str, ...]] = {
    "lost_card": (
        r"\b(lost|stolen|missing|swallowed)\b.{0,30}\b(card|wallet|phone)\b",
        r"\b(card|wallet)\b.{0,30}\b(lost|stolen|missing|swallowed)\b",
    ),
    "fraud": (
        r"\bfraud\w*\b",
        r"\b(scam|scammed|hacked|compromised|unauthori[sz]ed)\b",
        r"\b(didn'?t|did not|never)\b.{0,30}\b(make|authori[sz]e|recogni[sz]e)\b",
        r"\bnot recogni[sz]ed?\b",
        r"\bidentity theft\b",
    ),
    "travel_disruption": (
        r"\b(flight|train|trip)\b.{0,40}\b(cancel+ed|delayed|missed|overbooked)\b",
        r"\b(cancel+ed|delayed|missed)\b.{0,30}\b(flight|train|connection)\b",
        r"\bstranded\b",
        r"\bmissed (my|the) connection\b",
    ),
    "lost_luggage": (
        r"\b(lost|missing|damaged|broken|destroyed)\b.{0,20}\b(luggage|bag|bags|baggage|suitcase)\b",
        r"\b(luggage|baggage|suitcase)\b.{0,30}\b(lost|missing|damaged|never arrived)\b",
    ),
    "double_charge": (
        r"\bcharged (me )?twice\b",
        r"\bdouble[- ]charged?\b",
        r"\bcharged two times\b",
        r"\bduplicate (charge|payment|transaction)\b",
        r"\bwrong amount\b",
    ),
    "product_failure": (
        r"\b(stopped|stops|not|isn'?t|doesn'?t|won'?t) work(ing)?\b",
        r"\b(broke|broken|dead|died|defective|faulty)\b",
    ),
    "service_cut_off": (
        r"\b(cut off|disconnected|shut off|no (power|internet|service|signal|heating|water))\b",
        r"\boutage\b",
    ),
    "account_blocked": (
        r"\b(account|card)\b.{0,20}\b(blocked|frozen|locked|suspended|closed)\b",
        r"\b(blocked|frozen|locked|suspended)\b.{0,20}\baccount\b",
    ),
    "bereavement": (r"\b(passed away|died|death|funeral|bereave\w*|deceased)\b",),
}


class _Cue:
    """A keyword pattern (lower-case literals) compiled twice. Lower-cased ASCII text is searched with the
    case-sensitive copy: the same matches as IGNORECASE on the original (ASCII case-folding only maps A-Z to
    a-z), at about half the cost. Other text keeps IGNORECASE, whose Unicode folding ``str.lower`` does not
    reproduce (the long s matches "s", "İ".lower() is two characters)."""

    __slots__ = ("folded", "plain", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.folded = re.compile(source, re.IGNORECASE)
        self.plain = re.compile(source)

    def search(self, text: str, lowered_ascii: str | None) -> bool:
        if lowered_ascii is not None:
            return self.plain.search(lowered_ascii) is not None
        return self.folded.search(text) is not None


def _lowered_ascii(text: str) -> str | None:
    return text.lower() if text.isascii() else None


# one alternation per topic: one search per topic instead of one per cue
TOPIC_CUES: dict[str, _Cue] = {
    topic: _Cue("|".join(f"(?:{p})" for p in pats)) for topic, pats in _CUES.items()
}

HUMAN_REQUEST = _Cue(
    r"\b((speak|talk|chat) (to|with) (a |an |the |your )?(real )?(human|person|agent|manager|supervisor|someone)"
    r"|(real|live|actual) (person|human|agent)|human agent|representative|operator please"
    r"|stop (transferring|passing) me|transferred (me )?(again|\d+ times|three times|twice)"
    r"|let me (speak|talk) to|get me (a|someone)|escalate)\b",
)


def cue_topic(text: str) -> str | None:
    """The first topic (in MOT_TOPICS order) whose keyword cues occur in ``text``."""
    low = _lowered_ascii(text)
    return next((topic for topic, cue in TOPIC_CUES.items() if cue.search(text, low)), None)


def asks_for_human(text: str) -> bool:
    """An explicit request for a person (an agent, a manager) or a complaint about transfers."""
    return HUMAN_REQUEST.search(text, _lowered_ascii(text))


# Public intents -> moment-of-truth topic (anything not listed is "none"). Used to train and to evaluate
# the topic head. This departs from ../shared/data/mot_intents.json where it is wrong for *topics*:
# see models/MODEL_CARD.md ("Topic mapping") for the argument on each departure.
INTENT_TOPICS: dict[str, dict[str, str]] = {
    "banking77": {
        "lost_or_stolen_card": "lost_card",
        "card_swallowed": "lost_card",
        "lost_or_stolen_phone": "lost_card",
        "compromised_card": "fraud",
        "card_payment_not_recognised": "fraud",
        "cash_withdrawal_not_recognised": "fraud",
        "direct_debit_payment_not_recognised": "fraud",
        "transaction_charged_twice": "double_charge",
        "wrong_amount_of_cash_received": "double_charge",
        "card_not_working": "product_failure",
        "contactless_not_working": "product_failure",
        "virtual_card_not_working": "product_failure",
        "declined_card_payment": "product_failure",
        "pin_blocked": "account_blocked",
    },
    "clinc150": {
        "report_lost_card": "lost_card",
        "report_fraud": "fraud",
        "freeze_account": "fraud",
        "lost_luggage": "lost_luggage",
        "account_blocked": "account_blocked",
        "damaged_card": "product_failure",
        "card_declined": "product_failure",
    },
}

# Banking77 / CLINC150 intents in which the customer reports something that went wrong (as opposed to
# asking how to do something). Weak supervision for the intensity head: a calm problem report is mild
# negative affect (target 0.35), a how-to request is none (0). See models/MODEL_CARD.md.
PROBLEM_INTENTS: frozenset[str] = frozenset(
    {
        "Refund_not_showing_up",
        "balance_not_updated_after_bank_transfer",
        "balance_not_updated_after_cheque_or_cash_deposit",
        "card_arrival",
        "card_not_working",
        "card_payment_not_recognised",
        "card_payment_wrong_exchange_rate",
        "card_swallowed",
        "cash_withdrawal_not_recognised",
        "compromised_card",
        "contactless_not_working",
        "declined_card_payment",
        "declined_cash_withdrawal",
        "declined_transfer",
        "direct_debit_payment_not_recognised",
        "extra_charge_on_statement",
        "failed_transfer",
        "lost_or_stolen_card",
        "lost_or_stolen_phone",
        "pending_cash_withdrawal",
        "pending_top_up",
        "pending_transfer",
        "pin_blocked",
        "reverted_card_payment?",
        "top_up_failed",
        "top_up_reverted",
        "transaction_charged_twice",
        "transfer_not_received_by_recipient",
        "unable_to_verify_identity",
        "virtual_card_not_working",
        "wrong_amount_of_cash_received",
        "wrong_exchange_rate_for_cash_withdrawal",
        "card_payment_fee_charged",
        "cash_withdrawal_charge",
        "transfer_fee_charged",
        "account_blocked",
        "card_declined",
        "damaged_card",
        "lost_luggage",
        "report_fraud",
        "report_lost_card",
    }
)
