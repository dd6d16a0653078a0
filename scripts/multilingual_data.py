"""Training data for the multilingual negative-emotion head (sets whose licences allow shipped weights, and
the project's own corpus: ``corpus_negativity``).

- XED projections (CC BY 4.0) for it, ro, fi, el, de, es, fr, pt, pl, nl: negative = anger/disgust/fear/
  sadness, positive = joy/trust; lines with both or neither are skipped;
- XED FI human-annotated, the 80% of lines outside the evaluation's stable-hash 20% slice;
- BRIGHTER (CC BY 4.0) track B train deu/esp/ptbr/rus/ukr (+ track A train ron): negative = any of anger/
  fear/sadness/disgust > 0, else not negative;
- RED v1 train (MIT, Romanian): Tristete/Frica/Furie vs Bucurie/Neutru;
- with ``more_romanian`` (the default), also RED v1 val and RED v2's valid and test files (MIT, the same
  tweets' source re-annotated by three people: sadness/fear/anger agreed vs neutral/trust/joy agreed,
  lines with both or neither skipped). Nothing evaluates on them: `router evaluate` reads RED v1 test, and
  every RED v2 row near one of its tweets is dropped (``_red_more``).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from router.scoring.corpus import Corpus, CorpusTurn, Split
from router.scoring.measures import stable_fraction
from router.scoring.overlap import NearIndex

# every corpus language but English (the English heads have their own sets); e5 shares one space across
# languages, so each language's data also teaches the others
XED_LANGS = ("it", "ro", "fi", "el", "de", "es", "fr", "pt", "pl", "nl")


def _xed_label(field: str) -> bool | None:
    labs = {int(x) for x in re.findall(r"\d+", field)}
    neg, pos = bool(labs & {1, 3, 4, 6}), bool(labs & {5, 8})
    return None if neg == pos else neg


def load_multilingual(data: Path, more_romanian: bool = True) -> list[tuple[str, bool, str]]:
    """(text, negative, source) rows of every multilingual training set present under ``data``.
    ``more_romanian=False`` leaves out the RED files added after the encoder's tuning (scripts/finetune_e5.py
    keeps the rows it was tuned with)."""
    return [*_xed(data), *_brighter(data), *_red(data), *(_red_more(data) if more_romanian else [])]


def _xed(data: Path) -> list[tuple[str, bool, str]]:
    """XED projections, and the Finnish annotations outside the evaluation slice."""
    rows: list[tuple[str, bool, str]] = []
    for lang in XED_LANGS:
        p = data / f"xed/Projections/{lang}-projections.tsv"
        if not p.exists():
            continue
        for line in p.read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) == 2 and (y := _xed_label(parts[1])) is not None:
                rows.append((parts[0], y, f"xed_{lang}"))
    fi = data / "xed/AnnotatedData/fi-annotated.tsv"
    if fi.exists():
        for line in fi.read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if (
                len(parts) == 2
                and (y := _xed_label(parts[1])) is not None
                and stable_fraction(parts[0]) >= 0.2
            ):
                rows.append((parts[0], y, "xed_fi_annotated"))
    return rows


BRIGHTER_LANGS = ("deu", "esp", "ptbr", "rus", "ukr")


def _brighter(data: Path) -> list[tuple[str, bool, str]]:
    # Romanian has no track B training file; track A's has the same emotion columns
    rels = (*(f"track_b/train/{lang}.csv" for lang in BRIGHTER_LANGS), "track_a/train/ron.csv")
    return _brighter_rows(data, rels)


def load_brighter_dev(data: Path) -> list[tuple[str, bool, str]]:
    """BRIGHTER's non-English track B dev files (negative: any of anger, fear, sadness, disgust): the
    multilingual head never trains on them, so they judge its recipe on text unlike its training sets."""
    return _brighter_rows(data, tuple(f"track_b/dev/{lang}.csv" for lang in (*BRIGHTER_LANGS, "ron")))


def _brighter_rows(data: Path, rels: tuple[str, ...]) -> list[tuple[str, bool, str]]:
    rows: list[tuple[str, bool, str]] = []
    for rel in rels:
        p = data / "brighter_semeval2025_task11" / rel
        if not p.exists():
            continue
        with p.open(encoding="utf-8") as f:
            for r in csv.DictReader(f):
                neg = any(float(r.get(k) or 0) > 0 for k in ("anger", "fear", "sadness", "disgust"))
                rows.append((r["text"], neg, f"brighter_{Path(rel).stem}"))
    return rows


def _red(data: Path) -> list[tuple[str, bool, str]]:
    return _red_v1(data / "red_romanian/REDv1/train.csv", "red_v1")


def _red_v1(path: Path, source: str) -> list[tuple[str, bool, str]]:
    """A RED v1 file: Tristete/Frica/Furie (negative) vs Bucurie/Neutru."""
    rows: list[tuple[str, bool, str]] = []
    if path.exists():
        with path.open(encoding="utf-8") as f:
            for r in csv.DictReader(f):
                emo = r.get("Emotion", "")
                if emo in ("Tristete", "Frica", "Furie", "Bucurie", "Neutru"):
                    rows.append((r["Tweet"], emo in ("Tristete", "Frica", "Furie"), source))
    return rows


# RED v2's seven columns: Tristete, Surpriza, Frica, Furie, Neutru, Incredere, Bucurie
RED2_NEGATIVE, RED2_POSITIVE = (0, 2, 3), (4, 5, 6)


def _red_more(data: Path) -> list[tuple[str, bool, str]]:
    """RED v1 val and RED v2 valid + test, less the tweets RED v1 train already gives (RED v2 re-annotates
    RED v1's tweets, so the same text appears in both) and less every tweet near one of RED v1 test, the
    Romanian evaluation set: RED v2 anonymised names, so its copy of a test tweet is not the same text and
    the exact overlap check would keep it (73 of 1,596 rows sit at word-set Jaccard >= 0.8 to a test tweet,
    few between 0.3 and 0.8)."""
    seen = {t for t, _, _ in _red(data)}
    rows = _red_v1(data / "red_romanian/REDv1/val.csv", "red_more")
    for name in ("valid.json", "test.json"):
        p = data / "red_romanian/REDv2" / name
        if not p.exists():
            continue
        for r in json.loads(p.read_text(encoding="utf-8")):
            agreed = r["agreed_labels"]
            neg = any(agreed[i] for i in RED2_NEGATIVE)
            if neg != any(agreed[i] for i in RED2_POSITIVE):
                rows.append((r["text"], neg, "red_more"))
    test = data / "red_romanian/REDv1/test.csv"
    if test.exists():
        with test.open(encoding="utf-8") as f:
            rows = NearIndex(r["Tweet"] for r in csv.DictReader(f)).drop(rows, lambda r: r[0])
    out: list[tuple[str, bool, str]] = []
    for row in rows:
        if row[0] not in seen:
            seen.add(row[0])
            out.append(row)
    return out


# The corpus's single turns read for negative emotion: the routine categories said without complaint are
# not negative; annoyance and the moments of truth written with negative words are.
NOT_NEGATIVE_CATEGORIES = frozenset({"thanks", "joke", "routine_request", "polite_change"})
CALM_STYLES = frozenset({"no_negative_words", "sarcasm"})


def corpus_negativity(corpus: Corpus, split: Split) -> list[tuple[str, bool, str]]:
    """(text, negative, language) for the non-English single turns of ``split`` whose emotion is plain one
    way or the other: negative = `mild_annoyance`, and moment-of-truth turns not written calm (no
    `no_negative_words` or `sarcasm` style); not negative = `thanks`, `joke`, `routine_request`,
    `polite_change`. The other turns (calm questions, billing, short delays, calm moments of truth) are left
    out: their label says what is at stake, not how the customer feels."""

    def label(t: CorpusTurn) -> bool | None:
        if t.category in NOT_NEGATIVE_CATEGORIES:
            return False
        if t.category == "mild_annoyance" or (t.mot and not CALM_STYLES & set(t.styles)):
            return True
        return None

    turns = [t for t in corpus.split(split).turns if t.lang != "en"]
    return [(t.text, y, t.lang) for t in turns if (y := label(t)) is not None]
