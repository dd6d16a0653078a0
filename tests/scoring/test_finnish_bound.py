"""scripts/finnish_bound.py trains and chooses on XED's Finnish lines outside the evaluation slice only."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from router.scoring.evaluate import load_languages
from router.scoring.measures import stable_fraction
from router.scoring.overlap import norm_text

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "scripts"))


@pytest.mark.skipif(not (DATA / "xed").exists(), reason="../shared/data is not beside the project")
def test_no_line_of_the_evaluation_slice_trains_or_judges() -> None:
    from finnish_bound import DEV_BELOW, EVAL_BELOW, finnish_rows

    train, dev = finnish_rows(DATA, projections=True)
    evaluated = {norm_text(t) for t in load_languages(DATA)["fi"].texts}
    assert len(evaluated) > 1_500 and len(dev) > 1_000 and len(train) > 10_000
    assert all(EVAL_BELOW <= stable_fraction(t) < DEV_BELOW for t, _ in dev)
    assert not {norm_text(t) for t, _ in dev} & evaluated
    # projected subtitles repeat annotated ones (the audit found 287 evaluation lines among them)
    kept = {norm_text(t) for t, _ in train}
    assert not kept & evaluated and not kept & {norm_text(t) for t, _ in dev}
