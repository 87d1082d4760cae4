"""One training run's machinery: the NaN/inf guard, checkpoints and resume, and writing the
versioned adapter with its manifest."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import datasets
from transformers import TrainerCallback

from cowest_graph.adapters import (
    next_version,
    read_manifest,
    write_manifest,
)
from cowest_graph.models import HFWeakModel, base_model_fingerprint
from cowest_graph.train.config import TrainingDivergedError, TrainResult

WATCHED = ("loss", "grad_norm", "eval_loss", "logps/chosen", "logps/rejected")
"""The logged metrics that must stay finite."""


class FiniteLossGuard(TrainerCallback):
    """Stops training with `TrainingDivergedError`, naming each metric that became NaN or inf.

    The loss alone is not enough: with NaN weights TRL's DPO loss is logged as 0 while the
    gradient norm and the log-probabilities are NaN, so all of `WATCHED` are checked.

    Example:
        >>> FiniteLossGuard().on_log(None, None, None, logs={"loss": 0.69, "grad_norm": 1.2})
    """

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        bad = {k: v for k, v in (logs or {}).items() if k in WATCHED and not _finite(v)}
        if bad:
            what = ", ".join(f"{k}={v}" for k, v in bad.items())
            step = getattr(state, "global_step", "?")
            raise TrainingDivergedError(
                f"training diverged at step {step} ({what} is not finite); no adapter "
                "was written and the previous adapters are untouched"
            )


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


def _config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:8]


def _work_dir(root: Path, kind: str, data_hash: str, config: dict[str, Any], resume: bool) -> Path:
    work = root / ".work" / f"{kind}-{data_hash[:12]}-{_config_hash(config)}"
    if not resume and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    return work


_CHECKPOINT_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt")


def _last_checkpoint(work: Path) -> str | None:
    """The newest COMPLETE checkpoint; a kill during a save leaves a partial one, which is removed.

    Transformers writes `trainer_state.json` and the optimizer/scheduler states after the weights,
    so a checkpoint missing any of them was interrupted mid-save.
    """
    if not work.exists():
        return None
    checkpoints = sorted(
        (p for p in work.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
    )
    for path in reversed(checkpoints):
        if all((path / name).exists() for name in _CHECKPOINT_FILES):
            return str(path)
        shutil.rmtree(path, ignore_errors=True)
    return None


def _run(trainer: Any, work: Path, resume: bool) -> dict[str, Any]:
    """Train (from the last checkpoint when resuming) and return the logged metrics."""
    checkpoint = _last_checkpoint(work) if resume else None
    trainer.train(resume_from_checkpoint=checkpoint)
    metrics = _log_metrics(trainer)
    metrics["resumed_from_step"] = int(Path(checkpoint).name.split("-")[-1]) if checkpoint else None
    return metrics


def _log_metrics(trainer: Any) -> dict[str, Any]:
    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    final = {k: v for h in history for k, v in h.items() if k.startswith(("train_", "rewards/", "eval_"))}
    if losses and "train_loss" in final:
        # Trainer's own divides this process's summed loss by the global step, so a resumed run
        # under-reports it (0.0 when resumed from the last checkpoint): the mean of the logged
        # losses covers the whole run. `train_runtime` stays this process's.
        final["train_loss"] = sum(losses) / len(losses)
    return {
        "steps": trainer.state.global_step,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        **final,
        "log": [
            {
                "step": h.get("step"),
                **{k: h[k] for k in ("loss", "rewards/margins", "rewards/accuracies") if k in h},
            }
            for h in history
            if "loss" in h
        ],
    }


def _finish(
    trainer: Any,
    *,
    root: Path,
    work: Path,
    kind: str,
    weak: HFWeakModel,
    parent: Path | None,
    data_hash: str,
    train: datasets.Dataset,
    evals: datasets.Dataset | None,
    config: dict[str, Any],
    metrics: dict[str, Any],
) -> TrainResult:
    import peft
    import torch
    import transformers
    import trl

    version = next_version(root)
    manifest = {
        "version": version,
        "kind": kind,
        "base_model_id": weak.model_id,
        "base_model_fingerprint": base_model_fingerprint(weak.base_path or ""),
        "parent_adapter": None
        if parent is None
        else {"path": str(parent), "version": (read_manifest(parent) or {}).get("version", parent.name)},
        "data_hash": data_hash,
        "counts": {"train": train.num_rows, "eval": 0 if evals is None else evals.num_rows},
        "config": config,
        "metrics": metrics,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": {
            "trl": trl.__version__,
            "peft": peft.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        },
    }
    target = root / version
    if trainer.accelerator.is_main_process:
        tmp = root / f".{version}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        trainer.model.save_pretrained(str(tmp), selected_adapters=["default"])
        manifest["llama_cpp_adapter"] = _write_gguf_adapter(tmp, weak)
        write_manifest(tmp, manifest)
        tmp.rename(target)  # a version directory appears whole or not at all
        shutil.rmtree(work, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return TrainResult(adapter_dir=target, version=version, manifest=manifest)


def _write_gguf_adapter(adapter_dir: Path, weak: HFWeakModel) -> str | None:
    """The adapter's llama.cpp form beside it (for the llama.cpp weak backend); None when the
    base model has no GGUF file to match (a custom base directory without one)."""
    from cowest_graph.models.files import DEFAULT_MODEL_ID
    from cowest_graph.models.gguf_convert import lora_to_gguf

    if weak.model_id == DEFAULT_MODEL_ID:
        base_gguf = None  # the embedded GGUF
    else:
        found = sorted(Path(weak.base_path or ".").glob("*.gguf"))
        if len(found) != 1:
            return None
        base_gguf = found[0]
    return lora_to_gguf(adapter_dir, base_gguf=base_gguf).name


def _prepare_root(output_dir: str | Path) -> Path:
    root = Path(output_dir)
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"output_dir {root} exists and is not a directory")
    return root


# -- public entry points -------------------------------------------------------------------
