#!/usr/bin/env python
"""Fit the lexical partner of the multilingual intensity head (router/scoring/lexical.py).

    .venv/bin/python scripts/train_lexical.py [--data ../shared/data] [--out models/lexical_ml.safetensors]

Training rows, two kinds:
- the multilingual head's own (scripts/multilingual_data.py: XED projections and Finnish annotations,
  BRIGHTER, RED), less every line an evaluation set scores (as train_heads.py drops them) and every line of
  a dev file below, each compared after normalisation;
- the corpus's non-English **train** turns read for negative emotion (``corpus_negativity``): negative =
  `mild_annoyance` and moment-of-truth turns not written calm (no `no_negative_words`, no `sarcasm`
  style); not negative = `thanks`, `joke`, `routine_request`, `polite_change`. Without them the lexical
  reading learned subtitles and tweets, and on customer messages it read worse than the head alone.

The choices (how much a corpus row weighs, the regularisation C, and each language's ``mix``, the lexical
reading's share of its combined logit) are made on dev files no weight trains on: the public sources'
(XED's Finnish dev slice, stable hash 0.2-0.3, and BRIGHTER's non-English track B dev files) and the
corpus's (its dev split read the same way, one file per language). Word features learn the words of the
text they are fitted on, so a language's mix is chosen on that language's own files, the mean of its
public file's AUROC and its corpus file's (neither kind of text outvotes the other), and only a language
that has both kinds gets one (Finnish, German, Spanish, Portuguese, Romanian): every other language reads
the embedding head alone. The corpus weight and C are those whose per-language choices score best on
average. The shipped embedding head reads the dev files on the default backend. No evaluation slice and
no corpus test turn is read. Prints every figure; writes the model with its choices and dev figures.
2 cores: about 6 minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from scipy import sparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from finnish_bound import finnish_rows  # noqa: E402
from multilingual_data import load_brighter_dev, load_multilingual  # noqa: E402

from router.scoring.corpus import Corpus, CorpusTurn, Split, load_corpus  # noqa: E402
from router.scoring.evaluate import evaluation_index  # noqa: E402
from router.scoring.lexical import LexicalModel, bucket_counts, save_lexical  # noqa: E402
from router.scoring.measures import auroc  # noqa: E402
from router.scoring.overlap import norm_text  # noqa: E402

NGRAMS = (2, 5)
BUCKETS = 1 << 19
C_GRID = (3.0, 10.0)
CORPUS_WEIGHT_GRID = (0.0, 3.0, 10.0, 30.0)
MIX_GRID = tuple(round(0.1 * i, 1) for i in range(11))
NOT_NEGATIVE = frozenset({"thanks", "joke", "routine_request", "polite_change"})
CALM_STYLES = frozenset({"no_negative_words", "sarcasm"})
CORPUS_PREFIX = "corpus_dev_"
# the public dev files' languages (ISO 639-1, as the scorer is given them)
PUBLIC_LANGUAGE = {
    "xed_fi_dev_slice": "fi",
    "brighter_deu": "de",
    "brighter_esp": "es",
    "brighter_ptbr": "pt",
    "brighter_ron": "ro",
    "brighter_rus": "ru",
    "brighter_ukr": "uk",
}

Files = dict[str, tuple[list[str], np.ndarray]]


def corpus_negativity(corpus: Corpus, split: Split) -> list[tuple[str, bool, str]]:
    """(text, negative, language) for the non-English single turns of ``split`` that say their emotion
    plainly one way or the other (module docstring); the rest are left out."""

    def label(t: CorpusTurn) -> bool | None:
        if t.category in NOT_NEGATIVE:
            return False
        if t.category == "mild_annoyance" or (t.mot and not CALM_STYLES & set(t.styles)):
            return True
        return None

    return [
        (t.text, y, t.lang)
        for t in corpus.split(split).turns
        if t.lang != "en" and (y := label(t)) is not None
    ]


def dev_files(data: Path, corpus: Corpus) -> Files:
    """The files the choices are made on, by name."""
    _, fi_dev = finnish_rows(data, projections=False)
    files: Files = {"xed_fi_dev_slice": ([t for t, _ in fi_dev], np.array([y for _, y in fi_dev]))}
    groups: dict[str, list[tuple[str, bool]]] = {}
    for text, neg, source in load_brighter_dev(data):
        groups.setdefault(source, []).append((text, neg))
    for text, neg, lang in corpus_negativity(corpus, "dev"):
        groups.setdefault(CORPUS_PREFIX + lang, []).append((text, neg))
    for name, pairs in sorted(groups.items()):
        files[name] = ([t for t, _ in pairs], np.array([float(n) for _, n in pairs]))
    return files


def training_rows(data: Path, corpus: Corpus, dev: Files) -> tuple[list[tuple[str, bool, str]], int]:
    """(rows, how many of them, at the end, are corpus train turns): no evaluation or dev line among them."""
    dev_norm = {norm_text(t) for texts, _ in dev.values() for t in texts}
    held_out = evaluation_index(data, ROOT / "models/corpus")
    public = held_out.drop(load_multilingual(data), lambda r: r[0])
    own = held_out.drop(corpus_negativity(corpus, "train"), lambda r: r[0])
    public = [r for r in public if norm_text(r[0]) not in dev_norm]
    own = [(t, y, f"corpus_{lang}") for t, y, lang in own if norm_text(t) not in dev_norm]
    return [*public, *own], len(own)


def counts_matrix(texts: Iterable[str], buckets: int) -> sparse.csr_matrix:
    indptr, indices, data = [0], [], []
    for text in texts:
        counts = bucket_counts(text, NGRAMS[0], NGRAMS[1], buckets)
        indices.extend(counts)
        data.extend(counts.values())
        indptr.append(len(indices))
    return sparse.csr_matrix(
        (np.array(data, np.float32), np.array(indices, np.int64), np.array(indptr, np.int64)),
        shape=(len(indptr) - 1, buckets),
    )


def tfidf(counts: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    """scikit-learn's sublinear tf-idf with L2 rows: what LexicalModel.rows computes one text at a time."""
    x = counts.copy()
    x.data = (np.log(x.data) + 1.0) * idf[x.indices]
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(sparse.diags(1.0 / norms) @ x, dtype=np.float32)


