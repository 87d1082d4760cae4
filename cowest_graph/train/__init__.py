"""Offline training of the weak model: domain SFT, then collaborative-feedback DPO (TRL + PEFT).

Each run writes a new adapter version under `output_dir` (`v0001/`, `v0002/`, ...): a PEFT
directory (`save_pretrained`) plus `cowest_manifest.json`. Checkpoints go to
`output_dir/.work/<kind>-<data hash>/` every `save_steps`, so `resume=True` continues an
interrupted run; they are removed once the adapter is written.

- `config.py`: `LoraSettings`, `SFTTrainConfig`, `DPOTrainConfig`, `TrainResult`;
- `data.py`: SFT rows and preference pairs as datasets;
- `runs.py`: the NaN/inf guard, checkpoints and resume, the adapter and its manifest;
- `trainers.py`: `train_sft`, `train_dpo`, `preference_margin`.

Multi-GPU: the trainers are plain TRL trainers, so `accelerate launch` works:

    accelerate launch --num_processes 4 -m cowest_graph.cli train pairs/ --adapters adapters/
"""

from __future__ import annotations

from cowest_graph.adapters import AdapterError, latest_adapter
from cowest_graph.train.config import (
    DPOTrainConfig,
    LoraSettings,
    SFTTrainConfig,
    TrainingDivergedError,
    TrainResult,
)
from cowest_graph.train.data import load_pairs, sft_examples
from cowest_graph.train.trainers import preference_margin, train_dpo, train_sft

__all__ = [
    "AdapterError",
    "DPOTrainConfig",
    "LoraSettings",
    "SFTTrainConfig",
    "TrainResult",
    "TrainingDivergedError",
    "latest_adapter",
    "load_pairs",
    "preference_margin",
    "sft_examples",
    "train_dpo",
    "train_sft",
]
