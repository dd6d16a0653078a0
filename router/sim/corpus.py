"""The bundled fallback corpus of customer and agent lines."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Corpus:
    routine: tuple[str, ...]
    mot: tuple[str, ...]
    turning: tuple[str, ...]
    human: tuple[str, ...]
    agent: tuple[str, ...]


def bundled() -> Corpus:
    raw = json.loads(resources.files("router.sim").joinpath("corpus/journeys.json").read_text("utf-8"))
    return Corpus(*(tuple(raw[k]) for k in ("routine", "mot", "turning", "human", "agent")))
