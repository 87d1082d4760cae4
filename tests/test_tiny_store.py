"""The first thing a user tries: `run` -> `pairs` -> `train` on a handful of questions.

A store of 1, 2 or 8 questions often gives no eval pairs (or no pairs at all). Each step either
works or ends in one clear line, never a traceback: an empty eval split used to be saved with 0
shards, which `datasets` cannot load back (`IndexError` in `train`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import run_cli

pytestmark = pytest.mark.slow

QUESTIONS = [
    ("What is the capital of France?", "Paris"),
    ("Which planet is known as the Red Planet?", "Mars"),
    ("What gas do plants absorb from the air?", "carbon dioxide"),
    ("How many legs does a spider have?", "eight"),
    ("What is the largest ocean on Earth?", "Pacific"),
    ("Who wrote Romeo and Juliet?", "Shakespeare"),
    ("What colour is a ripe banana?", "yellow"),
    ("What is frozen water called?", "ice"),
]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[int, str]:
    """Stores holding the traces of 1, 2 and 8 questions (4 sampled drafts each, 135M models)."""
    root = tmp_path_factory.mktemp("tiny")
    urls = {}
    for n in (1, 2, 8):
        data = root / f"q{n}.jsonl"
        data.write_text("".join(json.dumps({"question": q, "reference": r}) + "\n" for q, r in QUESTIONS[:n]))
        urls[n] = f"sqlite:///{root / f'q{n}.db'}"
        out = run_cli(
            "run", str(data), "--store", urls[n], "--strong", "smollm2", "--scorer", "f1",
            "--drafts", "4", "--max-new-tokens", "8", "--temperature", "1.3",
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        assert f"{n} questions: {n} recorded" in " ".join(out.stdout.split()), out.stdout
    return urls


@pytest.mark.parametrize("n", [1, 2, 8])
@pytest.mark.parametrize("eval_fraction", [0.0, 0.1])
def test_run_pairs_train_round_trip(
    stores: dict[int, str], n: int, eval_fraction: float, tmp_path: Path
) -> None:
    pairs_dir = tmp_path / "pairs"
    out = run_cli(
        "pairs", str(pairs_dir), "--store", stores[n], "--min-margin", "0.01",
        "--eval-fraction", str(eval_fraction),
    )  # fmt: skip
    if out.returncode != 0:  # too few distinct drafts for a pair: one clear line, exit 2
        assert n < 8, f"8 questions x 4 sampled drafts gave no pair: {out.stderr[-2000:]}"
        assert out.returncode == 2, out.stderr[-3000:]
        assert out.stderr.startswith("error: no preference pairs"), out.stderr
        assert "Traceback" not in out.stderr
        return
    adapters = tmp_path / "adapters"
    trained = run_cli(
        "train", str(pairs_dir), "--adapters", str(adapters), "--max-steps", "1", "--batch-size", "2"
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert (adapters / "v0001" / "adapter_config.json").is_file()
    manifest = json.loads((adapters / "v0001" / "cowest_manifest.json").read_text())
    assert manifest["kind"] == "dpo" and manifest["counts"]["train"] >= 1


def test_a_saved_empty_eval_split_loads_back(tmp_path: Path) -> None:
    """What the round trip relies on, with no model: empty splits are not saved, and pairs saved
    by an older version with an empty split still load."""
    import datasets

    from cowest_graph.feedback import PreferencePairs
    from cowest_graph.train import load_pairs

    row = {
        "prompt": [{"role": "user", "content": "q"}],
        "chosen": [{"role": "assistant", "content": "good"}],
        "rejected": [{"role": "assistant", "content": "bad"}],
    }
    train = datasets.Dataset.from_list([row, row, row])
    pairs = PreferencePairs({"train": train, "eval": train.select([])})
    pairs.save_to_disk(str(tmp_path / "new"))
    loaded_train, loaded_eval = load_pairs(tmp_path / "new")
    assert loaded_train.num_rows == 3 and loaded_eval is None
    # As older versions saved it: the empty split on disk, which `datasets` cannot read back.
    datasets.DatasetDict({"train": train, "eval": train.select([])}).save_to_disk(str(tmp_path / "old"))
    with pytest.raises(IndexError):
        datasets.load_from_disk(str(tmp_path / "old"))
    loaded_train, loaded_eval = load_pairs(tmp_path / "old")
    assert loaded_train.num_rows == 3 and loaded_eval is None
