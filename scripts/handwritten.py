"""Hand-written training sentences (written for this project, not taken from any dataset).

Used by scripts/train_heads.py where the licensed public sets have no coverage:
- topics that Banking77 / CLINC150 do not contain (travel disruption, service cut off, bereavement,
  non-card product failure, lost luggage phrased by customers rather than voice-assistant queries, a
  stolen card that is being used: lost_card);
- the wants-a-human signal (no public set here with a licence that allows shipped weights has it);
- routine contact-centre requests (opening hours, invoices ...) as negatives.
Everything is generated from the small templates below, deterministically; the model card says so.
"""

from __future__ import annotations

import itertools
import random

_TRAVEL = [
    "my flight was cancelled {t}",
    "you cancelled my flight {t}",
    "flight {f} got cancelled {t} and nobody told me",
    "my train was cancelled {t} and I'm stuck at the station",
    "I missed my connection because the first flight was delayed",
    "we are stranded at the airport after the flight was cancelled",
    "the flight has been delayed for {h} hours and there is no information",
    "my flight is delayed again, I am going to miss my connecting flight",
    "they overbooked the flight and bumped me off",
    "cancelled flightled again, I need to get home {t}",
    "I've been stuck on the tarmac for {h} hours",
    "flight {f} is cancelled, how do I get rebooked",
    "your airline cancelled my flight and I will miss my {e}",
    "the connection was missed and there is no hotel for us",
    "I got rebooked on a flight {h} days later, this is unacceptable",
    "my flight was diverted and now I am stuck in another city",
]
_LUGGAGE = [
    "my luggage never arrived",
    "you lost my bag on flight {f}",
    "my suitcase is missing after the flight",
    "the airline lost my luggage {t}",
    "my bag arrived damaged, the handle is broken",
    "my suitcase came back destroyed",
    "still no sign of my baggage after {h} days",
    "where is my bag? it did not come off the belt",
    "my checked bag was left behind and I have nothing to wear for my {e}",
    "the baggage claim says my luggage is lost",
]
_CUT_OFF = [
    "my internet has been cut off {t}",
    "you disconnected my electricity even though I paid",
    "we have no heating and it is freezing",
    "there is no water in the house since {t}",
    "my phone line is dead and I work from home",
    "the power has been shut off and I have a baby at home",
    "my service was suspended without any warning",
    "there's an outage and I have had no internet for {h} days",
    "you cut off my gas in the middle of winter",
    "my mobile has no signal since {t} and I cannot call anyone",
    "no power at my house for {h} hours, the food in the fridge is ruined",
]
_BEREAVEMENT = [
    "my husband passed away {t} and I need to close his account",
    "my mother died and I don't know what to do with her account",
    "I am calling because my father passed away",
    "my wife died last week and the bills keep coming in her name",
    "we need to cancel the trip because of a death in the family",
    "my son passed away and I need to stop the direct debits",
    "I need to travel for my {r}'s funeral",
    "my {r} died and I am the executor of the estate",
    "how do I report the death of an account holder",
    "I just lost my {r} and I can't deal with these letters",
]
# A card lost or stolen AND used by someone else is a lost_card contact first (block and replace it, then
# dispute the payments): Banking77 / CLINC150 only have the two halves apart (lost_or_stolen_card,
# card_payment_not_recognised), so the head splits such a turn between lost_card and fraud.
_CARD_THEFT = [
    "my {c} was stolen {t} and someone has been using it",
    "someone stole my {c} and made purchases with it",
    "I lost my {c} and now there are transactions I don't recognise",
    "my wallet was stolen with my {c} in it and money has been taken",
    "my {c} got stolen and there are withdrawals I never made",
    "I had my bag stolen, my {c} was in it and I can see charges that aren't mine",
    "lost my {c} {t}, there are already payments on it I did not make",
    "thief took my {c} and spent money on it",
]
_PRODUCT = [
    "my {p} stopped working after {h} days",
    "the {p} I bought is broken",
    "my new {p} won't turn on",
    "the {p} is defective, it keeps crashing",
    "the {p} arrived broken",
    "my {p} died and I need it for work {t}",
    "the {p} doesn't work at all",
    "the {p} caught fire",
    "the replacement {p} is faulty too",
]
_HUMAN = [
    "I want to speak to a human",
    "let me talk to a real person",
    "can I speak to an agent please",
    "get me a manager",
    "I want to talk to your supervisor",
    "agent",
    "human please",
    "representative",
    "operator",
    "stop transferring me, I want a person",
    "I have been transferred {n} times, put me through to someone who can help",
    "is there a real person I can talk to",
    "I don't want to talk to a bot",
    "this bot is useless, connect me to a human",
    "please transfer me to customer service",
    "I need to speak with someone now",
    "can someone call me back",
    "connect me with a live agent",
    "talk to a person",
    "I'd like to speak to somebody about my complaint",
    "escalate this to a manager",
    "you are a robot, I want a human being",
    "can I chat with a real agent",
    "I want to make a complaint to a manager",
    "your chatbot can't help me, give me a human",
]
_ROUTINE = [
    "what are your opening hours",
    "what time do you open on {d}",
    "are you open on {d}",
    "can I get a copy of my invoice",
    "how do I change my address",
    "what is my balance",
    "how do I update my email address",
    "can you send me my last statement",
    "where is the nearest branch",
    "how do I reset my password",
    "what is the baggage allowance for my flight",
    "can I add a seat reservation to my booking",
    "how much does it cost to upgrade my plan",
    "do you deliver on {d}",
    "I would like to order a new card design",
    "can I pay my bill by card",
    "how long does a transfer take",
    "thank you for your help",
    "ok thanks, that's all",
    "what is the interest rate on savings",
    "I'd like to book a table for two on {d}",
    "how do I download the app",
    "can I change my flight date",
    "what documents do I need to open an account",
    "is there a fee for international payments",
    "I talked to my manager and she agreed with the plan",
    "our human resources team needs an invoice",
    "the agent was very helpful, thanks",
    "the representative resolved my issue quickly",
]

