"""Training survives SIGKILL (resume), runs under accelerate, and stops cleanly on NaN loss."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest

from cowest_graph.adapters import MANIFEST
from cowest_graph.models import load_weak_model
from cowest_graph.train import DPOTrainConfig, TrainingDivergedError, train_dpo

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "cowest_graph.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2"}


def pairs_dir(tmp_path: Path, n: int = 8) -> Path:
    rows = [
        {
            "prompt": [{"role": "user", "content": f"Question {i}: what is the rule?"}],
            "chosen": [{"role": "assistant", "content": f"The rule {i} is to file reports on Fridays."}],
            "rejected": [{"role": "assistant", "content": "I do not know."}],
        }
        for i in range(n)
    ]
    path = tmp_path / "pairs"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)}).save_to_disk(str(path))
    return path


def test_train_resumes_after_sigkill_with_the_same_final_step_count(tmp_path: Path) -> None:
    pairs, root = pairs_dir(tmp_path), tmp_path / "adapters"
    args = [
        "train",
        str(pairs),
        "--adapters",
        str(root),
        "--max-steps",
        "6",
        "--save-steps",
        "2",
        "--batch-size",
        "2",
    ]
    proc = subprocess.Popen(CLI + args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not list(root.glob(".work/*/checkpoint-4")):
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not list(root.glob("v*")), "a killed run writes no adapter version"
    # Whether the kill landed mid-save is a race, so cut checkpoint-4 for certain: a save that
    # stopped after the weights, before the optimizer state and `trainer_state.json`.
    # checkpoint-2 is complete: saves run one after another, and checkpoint-4 exists.
    [cut] = root.glob(".work/*/checkpoint-4")
    for name in ("trainer_state.json", "optimizer.pt", "scheduler.pt"):
        (cut / name).unlink(missing_ok=True)

    done = subprocess.run(CLI + args + ["--resume"], env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((root / "v0001" / MANIFEST).read_text())
    assert manifest["metrics"]["steps"] == 6
    assert manifest["metrics"]["resumed_from_step"] == 2, "the cut checkpoint-4 was discarded"
    # The loss of the whole run, the two steps before the kill included (not Trainer's own,
    # which spreads only the resumed steps' loss over all six).
    logged = [row["loss"] for row in manifest["metrics"]["log"]]
    assert len(logged) == 6
    assert manifest["metrics"]["train_loss"] == pytest.approx(sum(logged) / 6)


def test_accelerate_launch_one_cpu_process(tmp_path: Path) -> None:
    pairs, root = pairs_dir(tmp_path, 4), tmp_path / "adapters"
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--cpu",
        "--num_processes",
        "1",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "cowest_graph.cli",
        "train",
        str(pairs),
        "--adapters",
        str(root),
        "--max-steps",
        "1",
        "--batch-size",
        "2",
    ]
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((root / "v0001" / MANIFEST).read_text())["metrics"]["steps"] == 1


def test_nan_loss_stops_training_and_keeps_the_last_good_adapter(tmp_path: Path) -> None:
    from peft import PeftModel
    from poisoned import save_nan_adapter

    pairs, root = pairs_dir(tmp_path, 4), tmp_path / "adapters"
    config = DPOTrainConfig(max_steps=1, per_device_train_batch_size=2, disable_tqdm=True)
    good = train_dpo(pairs, output_dir=root, config=config)

    # A poisoned starting adapter: its LoRA weights are NaN, so the first loss is NaN.
    model = PeftModel.from_pretrained(
        load_weak_model(backend="hf").hf_model, str(good.adapter_dir), is_trainable=True
    )
    poisoned = save_nan_adapter(model, tmp_path / "poisoned")
    before = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
    with pytest.raises(
        TrainingDivergedError, match=r"training diverged at step 1 \(.*=nan.* is not finite\)"
    ):
        train_dpo(
            pairs, output_dir=root, adapter=poisoned, config=DPOTrainConfig(max_steps=2, disable_tqdm=True)
        )
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == before == ["v0001"]
    assert load_weak_model(adapter=root / "v0001").adapter_version == "v0001"


@pytest.mark.parametrize("metric", ["loss", "grad_norm", "eval_loss", "logps/chosen", "logps/rejected"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_the_guard_names_each_metric_that_is_not_finite(metric: str, value: float) -> None:
    from types import SimpleNamespace

    from cowest_graph.train.runs import FiniteLossGuard

    guard, state = FiniteLossGuard(), SimpleNamespace(global_step=7)
    guard.on_log(None, state, None, logs={"loss": 0.7, "grad_norm": 3.0, "learning_rate": 1e-4})  # fine
    logs = {"loss": 0.7, "grad_norm": 3.0, metric: value}
    with pytest.raises(TrainingDivergedError, match=rf"at step 7 \({metric}={value} is not finite\)"):
        guard.on_log(None, state, None, logs=logs)
