"""Pools of single customer lines: real public text from ``../shared/data`` when it is there, the bundled
fallback corpus otherwise. ``router bench`` draws its workload from them; the simulator's journeys replay
the project's own corpus (``router.sim.corpus_lines``) and fall back to the bundled pools
(``bundled_pools``, through ``router.sim.pool_lines``) only when ``models/corpus`` is missing.

Pools (every one de-duplicated and sorted, so that a seed picks the same lines on every machine that has
the same data):

- ``routine``: everyday requests. Bitext customer-support utterances of routine intents, Banking77 and
  CLINC150 *test* queries of routine intents, neutral airline tweets.
- ``mot``: moments of truth. Negative airline tweets whose reason is a cancelled flight or lost/damaged
  luggage, Banking77 and CLINC150 test queries of the "high" intents in ``mot_intents.json`` (lost or
  stolen card, fraud, double charge, blocked account ...).
- ``storm``: the burst scenario's surge, negative "Cancelled Flight" tweets only.
- ``turning``: what a routine contact says when it turns emotional: negative "Customer Service Issue"
  and "Late Flight" tweets, Bitext "complaint" utterances.
- ``human``: explicit requests for a person: Bitext ``contact_human_agent`` plus the bundled lines.

Only test splits of Banking77 and CLINC150 are used: the project's topic head trains on their train splits,
and a simulation that replayed training text would flatter the transformer scorer. Airline tweets
(CC BY-NC-SA) and Bitext (CDLA-Sharing) are read at run time for evaluation and never copied into the
project.
"""

from __future__ import annotations

import csv
import html
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from router.scoring.evaluate import clean_tweet
from router.sim.corpus import bundled

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"

AIRLINE_MOT_REASONS = ("Cancelled Flight", "Lost Luggage", "Damaged Luggage")
AIRLINE_TURNING_REASONS = ("Customer Service Issue", "Late Flight")
# The "medium" intents of mot_intents.json (failures, refunds, blocked PINs ...) are neither moments of truth
# nor plainly routine: they are left out of both pools so that the ground truth stays clean.
_MIN_WORDS = 3
_MAX_CHARS = 280
# ambiguous Bitext intents ("how do I contact customer service" reads as routine or as a human request)
_BITEXT_SKIP = frozenset({"contact_customer_service"})
# routine Bitext lines that ask an agent to do something ("could you ask an agent how to ...") or carry
# the set's offensive-language flag W (its anger proxy) are not routine ground truth
_AGENTISH = ("agent", "human", "person", "someone", "operator", "representative")
# a negative tweet this short rarely says anything ("or did you mean 24-26?")
_MIN_EMOTIONAL_WORDS = 6


@dataclass(frozen=True)
class TextPools:
    routine: tuple[str, ...]
    mot: tuple[str, ...]
    storm: tuple[str, ...]
    turning: tuple[str, ...]
    human: tuple[str, ...]
    source: str  # "shared-data" or "bundled"
    sources: dict[str, int] = field(default_factory=dict)  # dataset -> lines taken

    def sizes(self) -> dict[str, int]:
        return {
            "routine": len(self.routine),
            "mot": len(self.mot),
            "storm": len(self.storm),
            "turning": len(self.turning),
            "human": len(self.human),
        }


def _keep(text: str) -> bool:
    return len(text.split()) >= _MIN_WORDS and len(text) <= _MAX_CHARS


def _pool(lines: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({t for t in (" ".join(x.split()) for x in lines) if _keep(t)}))


def bundled_pools() -> TextPools:
    c = bundled()
    storm = tuple(t for t in c.mot if "flight" in t.lower()) or c.mot
    return TextPools(
        routine=c.routine,
        mot=c.mot,
        storm=storm,
        turning=c.turning,
        human=c.human,
        source="bundled",
        sources={"bundled": len(c.routine) + len(c.mot) + len(c.turning) + len(c.human)},
    )


def _mot_intents(data: Path) -> dict[str, dict[str, list[str]]]:
    path = data / "mot_intents.json"
    if not path.exists():
        return {}
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {k: v for k, v in raw.items() if isinstance(v, dict)}


@dataclass
class _Gathered:
    """Lines gathered from the shared data so far, per pool, and how many lines each source gave."""

    human: list[str]
    routine: list[str] = field(default_factory=list)
    mot: list[str] = field(default_factory=list)
    storm: list[str] = field(default_factory=list)
    turning: list[str] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)


