"""`train_sft` and `train_dpo`: TRL trainers with a PEFT LoRA adapter on the weak model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
from transformers import TrainerCallback

from cowest_graph.adapters import adapter_sha256, validate_adapter_dir
from cowest_graph.models import load_hf_weak_model
from cowest_graph.pair_dataset import dataset_hash
from cowest_graph.prompts import CowestPrompts
from cowest_graph.train.config import (
    DPOTrainConfig,
    SFTTrainConfig,
    TrainResult,
    check_config,
    config_dict,
    peft_config_for,
    trl_args,
)
from cowest_graph.train.data import load_pairs, sft_examples
from cowest_graph.train.runs import FiniteLossGuard, _finish, _prepare_root, _run, _work_dir


def train_sft(
    dataset: Any,
    *,
    output_dir: str | Path,
    base_model: str | Path | None = None,
    adapter: str | Path | None = None,
    config: Any = None,
    prompts: CowestPrompts | None = None,
    resume: bool = False,
    callbacks: Sequence[TrainerCallback] = (),
    peft_config: Any = None,
) -> TrainResult:
    """Specialise the weak model on domain data (TRL `SFTTrainer` + PEFT LoRA).

    Args:
        dataset: question/answer, prompt/completion or messages rows (a `Dataset`, a
            `DatasetDict` with `train` [and `eval`], a list of dicts, or a .jsonl/.csv path).
        output_dir: the adapters root; the new version is written under it.
        base_model: a local HF model directory; None: the embedded SmolLM2.
        adapter: continue training this adapter (e.g. one more epoch of the SFT adapter, or
            SFT on the chosen drafts of preference pairs); its LoRA shape is kept and
            `peft_config` must be None. The new version names it as its parent.
        config: an `SFTTrainConfig` (CPU-safe defaults), or TRL's own `trl.SFTConfig`, used as
            given except that checkpoints go under `output_dir/.work/`.
        resume: continue from the last checkpoint of an interrupted run on the same data.
        callbacks: extra `transformers.TrainerCallback`s (progress, timing, early stopping).
        peft_config: a `peft.LoraConfig`; None: `config.lora`.

    Example:
        >>> result = train_sft([{"question": "Q?", "answer": "A."}] * 8, output_dir="adapters",
        ...                    config=SFTTrainConfig(max_steps=4))  # doctest: +SKIP
        >>> result.version  # doctest: +SKIP
        'v0001'
    """
    from trl import SFTConfig, SFTTrainer

    config = config or SFTTrainConfig()
    check_config(config, SFTConfig)
    if adapter is not None and peft_config is not None:
        raise ValueError("peft_config shapes a new adapter: leave it out when continuing from adapter=")
    train, evals = sft_examples(dataset, prompts)  # validates before anything is written
    parent = Path(adapter) if adapter is not None else None
    weak = load_hf_weak_model(base_model)
    model, lora = _start_model(weak, parent, config, peft_config)
    root = _prepare_root(output_dir)
    data_hash = dataset_hash(train, ("prompt", "completion", "messages"))
    recorded = config_dict(config, peft_config)
    if parent is not None:
        recorded["parent_adapter_sha256"] = adapter_sha256(parent)  # another start is another run
    work = _work_dir(root, "sft", data_hash, recorded, resume)
    args = trl_args(config, SFTConfig, work)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=evals,
        processing_class=weak.tokenizer,
        peft_config=lora,
        callbacks=[FiniteLossGuard(), *callbacks],
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
        parent=parent,
        data_hash=data_hash,
        train=train,
        evals=evals,
        config=recorded,
        metrics=metrics,
    )


def train_dpo(
    pairs: Any,
    *,
    output_dir: str | Path,
    base_model: str | Path | None = None,
    adapter: str | Path | None = None,
    config: Any = None,
    resume: bool = False,
    callbacks: Sequence[TrainerCallback] = (),
    peft_config: Any = None,
) -> TrainResult:
    """Align the weak model with the strong model's preferences (TRL `DPOTrainer` + PEFT LoRA).

    Args:
        pairs: output of `build_preference_pairs`, any `DatasetDict`/`Dataset` with `prompt`,
            `chosen`, `rejected`, or a .jsonl / saved-dataset path.
        output_dir: the adapters root; the new version is written under it.
        base_model: a local HF model directory; None: the embedded SmolLM2.
        adapter: start from this adapter (e.g. the SFT one); it is also the frozen reference.
        config: a `DPOTrainConfig` (CPU-safe defaults), or TRL's own `trl.DPOConfig`, used as
            given except that checkpoints go under `output_dir/.work/`.
        resume: continue from the last checkpoint of an interrupted run on the same pairs.
        callbacks: extra `transformers.TrainerCallback`s (progress, timing, early stopping).
        peft_config: a `peft.LoraConfig` for a new adapter; None: `config.lora`. Starting from
            `adapter`, its own LoRA shape is trained further and `peft_config` must be None.

    Example:
        >>> pairs = build_preference_pairs("sqlite:///traces.db")  # doctest: +SKIP
        >>> train_dpo(pairs, output_dir="adapters", adapter="adapters/v0001")  # doctest: +SKIP
    """
    from trl import DPOConfig, DPOTrainer

    config = config or DPOTrainConfig()
    check_config(config, DPOConfig)
    if adapter is not None and peft_config is not None:
        raise ValueError("peft_config shapes a new adapter: leave it out when continuing from adapter=")
    train, evals = load_pairs(pairs)  # validates before anything is written
    parent = Path(adapter) if adapter is not None else None
    weak = load_hf_weak_model(base_model)
    model, lora = _start_model(weak, parent, config, peft_config)  # TRL copies a parent as the reference
    root = _prepare_root(output_dir)
    data_hash = dataset_hash(train)
    recorded = config_dict(config, peft_config)
    work = _work_dir(root, "dpo", data_hash, recorded, resume)
    args = trl_args(config, DPOConfig, work)
    trainer = DPOTrainer(
        model=model,
        ref_model=None,
        args=args,
        train_dataset=train,
        eval_dataset=evals,
        processing_class=weak.tokenizer,
        peft_config=lora,
        callbacks=[FiniteLossGuard(), *callbacks],
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
        config=recorded,
        metrics=metrics,
    )


def _start_model(weak: Any, parent: Path | None, config: Any, peft_config: Any) -> tuple[Any, Any]:
    """(the model to train, the LoRA config for a new adapter): the base model and a new
    adapter, or the base with `parent` loaded trainable (and no new LoRA config)."""
    if parent is None:
        return weak.hf_model, peft_config_for(config, peft_config)
    from peft import PeftModel

    validate_adapter_dir(parent, base_path=weak.base_path)
    return PeftModel.from_pretrained(weak.hf_model, str(parent), is_trainable=True), None


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