def head_probabilities(texts: list[str]) -> np.ndarray:
    from router.scoring.transformer import TransformerScorer

    scorer = TransformerScorer()
    return np.asarray(scorer.heads["intensity_ml"](scorer.encoder.embed(texts))[:, 0], np.float64)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.clip(np.log(p / (1 - p)), -12, 12)


def file_language(name: str) -> str:
    return name.removeprefix(CORPUS_PREFIX) if name.startswith(CORPUS_PREFIX) else PUBLIC_LANGUAGE[name]


def language_scores(per_file: dict[str, float]) -> dict[str, float]:
    """Per language with a public and a corpus dev file: the mean of the two files' AUROC."""
    public = {PUBLIC_LANGUAGE[k]: v for k, v in per_file.items() if not k.startswith(CORPUS_PREFIX)}
    own = {k.removeprefix(CORPUS_PREFIX): v for k, v in per_file.items() if k.startswith(CORPUS_PREFIX)}
    return {lang: (public[lang] + own[lang]) / 2 for lang in sorted(public.keys() & own.keys())}


def choose_mixes(by_mix: dict[float, dict[str, float]]) -> tuple[dict[str, float], float]:
    """Each language's best mix (on ``language_scores``; the smaller on a tie) and the mean of those
    languages' scores at their mixes."""
    mixes: dict[str, float] = {}
    best: dict[str, float] = {}
    for mix in sorted(by_mix):
        for lang, score in language_scores(by_mix[mix]).items():
            if score > best.get(lang, -1.0):
                mixes[lang], best[lang] = mix, score
    return mixes, float(np.mean(list(best.values())))


