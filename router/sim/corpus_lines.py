"""Scripts from the project's moment-of-truth corpus (``models/corpus``), so that a simulation measures the
real detector on text written and labelled for the question it answers, in the corpus's eleven languages.

**Held-out splits by default** (``split="heldout"``: dev and test). The detector learns its weights on
the corpus's train conversations and picks its threshold on dev; the ``mot`` heads under it learn from
train and dev lines (models/heads.json), so only the test lines here are unseen by every weight, and a
simulation's recall and precision are partly in sample on its dev journeys. Test alone would make every
simulation run a read of the test split, and simulations are what routing knobs are tuned on.
``split="all"`` takes every split: more variety for load and floor studies, not for quoting recall.

- ``moment``: a conversation whose ``mot_turn`` is set, replayed: its customer turns, its language, its
  channel. The customer needs a human from turn ``mot_turn`` (``need_turn = mot_turn - 1``); the kind is
  ``mot`` when ``mot_turn`` is 1, else ``turning``.
- ``storm``: the same from the ``travel_disruption`` conversations (cancelled or stranded flights and
  trains); a language without one falls back to its other moments of truth.
- ``routine``: half the time a routine conversation (``mot_turn`` null) replayed, else two or three
  routine single turns of the language. Every routine category counts (calm alarming questions, jokes and
  mild annoyance are the hard negatives) except ``routine_human``.
- ``routine_human``: a routine turn, a ``routine_human`` turn (a request for a person: the customer needs a
  human from it), sometimes a routine turn after it, all of one language.

Routine conversations of category ``routine_human`` are left out: the label says the customer asks for a
person but not at which turn, so there is no ground truth for when they need one. A composed script has no
channel (the journey draws one); a replayed conversation keeps its own. The ground truth is always the
corpus label, never the router's verdict.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from router.scoring.corpus import (
    DEFAULT_CORPUS_DIR,
    LANGUAGES,
    Corpus,
    CorpusConversation,
    CorpusTurn,
    Split,
    load_corpus,
)
from router.sim.journeys import day_languages
from router.sim.pool_lines import PoolLines
from router.sim.script import Kind, LineSource, Script, Story
from router.sim.texts import bundled_pools

log = logging.getLogger(__name__)

CorpusSplit = Literal["heldout", "all"]
"""Which corpus splits a simulation draws on: ``heldout`` (dev + test, the default) or ``all``."""
SPLITS: dict[CorpusSplit, tuple[Split, ...]] = {"heldout": ("dev", "test"), "all": ("train", "dev", "test")}
STORM_CATEGORY = "travel_disruption"
HUMAN_CATEGORY = "routine_human"
ROUTINE_CONVERSATION_P = 0.5  # a routine journey replays a conversation, else strings single turns together


class _Labelled(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def lang(self) -> str: ...


_T = TypeVar("_T", bound=_Labelled)


def _by_language(items: Iterable[_T]) -> dict[str, tuple[_T, ...]]:
    """Grouped by language, each group ordered by id: a seed picks the same lines on every machine."""
    groups: defaultdict[str, list[_T]] = defaultdict(list)
    for item in items:
        groups[item.lang].append(item)
    return {lang: tuple(sorted(group, key=lambda x: x.id)) for lang, group in groups.items()}


def _ordered(languages: Iterable[str]) -> tuple[str, ...]:
    seen = set(languages)
    return tuple(lang for lang in LANGUAGES if lang in seen) + tuple(sorted(seen - set(LANGUAGES)))


@dataclass(frozen=True)
class CorpusLines:
    split: CorpusSplit
    moments: Mapping[str, tuple[CorpusConversation, ...]]
    storms: Mapping[str, tuple[CorpusConversation, ...]]
    routine_conversations: Mapping[str, tuple[CorpusConversation, ...]]
    routine_turns: Mapping[str, tuple[CorpusTurn, ...]]
    human_turns: Mapping[str, tuple[CorpusTurn, ...]]

    @classmethod
    def from_corpus(cls, corpus: Corpus, split: CorpusSplit = "heldout") -> CorpusLines:
        keep = SPLITS[split]
        convs = [c for c in corpus.conversations if c.split in keep]
        turns = [t for t in corpus.turns if t.split in keep and not t.mot]
        moments = [c for c in convs if c.mot_turn is not None]
        return cls(
            split=split,
            moments=_by_language(moments),
            storms=_by_language(c for c in moments if c.category == STORM_CATEGORY),
            routine_conversations=_by_language(
                c for c in convs if c.mot_turn is None and c.category != HUMAN_CATEGORY
            ),
            routine_turns=_by_language(t for t in turns if t.category != HUMAN_CATEGORY),
            human_turns=_by_language(t for t in turns if t.category == HUMAN_CATEGORY),
        )

    @property
    def name(self) -> str:
        return "corpus"

    def languages(self, story: Story) -> tuple[str, ...]:
        if story in ("moment", "storm"):
            return _ordered(self.storms if story == "storm" and self.storms else self.moments)
        if story == "routine":
            return _ordered([*self.routine_turns, *self.routine_conversations])
        return _ordered(lang for lang in self.human_turns if lang in self.routine_turns)

    def script(self, story: Story, rng: random.Random, language: str) -> Script:
        if story == "moment":
            return _replay(rng.choice(self.moments[language]))
        if story == "storm":
            return _replay(rng.choice(self.storms.get(language) or self.moments[language]))
        if story == "routine":
            return self._routine(rng, language)
        return self._routine_human(rng, language)

    def describe(self) -> dict[str, Any]:
        def count(groups: Mapping[str, tuple[Any, ...]]) -> int:
            return sum(len(g) for g in groups.values())

        return {
            "source": "corpus",
            "corpus_split": self.split,
            "splits": list(SPLITS[self.split]),
            "pool_sizes": {
                "moment_conversations": count(self.moments),
                "storm_conversations": count(self.storms),
                "routine_conversations": count(self.routine_conversations),
                "routine_turns": count(self.routine_turns),
                "human_turns": count(self.human_turns),
            },
            "languages": list(self.languages("moment")),
        }

    def _routine(self, rng: random.Random, language: str) -> Script:
        convs, turns = self.routine_conversations.get(language, ()), self.routine_turns.get(language, ())
        if convs and (not turns or rng.random() < ROUTINE_CONVERSATION_P):
            conv = rng.choice(convs)
            return Script("routine", tuple(conv.customer_texts), None, language, conv.channel, (conv.id,))
        picked = rng.sample(turns, min(len(turns), rng.randint(2, 3)))
        return Script(
            "routine", tuple(t.text for t in picked), None, language, None, tuple(t.id for t in picked)
        )

    def _routine_human(self, rng: random.Random, language: str) -> Script:
        routine = self.routine_turns[language]
        picked = [rng.choice(routine), rng.choice(self.human_turns[language]), rng.choice(routine)]
        picked = picked[: rng.randint(2, 3)]
        return Script(
            "routine_human", tuple(t.text for t in picked), 1, language, None, tuple(t.id for t in picked)
        )


def _replay(conv: CorpusConversation) -> Script:
    """A moment-of-truth conversation's customer turns, with its label as the ground truth."""
    assert conv.mot_turn is not None
    kind: Kind = "mot" if conv.mot_turn == 1 else "turning"
    return Script(kind, tuple(conv.customer_texts), conv.mot_turn - 1, conv.lang, conv.channel, (conv.id,))


def load_lines(corpus_dir: Path | None = None, split: CorpusSplit = "heldout") -> LineSource:
    """The corpus's lines (``corpus_dir``, default ``models/corpus``; ``split`` as above), or the bundled
    English lines when the folder holds no corpus that can serve a day."""
    lines = CorpusLines.from_corpus(load_corpus(corpus_dir), split)
    if day_languages(lines):
        return lines
    where = corpus_dir or DEFAULT_CORPUS_DIR
    log.warning("no corpus that can serve a day (%s splits) in %s: the bundled English lines", split, where)
    return PoolLines(bundled_pools())
