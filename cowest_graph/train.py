"""Offline training of the weak model: domain SFT, then collaborative-feedback DPO (TRL + PEFT).

Each run writes a new adapter version under `output_dir` (`v0001/`, `v0002/`, ...): a PEFT
directory (`save_pretrained`) plus `cowest_manifest.json`. Checkpoints go to
`output_dir/.work/<kind>-<data hash>/` every `save_steps`, so `resume=True` continues an
interrupted run; they are removed once the adapter is written.

Multi-GPU: the trainers are plain TRL trainers, so `accelerate launch` works:

    accelerate launch --num_processes 4 -m cowest_graph.cli train pairs/ --adapters adapters/
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import datasets

from cowest_graph.adapters import (
    AdapterError,
    latest_adapter,
    next_version,
    read_manifest,
    validate_adapter_dir,
    write_manifest,
)
from cowest_graph.feedback import PAIR_COLUMNS, dataset_hash
from cowest_graph.models import WeakModel, base_model_fingerprint, load_weak_model, to_chat
from cowest_graph.prompts import CowestPrompts


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite; no adapter was written."""


@dataclass
class LoraSettings:
    """LoRA adapter shape (PEFT `LoraConfig`)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")

    def to_peft(self) -> Any:
        from peft import LoraConfig

        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules),
            task_type="CAUSAL_LM",
        )


@dataclass
class _TrainConfig:
    learning_rate: float = 1e-4
    num_train_epochs: float = 1.0
    max_steps: int = -1
    """Overrides `num_train_epochs` when > 0."""
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    max_length: int = 512
    seed: int = 0
    logging_steps: int = 1
    save_steps: int = 25
    """Checkpoint every N optimizer steps (for `resume=True`)."""
    save_total_limit: int = 2
    lora: LoraSettings = field(default_factory=LoraSettings)
    bf16: bool | None = None
    """None: bf16 on a GPU that supports it, never on CPU (15x slower without AVX512-BF16)."""
    gradient_checkpointing: bool | None = None
    """None: off (the weak model is small; on CPU it only costs time)."""
    use_cpu: bool | None = None
    """None: the GPU when one is available."""
    disable_tqdm: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    """Further TRL config fields, passed through as they are."""

    def trl_kwargs(self, output_dir: Path) -> dict[str, Any]:
        import torch

        cuda = torch.cuda.is_available() and not self.use_cpu
        bf16 = self.bf16 if self.bf16 is not None else bool(cuda and torch.cuda.is_bf16_supported())
        return {
            "output_dir": str(output_dir),
            "learning_rate": self.learning_rate,
            "num_train_epochs": self.num_train_epochs,
            "max_steps": self.max_steps,
            "per_device_train_batch_size": self.per_device_train_batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "max_length": self.max_length,
            "seed": self.seed,
            "logging_steps": self.logging_steps,
            "save_strategy": "steps",
            "save_steps": self.save_steps,
            "save_total_limit": self.save_total_limit,
            "bf16": bf16,
            "fp16": False,
            # transformers 5 renamed it (`gradient_checkpointing` is a deprecated alias)
            "activation_checkpointing": bool(self.gradient_checkpointing),
            "use_cpu": not cuda,
            "report_to": "none",
            "disable_tqdm": self.disable_tqdm,
            "dataloader_num_workers": 0,
            **self.extra,
        }


@dataclass
class SFTTrainConfig(_TrainConfig):
    """Domain SFT of the weak model (TRL `SFTTrainer` + LoRA). Loss on the completion only.

    Example:
        >>> SFTTrainConfig(max_steps=20, learning_rate=2e-4).per_device_train_batch_size
        4
    """

    learning_rate: float = 2e-4


@dataclass
class DPOTrainConfig(_TrainConfig):
    """Collaborative-feedback DPO of the weak model (TRL `DPOTrainer` + LoRA).

    The reference policy is the starting point with no second model copy: the base with the
    adapter disabled, or (when starting from an SFT adapter) a frozen copy of that adapter.

    Example:
        >>> DPOTrainConfig(beta=0.1, max_steps=10).learning_rate
        5e-05
    """

    learning_rate: float = 5e-5
    beta: float = 0.1
    loss_type: str = "sigmoid"

    def trl_kwargs(self, output_dir: Path) -> dict[str, Any]:
        return {**super().trl_kwargs(output_dir), "beta": self.beta, "loss_type": [self.loss_type]}


@dataclass
class TrainResult:
    """Where the new adapter is and what its manifest says."""

    adapter_dir: Path
    version: str
    manifest: dict[str, Any]

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.manifest.get("metrics") or {})


# -- data ------------------------------------------------------------------------------------
def _load_dataset(data: Any, what: str) -> datasets.Dataset | datasets.DatasetDict:
    if isinstance(data, datasets.Dataset | datasets.DatasetDict):
        return data
    if isinstance(data, list):
        return datasets.Dataset.from_list(data)
    path = Path(str(data))
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    if path.is_dir():
        return datasets.load_from_disk(str(path))
    if path.suffix == ".jsonl" or path.suffix == ".json":
        return datasets.Dataset.from_json(str(path))
    if path.suffix == ".csv":
        return datasets.Dataset.from_csv(str(path))
    raise ValueError(f"{what} {path}: expected a .jsonl/.json/.csv file or a saved dataset directory")


def _splits(
    data: datasets.Dataset | datasets.DatasetDict,
) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    if isinstance(data, datasets.DatasetDict):
        if "train" not in data:
            raise ValueError(f"dataset has splits {list(data)}, but no 'train' split")
        ev = data.get("eval") or data.get("test") or data.get("validation")
        return data["train"], (ev if ev is not None and ev.num_rows else None)
    return data, None


def load_pairs(pairs: Any) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    """Load and check DPO pairs: a `DatasetDict`/`Dataset`, a JSONL file or a saved dataset.

    Raises `ValueError` naming a missing column or an empty train split.

    Example:
        >>> train, evals = load_pairs("pairs/")  # doctest: +SKIP
    """
    train, evals = _splits(_load_dataset(pairs, "pairs"))
    for split, name in ((train, "train"), (evals, "eval")):
        if split is None:
            continue
        missing = [c for c in PAIR_COLUMNS if c not in split.column_names]
        if missing:
            raise ValueError(f"pairs ({name} split) are missing column(s): {', '.join(missing)}")
    if train.num_rows == 0:
        raise ValueError("no training pairs: the train split is empty")
    keep = list(PAIR_COLUMNS)
    return train.select_columns(keep), (evals.select_columns(keep) if evals is not None else None)


def sft_examples(
    data: Any, prompts: CowestPrompts | None = None
) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    """Domain data as conversational prompt/completion rows rendered like the weak node's prompt.

    Accepts columns `question` + `answer` (the prompt is the weak node's own prompt, so SFT
    teaches exactly the call the graph makes), `prompt` + `completion`, or `messages`.

    Example:
        >>> train, _ = sft_examples([{"question": "Q?", "answer": "A."}])
        >>> train[0]["completion"]
        [{'content': 'A.', 'role': 'assistant'}]
    """
    prompts = prompts or CowestPrompts()
    train, evals = _splits(_load_dataset(data, "SFT data"))

    def convert(split: datasets.Dataset) -> datasets.Dataset:
        cols = set(split.column_names)
        if {"prompt", "completion"} <= cols or "messages" in cols:
            return split
        if {"question", "answer"} <= cols:

            def row(ex: dict[str, Any]) -> dict[str, Any]:
                prompt = to_chat(prompts.weak_messages(ex["question"]))
                return {"prompt": prompt, "completion": [{"role": "assistant", "content": ex["answer"]}]}

            return split.map(row, remove_columns=list(cols))
        raise ValueError(
            f"SFT data has columns {sorted(cols)}: expected question+answer, prompt+completion, or messages"
        )

    train = convert(train)
    if train.num_rows == 0:
        raise ValueError("no SFT examples: the train split is empty")
    return train, (convert(evals) if evals is not None else None)


# -- shared training flow ------------------------------------------------------------------
_WATCHED = ("loss", "grad_norm", "eval_loss", "logps/chosen", "logps/rejected")


class _FiniteLossGuard:
    """A `TrainerCallback` that stops training with a clear error once training diverges.

    The loss alone is not enough: with NaN weights TRL's DPO loss is logged as 0 while the
    gradient norm and the log-probabilities are NaN, so all of them are watched.
    """

    def __new__(cls) -> Any:
        from transformers import TrainerCallback

        class Guard(TrainerCallback):
            def on_log(
                self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any
            ) -> None:
                bad = {k: v for k, v in (logs or {}).items() if k in _WATCHED and not _finite(v)}
                if bad:
                    what = ", ".join(f"{k}={v}" for k, v in bad.items())
                    raise TrainingDivergedError(
                        f"training loss became nan/inf at step {state.global_step} ({what}); no adapter "
                        "was written and the previous adapters are untouched"
                    )

        return Guard()


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


def _config_hash(config: _TrainConfig) -> str:
    return hashlib.sha256(json.dumps(asdict(config), sort_keys=True, default=str).encode()).hexdigest()[:8]


def _work_dir(root: Path, kind: str, data_hash: str, config: _TrainConfig, resume: bool) -> Path:
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
    return {
        "steps": trainer.state.global_step,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        **final,
    }


def _finish(
    trainer: Any,
    *,
    root: Path,
    work: Path,
    kind: str,
    weak: WeakModel,
    parent: Path | None,
    data_hash: str,
    train: datasets.Dataset,
    evals: datasets.Dataset | None,
    config: _TrainConfig,
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
        "config": asdict(config),
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
        write_manifest(tmp, manifest)
        tmp.rename(target)  # a version directory appears whole or not at all
        shutil.rmtree(work, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return TrainResult(adapter_dir=target, version=version, manifest=manifest)


def _prepare_root(output_dir: str | Path) -> Path:
    root = Path(output_dir)
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"output_dir {root} exists and is not a directory")
    return root


# -- public entry points -------------------------------------------------------------------
def train_sft(
    dataset: Any,
    *,
    output_dir: str | Path,
    base_model: str | Path | None = None,
    config: SFTTrainConfig | None = None,
    prompts: CowestPrompts | None = None,
    resume: bool = False,
) -> TrainResult:
    """Specialise the weak model on domain data (TRL `SFTTrainer` + PEFT LoRA).

    Args:
        dataset: question/answer, prompt/completion or messages rows (a `Dataset`, a
            `DatasetDict` with `train` [and `eval`], a list of dicts, or a .jsonl/.csv path).
        output_dir: the adapters root; the new version is written under it.
        base_model: a local HF model directory; None: the embedded SmolLM2.
        resume: continue from the last checkpoint of an interrupted run on the same data.

    Example:
        >>> result = train_sft([{"question": "Q?", "answer": "A."}] * 8, output_dir="adapters",
        ...                    config=SFTTrainConfig(max_steps=4))  # doctest: +SKIP
        >>> result.version  # doctest: +SKIP
        'v0001'
    """
    from trl import SFTConfig, SFTTrainer

    config = config or SFTTrainConfig()
    train, evals = sft_examples(dataset, prompts)  # validates before anything is written
    root = _prepare_root(output_dir)
    data_hash = dataset_hash(train, ("prompt", "completion", "messages"))
    weak = load_weak_model(base_model)
    work = _work_dir(root, "sft", data_hash, config, resume)
    args = SFTConfig(**config.trl_kwargs(work), eval_strategy="no")
    trainer = SFTTrainer(
        model=weak.hf_model,
        args=args,
        train_dataset=train,
        eval_dataset=evals,
        processing_class=weak.tokenizer,
        peft_config=config.lora.to_peft(),
        callbacks=[_FiniteLossGuard()],
    )
    before = trainer.evaluate()["eval_loss"] if evals is not None else None
    metrics = _run(trainer, work, resume)
    if evals is not None:
        metrics.update(eval_loss_before=before, eval_loss_after=trainer.evaluate()["eval_loss"])
    return _finish(
        trainer,
        root=root,
        work=work,
        kind="sft",
        weak=weak,
        parent=None,
        data_hash=data_hash,
        train=train,
        evals=evals,
        config=config,
        metrics=metrics,
    )


def train_dpo(
    pairs: Any,
    *,
    output_dir: str | Path,
    base_model: str | Path | None = None,
    adapter: str | Path | None = None,
    config: DPOTrainConfig | None = None,
    resume: bool = False,
) -> TrainResult:
    """Align the weak model with the strong model's preferences (TRL `DPOTrainer` + PEFT LoRA).

    Args:
        pairs: output of `build_preference_pairs`, any `DatasetDict`/`Dataset` with `prompt`,
            `chosen`, `rejected`, or a .jsonl / saved-dataset path.
        output_dir: the adapters root; the new version is written under it.
        base_model: a local HF model directory; None: the embedded SmolLM2.
        adapter: start from this adapter (e.g. the SFT one); it is also the frozen reference.
        resume: continue from the last checkpoint of an interrupted run on the same pairs.

    Example:
        >>> pairs = build_preference_pairs("sqlite:///traces.db")  # doctest: +SKIP
        >>> train_dpo(pairs, output_dir="adapters", adapter="adapters/v0001")  # doctest: +SKIP
    """
    from trl import DPOConfig, DPOTrainer

    config = config or DPOTrainConfig()
    train, evals = load_pairs(pairs)  # validates before anything is written
    parent = Path(adapter) if adapter is not None else None
    weak = load_weak_model(base_model)
    if parent is not None:
        validate_adapter_dir(parent, base_path=weak.base_path)
    root = _prepare_root(output_dir)
    data_hash = dataset_hash(train)
    work = _work_dir(root, "dpo", data_hash, config, resume)
    model: Any = weak.hf_model
    peft_config = config.lora.to_peft()
    if parent is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(parent), is_trainable=True)
        peft_config = None  # TRL copies the adapter as the frozen reference
    args = DPOConfig(**config.trl_kwargs(work), eval_strategy="no")
    trainer = DPOTrainer(
        model=model,
        ref_model=None,
        args=args,
        train_dataset=train,
        eval_dataset=evals,
        processing_class=weak.tokenizer,
        peft_config=peft_config,
        callbacks=[_FiniteLossGuard()],
    )
    metrics = _run(trainer, work, resume)
    if evals is not None:
        metrics.update(trainer.evaluate())
    return _finish(
        trainer,
        root=root,
        work=work,
        kind="dpo",
        weak=weak,
        parent=parent,
        data_hash=data_hash,
        train=train,
        evals=evals,
        config=config,
        metrics=metrics,
    )


def preference_margin(model: Any, tokenizer: Any, pairs: datasets.Dataset) -> float:
    """Mean of log p(chosen | prompt) - log p(rejected | prompt) over conversational pairs,
    tokenised exactly as TRL's DPOTrainer does (the chat template, completion tokens only).

    Example:
        >>> preference_margin(weak.hf_model, weak.tokenizer, pairs["train"])  # doctest: +SKIP
        0.42
    """
    import torch

    def logp(prompt: list[dict], completion: list[dict]) -> float:
        prompt_ids = tokenizer.apply_chat_template(
            prompt, add_generation_prompt=True, tokenize=True, return_dict=True
        )["input_ids"]
        full = tokenizer.apply_chat_template(prompt + completion, tokenize=True, return_dict=True)[
            "input_ids"
        ]
        ids = torch.tensor([full], device=next(model.parameters()).device)
        with torch.inference_mode():
            logits = model(input_ids=ids).logits[0, :-1].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        targets = ids[0, 1:]
        start = len(prompt_ids) - 1
        return float(logprobs[start:].gather(1, targets[start:, None]).sum())

    was_training = model.training
    model.eval()
    margins = [logp(r["prompt"], r["chosen"]) - logp(r["prompt"], r["rejected"]) for r in pairs]
    model.train(was_training)
    return sum(margins) / len(margins)


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
