"""The project's own moment-of-truth corpus (``models/corpus/``): load it, split it by scenario.

``models/corpus/<lang>/turns*.jsonl`` hold single customer turns and ``conversations*.jsonl`` multi-turn
conversations; models/corpus/README.md says what every field means and how the text was written. The
split is a stable hash of the scenario, so paraphrases of one situation never sit on both sides of a split
and the split never changes when lines are added elsewhere.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from router.scoring.overlap import norm_text

Split = Literal["train", "dev", "test"]
DEFAULT_CORPUS_DIR = Path(__file__).resolve().parents[2] / "models" / "corpus"
# Plain single sentences the lead wrote to try the detector as a new user would; a file beside the language
# folders, so load_corpus (and every training script) never reads it.
PROBES_FILE = "probes.jsonl"
LANGUAGES: tuple[str, ...] = ("en", "it", "ro", "fi", "el", "de", "es", "fr", "pt", "pl", "nl")
# share of scenarios per split: test first, then dev, the rest train
TEST_SHARE = 0.25
DEV_SHARE = 0.20

MOT_CATEGORIES: tuple[str, ...] = (
    "travel_disruption",
    "lost_stolen_card",
    "fraud_takeover",
    "bereavement",
    "health_safety",
    "service_cut_off",
    "financial_hardship",
    "life_event",
    "repeated_failure",
    "churn_threat",
    "human_after_failure",
    "vulnerable_customer",
)
ROUTINE_CATEGORIES: tuple[str, ...] = (
    "routine_request",
    "polite_change",
    "mild_annoyance",
    "billing_question",
    "short_delay",
    "thanks",
    "joke",
    "calm_alarming_question",
    "routine_human",
)
STYLES: tuple[str, ...] = (
    "sarcasm",
    "no_negative_words",
    "capitals",
    "typos",
    "code_switching",
    "very_short",
    "very_long",
    "voice_disfluency",
    "emoji",
)
CHANNELS: tuple[str, ...] = ("chat", "voice", "email", "social", "sms")
SPEAKERS: tuple[str, ...] = ("customer", "bot", "agent")


class CorpusError(ValueError):
    """A corpus line breaks the format in models/corpus/README.md."""


def split_of(scenario: str) -> Split:
    h = int(hashlib.sha256(scenario.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    if h < TEST_SHARE:
        return "test"
    if h < TEST_SHARE + DEV_SHARE:
        return "dev"
    return "train"


@dataclass(frozen=True, slots=True)
class CorpusTurn:
    id: str
    scenario: str
    lang: str
    text: str
    mot: bool
    category: str
    styles: tuple[str, ...]
    channel: str
    split: Split


@dataclass(frozen=True, slots=True)
class ConvTurn:
    speaker: str
    text: str


@dataclass(frozen=True, slots=True)
class CorpusConversation:
    id: str
    scenario: str
    lang: str
    channel: str
    category: str
    mot_turn: int | None  # 1-based number of the first moment-of-truth customer turn; None: never
    styles: tuple[str, ...]
    turns: tuple[ConvTurn, ...]
    split: Split

    @property
    def customer_texts(self) -> list[str]:
        return [t.text for t in self.turns if t.speaker == "customer"]


@dataclass(frozen=True)
class Corpus:
    turns: tuple[CorpusTurn, ...]
    conversations: tuple[CorpusConversation, ...]

    def split(self, name: Split) -> Corpus:
        return Corpus(
            tuple(t for t in self.turns if t.split == name),
            tuple(c for c in self.conversations if c.split == name),
        )

    def languages(self) -> list[str]:
        seen = {t.lang for t in self.turns} | {c.lang for c in self.conversations}
        return [lang for lang in LANGUAGES if lang in seen] + sorted(seen - set(LANGUAGES))

    def text_languages(self) -> dict[str, str]:
        """Customer text -> the language its contact gives, which is what the worker scores a turn in (a
        line said word for word in two languages, "OK", keeps the first: the heads it picks agree there)."""
        out: dict[str, str] = {}
        for t in self.turns:
            out.setdefault(t.text, t.lang)
        for c in self.conversations:
            for text in c.customer_texts:
                out.setdefault(text, c.lang)
        return out


def _lines(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{path}:{n}: not JSON ({exc})") from exc
        if not isinstance(obj, dict):
            raise CorpusError(f"{path}:{n}: not a JSON object")
        yield n, obj


def _styles(obj: dict[str, object], where: str) -> tuple[str, ...]:
    styles = obj.get("styles", [])
    if not isinstance(styles, list) or not set(styles) <= set(STYLES):
        raise CorpusError(f"{where}: styles {styles!r} not in {STYLES}")
    return tuple(str(s) for s in styles)


def _check_category(mot: bool, category: str, where: str) -> None:
    allowed = MOT_CATEGORIES if mot else ROUTINE_CATEGORIES
    if category not in allowed:
        raise CorpusError(f"{where}: category {category!r} for mot={int(mot)}")


def _turn(obj: dict[str, object], lang: str, where: str) -> CorpusTurn:
    try:
        mot = obj["mot"]
        if mot not in (0, 1):
            raise CorpusError(f"{where}: mot must be 0 or 1")
        text, scenario, category = str(obj["text"]).strip(), str(obj["scenario"]), str(obj["category"])
        channel = str(obj.get("channel", "chat"))
        turn = CorpusTurn(
            id=str(obj["id"]),
            scenario=scenario,
            lang=str(obj["lang"]),
            text=text,
            mot=bool(mot),
            category=category,
            styles=_styles(obj, where),
            channel=channel,
            split=split_of(scenario),
        )
    except KeyError as exc:
        raise CorpusError(f"{where}: missing field {exc}") from exc
    if turn.lang != lang or not text or channel not in CHANNELS:
        raise CorpusError(f"{where}: lang, text or channel invalid")
    _check_category(turn.mot, category, where)
    return turn


def _conversation(obj: dict[str, object], lang: str, where: str) -> CorpusConversation:
    try:
        raw_turns = obj["turns"]
        if not isinstance(raw_turns, list):
            raise CorpusError(f"{where}: turns must be a list")
        turns = tuple(ConvTurn(str(t["speaker"]), str(t["text"]).strip()) for t in raw_turns)
        mot_turn = obj["mot_turn"]
        scenario = str(obj["scenario"])
        conv = CorpusConversation(
            id=str(obj["id"]),
            scenario=scenario,
            lang=str(obj["lang"]),
            channel=str(obj["channel"]),
            category=str(obj["category"]),
            mot_turn=None if mot_turn is None else int(str(mot_turn)),
            styles=_styles(obj, where),
            turns=turns,
            split=split_of(scenario),
        )
    except (KeyError, TypeError) as exc:
        raise CorpusError(f"{where}: missing or malformed field ({exc})") from exc
    n_customer = len(conv.customer_texts)
    if conv.lang != lang or conv.channel not in CHANNELS or not 2 <= n_customer <= 8:
        raise CorpusError(f"{where}: lang, channel or number of customer turns ({n_customer}) invalid")
    if any(t.speaker not in SPEAKERS or not t.text for t in turns):
        raise CorpusError(f"{where}: a turn has an unknown speaker or no text")
    if conv.mot_turn is not None and not 1 <= conv.mot_turn <= n_customer:
        raise CorpusError(f"{where}: mot_turn {conv.mot_turn} outside 1..{n_customer}")
    _check_category(conv.mot_turn is not None, conv.category, where)
    return conv


def load_corpus(corpus_dir: Path | None = None) -> Corpus:
    """Every language folder under ``corpus_dir``; raises ``CorpusError`` on a malformed line or id clash."""
    root = corpus_dir or DEFAULT_CORPUS_DIR
    turns: list[CorpusTurn] = []
    convs: list[CorpusConversation] = []
    for lang_dir in sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []:
        lang = lang_dir.name
        for path in sorted(lang_dir.glob("turns*.jsonl")):
            turns += [_turn(obj, lang, f"{path}:{n}") for n, obj in _lines(path)]
        for path in sorted(lang_dir.glob("conversations*.jsonl")):
            convs += [_conversation(obj, lang, f"{path}:{n}") for n, obj in _lines(path)]
    ids = [t.id for t in turns] + [c.id for c in convs]
    if len(ids) != len(set(ids)):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise CorpusError(f"duplicate ids in {root}: {dup}")
    return Corpus(tuple(turns), tuple(convs))


@dataclass(frozen=True, slots=True)
class TrainingRow:
    """One per-turn training example for the heads: moment of truth (0/1), topic label, asks for a person
    (1, 0, or -1 when unknown: a turn of a routine conversation about reaching a person)."""

    text: str
    mot: float
    topic: str
    human: float
    scenario: str


HUMAN_CATEGORIES = frozenset({"routine_human", "human_after_failure"})


def load_probes(corpus_dir: Path | None = None) -> dict[str, Corpus]:
    """The probe sets by name (evaluation only). Set "a" was written before the sixth writing round and its
    situations were named in that round's brief; set "b" was written afterwards, about situations no brief
    named, before any model trained on that round was scored; set "c" was written before the eighth round,
    whose brief names set b's misses but none of set c's situations. Set "issue" is the moment-of-truth
    issue's own examples as its author tried them (the cancelled flight before a wedding, the stolen cards in
    Spanish and Romanian, "how do I report a lost card in the app?"...), which every writing brief kept out
    of the corpus."""
    path = (corpus_dir or DEFAULT_CORPUS_DIR) / PROBES_FILE
    sets: dict[str, list[CorpusTurn]] = {}
    for n, obj in _lines(path) if path.exists() else iter(()):
        sets.setdefault(str(obj.get("set", "")), []).append(_turn(obj, str(obj.get("lang")), f"{path}:{n}"))
    return {name: Corpus(tuple(turns), ()) for name, turns in sorted(sets.items())}


def training_rows(corpus: Corpus, split: Literal["train", "dev"]) -> list[TrainingRow]:
    """Per-turn rows of one split: every single turn, and each conversation's customer turns up to its
    first moment-of-truth turn (the turns after it are left out: "ok, thanks" after the crisis is neither).
    The test split is refused: it never trains a weight or picks a threshold, and a line said word for word
    in a test conversation too ("Ok thanks") is left out here (router.scoring.overlap.norm_text)."""
    if split not in ("train", "dev"):
        raise ValueError(f"training rows come from the train or dev split, not {split!r}")
    from router.scoring.topics import corpus_topic

    held_out = held_out_lines(corpus)
    part = corpus.split(split)
    rows = [
        TrainingRow(
            t.text,
            float(t.mot),
            corpus_topic(t.category) if t.mot else "none",
            float(t.category in HUMAN_CATEGORIES),
            t.scenario,
        )
        for t in part.turns
    ]
    for c in part.conversations:
        for k, text in enumerate(c.customer_texts, 1):
            if c.mot_turn is not None and k > c.mot_turn:
                break
            at = c.mot_turn == k
            topic = corpus_topic(c.category) if at else "none"
            human = -1.0 if c.category == "routine_human" else float(at and c.category in HUMAN_CATEGORIES)
            rows.append(TrainingRow(text, float(at), topic, human, c.scenario))
    return [r for r in rows if norm_text(r.text) not in held_out]


def held_out_lines(corpus: Corpus) -> set[str]:
    """Every line of the test split, normalised (router.scoring.overlap.norm_text): a row holding one never
    trains."""
    test = corpus.split("test")
    return {norm_text(t.text) for t in test.turns} | {
        norm_text(x) for c in test.conversations for x in c.customer_texts
    }


CONTEXT_SEP = " | "
CONTEXT_TURNS = 2  # customer turns before the current one that a context row carries


def with_context(texts: list[str], k: int) -> str:
    """Customer turn ``k`` (0-based) after the (up to ``CONTEXT_TURNS``) customer turns before it."""
    return CONTEXT_SEP.join(texts[max(0, k - CONTEXT_TURNS) : k + 1])


def context_rows(corpus: Corpus, split: Literal["train", "dev"]) -> list[tuple[str, float]]:
    """(text, moment of truth 0/1) for each conversation's customer turns from the second up to its first
    moment-of-truth turn, each joined to the turns before it (``with_context``): rows the encoder's tuning
    learns from beside the single turns, so that a calm turn reads in the light of the ones before it. The
    test split is refused, and a row holding a line said word for word in the test split is left out."""
    held_out = held_out_lines(corpus)
    return [
        (with_context(texts, k), float(c.mot_turn == k + 1))
        for c, texts, k in _later_turns(corpus, split)
        if not any(norm_text(t) in held_out for t in texts[max(0, k - CONTEXT_TURNS) : k + 1])
    ]


def _later_turns(
    corpus: Corpus, split: Literal["train", "dev"]
) -> Iterator[tuple[CorpusConversation, list[str], int]]:
    """(conversation, its customer texts, k) for each customer turn k (0-based) from the second up to the
    first moment-of-truth turn (every turn of a routine conversation); the test split is refused."""
    if split not in ("train", "dev"):
        raise ValueError(f"context rows come from the train or dev split, not {split!r}")
    for c in corpus.split(split).conversations:
        texts = c.customer_texts
        last = len(texts) if c.mot_turn is None else c.mot_turn
        for k in range(1, last):
            yield c, texts, k


@dataclass(frozen=True)
class ContextRow:
    """A conversation's customer turn (from the second on) with the customer turns before it, for the head
    that reads a turn in its context (``mot_context``)."""

    text: str
    earlier: tuple[str, ...]
    mot: float
    scenario: str


def turn_context_rows(corpus: Corpus, split: Literal["train", "dev"]) -> list[ContextRow]:
    """Each conversation's customer turns from the second up to its first moment-of-truth turn (every turn
    of a routine one), labelled 1 on that turn, with the turns before it. The test split is refused, and a
    row holding a line said word for word in the test split is left out."""
    held_out = held_out_lines(corpus)
    return [
        ContextRow(texts[k], tuple(texts[:k]), float(c.mot_turn == k + 1), c.scenario)
        for c, texts, k in _later_turns(corpus, split)
        if not any(norm_text(t) in held_out for t in texts[: k + 1])
    ]
