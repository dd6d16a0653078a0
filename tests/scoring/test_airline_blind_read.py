"""models/airline_blind_read.json (scripts/blind_read.py score-tweets) records readers' scores of a sample
of the airline task beside the set's own label; the model card quotes the readers' AUROC from it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from router.scoring.evaluate import load_airline
from router.scoring.measures import auroc

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "scripts"))
needs_data = pytest.mark.skipif(
    not (DATA / "airline_tweets").exists(), reason="../shared/data is not beside the project"
)


@needs_data
def test_record_holds_the_sets_labels_and_the_published_auroc() -> None:
    record = json.loads((ROOT / "models/airline_blind_read.json").read_text("utf-8"))
    task = load_airline(DATA)
    assert len(record) == 600
    assert all(task.gold[int(i)] == row["mot"] and len(row["read"]) == 2 for i, row in record.items())
    y = np.array([row["mot"] for row in record.values()])
    mean = np.array([np.mean(row["read"]) for row in record.values()])
    assert round(auroc(y, mean), 3) == 0.948  # models/HISTORY.md, Public sets


@needs_data
def test_prepared_chunks_show_no_label(tmp_path: Path) -> None:
    from blind_read import prepare_tweets

    prepare_tweets(40, 2, tmp_path, 7, DATA)
    key = json.loads((tmp_path / "key.json").read_text("utf-8"))
    lines = [
        x for f in ("tweets0.txt", "tweets1.txt") for x in (tmp_path / f).read_text("utf-8").splitlines()
    ]
    shown = [x.split("\t") for x in lines]
    assert all(len(parts) == 2 for parts in shown)  # a key and the text: no label, no sentiment
    assert len(shown) == 40 and {k for k, _ in shown} == set(key)
    task = load_airline(DATA)
    for k, text in shown:
        assert text == task.texts[key[k]["row"]] and key[k]["mot"] == task.gold[key[k]["row"]]


@needs_data
def test_reread_gives_the_readers_and_the_model_the_recorded_tweets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import blind_read

    seen: list[tuple[list[str], np.ndarray]] = []
    monkeypatch.setattr(blind_read, "_model_on_tweets", lambda texts, y: seen.append((texts, y)))
    blind_read.reread_tweets(ROOT / "models/airline_blind_read.json", DATA)
    assert "the readers' mean: AUROC 0.948" in capsys.readouterr().out
    task = load_airline(DATA)
    record = json.loads((ROOT / "models/airline_blind_read.json").read_text("utf-8"))
    rows = sorted(int(i) for i in record)
    [(texts, y)] = seen
    assert texts == [task.texts[i] for i in rows] and list(y) == [bool(task.gold[i]) for i in rows]

    wrong = {**record, str(rows[0]): {**record[str(rows[0])], "mot": not record[str(rows[0])]["mot"]}}
    (tmp_path / "wrong.json").write_text(json.dumps(wrong), "utf-8")
    with pytest.raises(SystemExit, match="not the airline set's"):
        blind_read.reread_tweets(tmp_path / "wrong.json", DATA)