_FILL = {
    "t": ["today", "this morning", "last night", "yesterday", "an hour before boarding", "again", ""],
    "f": ["UA123", "BA 287", "AA 1502", "the 7am", "to Chicago", ""],
    "h": ["two", "three", "five", "6", "12"],
    "e": ["wedding", "job interview", "father's funeral", "meeting", "daughter's graduation"],
    "r": ["mother", "father", "brother", "sister", "wife", "husband", "grandmother"],
    "p": ["laptop", "phone", "washing machine", "router", "fridge", "boiler", "TV", "car"],
    "n": ["three", "four", "5", "six"],
    "c": ["card", "debit card", "credit card", "bank card", "visa"],
    "d": ["Sunday", "Saturday", "Monday", "bank holidays", "Christmas Eve"],
}
_PREFIX = ["", "", "", "hi, ", "hello, ", "please help, ", "seriously? ", "ugh, "]
_SUFFIX = ["", "", "", ".", "!", "!!", " please help", " what do I do?", " this is a disaster"]


def _expand(templates: list[str], per_template: int, rng: random.Random, decorate: bool = True) -> list[str]:
    out: list[str] = []
    for tpl in templates:
        keys = [k for k in _FILL if "{" + k + "}" in tpl]
        combos = list(itertools.product(*[_FILL[k] for k in keys])) or [()]
        rng.shuffle(combos)
        for combo in combos[:per_template]:
            text = tpl.format(**dict(zip(keys, combo, strict=True)))
            text = " ".join(text.split())
            if decorate:
                text = rng.choice(_PREFIX) + text + rng.choice(_SUFFIX)
            out.append(text.strip())
    return sorted(set(out))


def handwritten_topics(seed: int = 13) -> dict[str, list[str]]:
    """Topic -> hand-written sentences; topic "none" holds routine requests."""
    rng = random.Random(seed)
    return {
        "travel_disruption": _expand(_TRAVEL, 6, rng),
        "lost_luggage": _expand(_LUGGAGE, 6, rng),
        "service_cut_off": _expand(_CUT_OFF, 6, rng),
        "bereavement": _expand(_BEREAVEMENT, 6, rng),
        "product_failure": _expand(_PRODUCT, 8, rng),
        "lost_card": _expand(_CARD_THEFT, 5, rng),
        "none": _expand(_ROUTINE, 4, rng),
    }


def handwritten_human(seed: int = 17) -> tuple[list[str], list[str]]:
    """(asks for a human, routine) hand-written sentences for the wants-a-human head."""
    rng = random.Random(seed)
    pos = (
        _expand(_HUMAN, 3, rng)
        + [t.lower() for t in _HUMAN if "{" not in t]
        + [t.upper() for t in _HUMAN[:8]]
    )
    neg = _expand(_ROUTINE, 3, rng)
    return sorted(set(pos)), neg


# Letters, words and key runs that junk messages repeat. "x" is left out on purpose: the export's quality
# gate holds a long "x x x ..." line, and the gate must stay text the heads never saw.
# fmt: off
_JUNK_UNITS = [
    *"abcdefghijklmnopqrstuvwyzäöüßàéèìòùñçøåæłąęśżźćńőűąăâîșțαβγδεζηθλμπσω",
    "test", "ok", "hello", "ha", "lol", "hmm", "no", "yes", "asdf", "qwerty", "jkl", "123", "0", "9999",
    "ααα", "ciao", "hola", "hei", "bla", "la", "na", "😂", "👍", "🙂", "...", "-", "hey",
]
# fmt: on


def junk_lines(n: int = 240, seed: int = 13) -> list[str]:
    """Repeated letters, words, digits and key runs, short and up to the encoder's 128 tokens: not a
    moment of truth. Without them the moment-of-truth head extrapolated on such text (a long run of one
    letter scored 0.66 and, through the int8 graph, crossed the detector's threshold)."""
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        unit = rng.choice(_JUNK_UNITS)
        sep = rng.choice([" ", " ", "", "\n"])
        reps = rng.choice([1, 2, 3, 5, 8, 13, 21, 40, 80, 150])
        out.add(sep.join([unit] * reps).strip() or unit)
    return sorted(out)