def main(argv: list[str] | None = None) -> int:
    from sklearn.linear_model import LogisticRegression

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    ap.add_argument("--corpus", type=Path, default=ROOT / "models/corpus")
    ap.add_argument("--out", type=Path, default=ROOT / "models/lexical_ml.safetensors")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    corpus = load_corpus(args.corpus)
    dev = dev_files(args.data, corpus)
    rows, n_own = training_rows(args.data, corpus, dev)
    sources = dict(sorted(Counter(s for _, _, s in rows).items()))
    print(f"{len(rows)} training rows ({n_own} corpus turns): {sources}", flush=True)

    counts = counts_matrix((t for t, _, _ in rows), BUCKETS)
    y = np.array([float(neg) for _, neg, _ in rows])
    df = np.bincount(counts.indices, minlength=BUCKETS)
    idf = (np.log((1.0 + len(rows)) / (1.0 + df)) + 1.0).astype(np.float32)
    x = tfidf(counts, idf)
    dev_x = {name: tfidf(counts_matrix(texts, BUCKETS), idf) for name, (texts, _) in dev.items()}
    head = {name: logit(head_probabilities(texts)) for name, (texts, _) in dev.items()}
    print(f"hashed and embedded in {time.perf_counter() - t0:.0f} s", flush=True)

    results: dict[tuple[float, float], dict[float, dict[str, float]]] = {}
    fits = {}
    for weight in CORPUS_WEIGHT_GRID:
        sample_weight = np.ones(len(rows))
        sample_weight[len(rows) - n_own :] = weight
        keep = sample_weight > 0
        for c in C_GRID:
            fit = LogisticRegression(C=c, max_iter=3000).fit(
                x[keep], y[keep], sample_weight=sample_weight[keep]
            )
            fits[weight, c] = fit
            lex = {name: np.clip(fit.decision_function(dx), -12, 12) for name, dx in dev_x.items()}
            by_mix = results.setdefault((weight, c), {})
            for mix in MIX_GRID:
                by_mix[mix] = {
                    name: auroc(list(gold), list((1 - mix) * head[name] + mix * lex[name]))
                    for name, (_, gold) in dev.items()
                }
                print(
                    f"corpus weight {weight:4} C {c:4} mix {mix:.1f}: "
                    + " ".join(f"{k}={v:.3f}" for k, v in language_scores(by_mix[mix]).items())
                    + " | "
                    + " ".join(f"{k.removeprefix(CORPUS_PREFIX)} {v:.3f}" for k, v in by_mix[mix].items()),
                    flush=True,
                )
            mixes, score = choose_mixes(by_mix)
            print(f"corpus weight {weight:4} C {c:4}: mixes {mixes}, dev score {score:.4f}", flush=True)
    weight, c = max(results, key=lambda key: choose_mixes(results[key])[1])
    by_mix = results[weight, c]
    mixes, score = choose_mixes(by_mix)
    fit = fits[weight, c]

    def chosen(name: str) -> float:
        return round(by_mix[mixes.get(file_language(name), 0.0)][name], 4)

    def figures(mix: float) -> dict[str, float]:
        return {k: round(v, 4) for k, v in by_mix[mix].items()}

    model = LexicalModel(
        idf=idf,
        coef=fit.coef_[0].astype(np.float32),
        bias=float(fit.intercept_[0]),
        ngram_min=NGRAMS[0],
        ngram_max=NGRAMS[1],
        mixes={lang: m for lang, m in mixes.items() if m > 0},
        meta={
            "trained_on": {"rows": int(len(rows) if weight > 0 else len(rows) - n_own), "by_source": sources},
            "corpus_weight": weight,
            "C": c,
            "chosen_on": {name: len(gold) for name, (_, gold) in dev.items()},
            "dev_language_score": round(score, 4),
            "dev_language_score_head_alone": round(
                float(np.mean(list(language_scores(by_mix[0.0]).values()))), 4
            ),
            "dev_auroc": {name: chosen(name) for name in dev},
            "dev_auroc_head_alone": figures(0.0),
            "dev_auroc_lexical_alone": figures(1.0),
            "script": "scripts/train_lexical.py",
        },
    )
    save_lexical(args.out, model)
    print(json.dumps({"mixes": model.mixes, **model.meta}, indent=2))
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
