"""models/detector.json as the policy reads it: what a file lists, and what it may lack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router.domain.mot import FEATURES, MotModel
from router.scoring.detector import detector_path, load_mot_model, save_mot_model

OLD_FEATURES = FEATURES[:10]  # the detector's features before the latest turn's length was one


def test_a_detector_round_trips_through_its_file(tmp_path: Path) -> None:
    model = MotModel({f: 0.5 + k for k, f in enumerate(FEATURES)}, -2.0, 0.93, {f: 0.1 for f in FEATURES})
    save_mot_model(model, {"trained_on": "a test"}, tmp_path)
    assert load_mot_model(tmp_path) == model


def test_a_file_written_before_a_feature_existed_weighs_it_at_nothing(tmp_path: Path) -> None:
    model = MotModel({f: 1.0 for f in OLD_FEATURES}, -2.0, 0.9, {f: 0.1 for f in OLD_FEATURES})
    save_mot_model(model, {}, tmp_path)
    assert json.loads(detector_path(tmp_path).read_text())["features"] == list(OLD_FEATURES)
    loaded = load_mot_model(tmp_path)
    assert loaded is not None and set(loaded.weights) == set(OLD_FEATURES)
    x = {f: 1.0 for f in FEATURES}
    assert loaded.logit(x) == pytest.approx(-2.0 + len(OLD_FEATURES))


def test_a_feature_the_policy_does_not_know_is_a_clear_error(tmp_path: Path) -> None:
    body = {"features": ["mot_last", "moon_phase"], "weights": [1.0, 1.0], "bias": 0.0, "threshold": 0.5}
    detector_path(tmp_path).write_text(json.dumps({**body, "means": [0.0, 0.0]}))
    with pytest.raises(ValueError, match="moon_phase"):
        load_mot_model(tmp_path)
