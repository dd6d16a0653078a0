import json

from router.domain.model import Trajectory
from router.domain.trajectory import add_turn
from router.store.codec import traj_from_json, traj_to_json


def test_a_trajectory_survives_the_store_with_its_latest_turns_length() -> None:
    traj = add_turn(add_turn(Trajectory(), 0.2, 0.1, words=3), 0.7, 0.9, words=18)
    assert traj_from_json(traj_to_json(traj)) == traj
    assert traj_from_json(traj_to_json(traj)).last_words == 18


def test_a_trajectory_stored_by_an_older_version_reads_with_what_it_lacks_at_zero() -> None:
    """Contacts stored before per-turn probabilities, or before the latest turn's length, still load."""
    oldest = json.dumps({"i": [0.2, 0.4], "peak": 0.4, "pt": 2, "n": 2})
    assert traj_from_json(oldest) == Trajectory((0.2, 0.4), 0.4, 2, 2)
    before_words = json.dumps({"i": [0.2], "peak": 0.2, "pt": 1, "n": 1, "m": [0.6], "mp": 0.6, "mpt": 1})
    read = traj_from_json(before_words)
    assert read.mot_probs == (0.6,) and read.last_words == 0