def load_pools(data_dir: Path | None = None) -> TextPools:
    """Pools from the shared data where present (each dataset optional), the bundled corpus filling gaps."""
    data = data_dir if data_dir is not None else DEFAULT_DATA_DIR
    fallback = bundled_pools()
    if not data.is_dir():
        return fallback
    intents = _mot_intents(data)
    got = _Gathered(human=list(fallback.human))
    _gather_airline(data, got)
    _gather_banking(data, intents.get("banking77", {}), got)
    _gather_clinc(data, intents.get("clinc150", {}), got)
    _gather_bitext(data, intents.get("bitext_customer_support_20k", {}), got)
    return TextPools(
        routine=_pool(got.routine) or fallback.routine,
        mot=_pool(got.mot) or fallback.mot,
        storm=_pool(got.storm) or fallback.storm,
        turning=_pool(got.turning) or fallback.turning,
        human=_pool(got.human) or fallback.human,
        source="shared-data" if got.sources else "bundled",
        sources=got.sources or fallback.sources,
    )


def _gather_airline(data: Path, got: _Gathered) -> None:
    """Neutral questions are routine; negative tweets of enough words are moments of truth (cancelled
    flights also feed the storm) or turning lines, by the tweet's negative reason."""
    airline = data / "airline_tweets" / "Tweets.csv"
    if not airline.exists():
        return
    n0 = len(got.routine) + len(got.mot) + len(got.turning)
    with airline.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            text = clean_tweet(html.unescape(row.get("text", "")))
            sentiment, reason = row.get("airline_sentiment", ""), row.get("negativereason", "")
            if sentiment == "neutral" and "?" in text:
                got.routine.append(text)
            elif sentiment != "negative" or len(text.split()) < _MIN_EMOTIONAL_WORDS:
                continue
            elif reason in AIRLINE_MOT_REASONS:
                got.mot.append(text)
                if reason == "Cancelled Flight":
                    got.storm.append(text)
            elif reason in AIRLINE_TURNING_REASONS:
                got.turning.append(text)
    got.sources["airline_tweets"] = len(got.routine) + len(got.mot) + len(got.turning) - n0


def _gather_banking(data: Path, intents: dict[str, list[str]], got: _Gathered) -> None:
    """High-stakes intents are moments of truth, the medium ones are left out, the rest is routine."""
    banking = data / "banking77" / "test.csv"
    high, mid = set(intents.get("high", [])), set(intents.get("medium", []))
    if not banking.exists() or not high:
        return
    n = 0
    with banking.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            cat, text = row.get("category", ""), row.get("text", "")
            if cat in high:
                got.mot.append(text)
            elif cat not in mid:
                got.routine.append(text)
            n += 1
    got.sources["banking77_test"] = n


def _gather_clinc(data: Path, intents: dict[str, list[str]], got: _Gathered) -> None:
    """As banking, with routine lines only from the customer-service domains."""
    clinc = data / "clinc150" / "data_full.json"
    high, mid = set(intents.get("high", [])), set(intents.get("medium", []))
    if not clinc.exists() or not high:
        return
    service = _service_intents(data / "clinc150" / "domains.json")
    n = 0
    for text, intent in json.loads(clinc.read_text(encoding="utf-8")).get("test", []):
        if intent in high:
            got.mot.append(text)
        elif intent not in mid and (not service or intent in service):
            got.routine.append(text)
        else:
            continue
        n += 1
    got.sources["clinc150_test"] = n


def _gather_bitext(data: Path, intents: dict[str, list[str]], got: _Gathered) -> None:
    """Requests for a person, complaints (turning lines) and plain routine requests."""
    bitext = data / "bitext_customer_support_20k" / "TrainingdatasetBitextsample.csv"
    if not bitext.exists():
        return
    not_routine = set(intents.get("high", [])) | set(intents.get("medium", []))
    n = 0
    with bitext.open(encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            intent, text = row.get("intent", ""), row.get("utterance", "")
            if intent == "contact_human_agent":
                got.human.append(text)
            elif intent == "complaint":
                got.turning.append(text)
            elif _routine_bitext(intent, text, row.get("flags", ""), not_routine):
                got.routine.append(text)
            else:
                continue
            n += 1
    got.sources["bitext"] = n


def _routine_bitext(intent: str, text: str, flags: str, not_routine: set[str]) -> bool:
    if intent in not_routine or intent in _BITEXT_SKIP or "W" in flags:
        return False
    return not any(w in text.lower() for w in _AGENTISH)


def _service_intents(path: Path) -> set[str]:
    """CLINC150 intents of the customer-service domains (banking, credit cards, travel); small talk, weather
    and recipes are not what a contact centre hears."""
    if not path.exists():
        return set()
    domains = json.loads(path.read_text(encoding="utf-8"))
    keep = ("banking", "credit_cards", "travel")
    out: set[str] = set()
    for name in keep:
        out.update(domains.get(name, []))
    return out
