"""Training settings: LoRA, the SFT and DPO configs (mapped onto TRL's), and a run's result."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


class TrainingDivergedError(RuntimeError):
    """A watched training metric (loss, gradient norm, log-probabilities) became NaN or infinite;
    no adapter was written."""


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
        >>> rpo = DPOTrainConfig(loss_type=("sigmoid", "sft"), loss_weights=(1.0, 0.5))
        >>> rpo.trl_kwargs(Path("w"))["loss_type"], rpo.trl_kwargs(Path("w"))["loss_weights"]
        (['sigmoid', 'sft'], [1.0, 0.5])
        >>> robust = DPOTrainConfig(loss_type="robust", label_smoothing=0.1)
        >>> robust.trl_kwargs(Path("w"))["label_smoothing"]
        0.1
    """

    learning_rate: float = 5e-5
    beta: float = 0.1
    loss_type: str | tuple[str, ...] = "sigmoid"
    """TRL's loss name, or several combined (`("sigmoid", "sft")` is RPO: DPO plus the chosen
    completion's NLL, which keeps a short-answer model from sliding onto one answer)."""
    loss_weights: tuple[float, ...] | None = None
    """One weight per loss in `loss_type` (None: 1.0 each)."""
    label_smoothing: float = 0.0
    """Robust DPO (TRL's `label_smoothing`, with `loss_type="robust"`): the share of pairs assumed
    to be labelled the wrong way round, in [0, 0.5); 0.1 is the M-Pilot / Matryoshka setting.
    TRL's `"sigmoid"` loss ignores it, so a smoothing without a loss that reads it is refused."""

    def _loss_types(self) -> list[str]:
        return [self.loss_type] if isinstance(self.loss_type, str) else list(self.loss_type)

    def __post_init__(self) -> None:
        types = self._loss_types()
        if not types:
            raise ValueError("loss_type names no loss")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if self.label_smoothing and not set(types) & {"robust", "exo_pair", "aot", "aot_unpaired"}:
            raise ValueError(
                f"label_smoothing={self.label_smoothing} has no effect on loss_type {tuple(types)} in "
                "TRL: use loss_type='robust' (robust DPO)"
            )
        if self.loss_weights is not None and len(self.loss_weights) != len(types):
            raise ValueError(
                f"loss_weights has {len(self.loss_weights)} weights "
                f"for {len(types)} loss types {tuple(types)}"
            )

    def trl_kwargs(self, output_dir: Path) -> dict[str, Any]:
        weights = {"loss_weights": list(self.loss_weights)} if self.loss_weights is not None else {}
        types = self._loss_types()
        smoothing = {"label_smoothing": self.label_smoothing} if self.label_smoothing else {}
        return {
            **super().trl_kwargs(output_dir),
            "beta": self.beta,
            "loss_type": types,
            **weights,
            **smoothing,
        }


TrainingConfig = SFTTrainConfig | DPOTrainConfig | Any
"""Ours (`SFTTrainConfig` / `DPOTrainConfig`), or TRL's own `SFTConfig` / `DPOConfig`."""


def trl_args(config: Any, trl_class: type, work: Path) -> Any:
    """The TRL config a trainer runs with: ours mapped onto `trl_class` (CPU-safe defaults), or
    a TRL config of that class used as given, with checkpoints redirected to `work` (resume and
    the adapter's versioning need them there).

    Example:
        >>> from trl import DPOConfig
        >>> args = trl_args(DPOConfig(output_dir="x", beta=0.3, use_cpu=True), DPOConfig, Path("w"))
        >>> args.beta, args.output_dir
        (0.3, 'w')
    """
    if isinstance(config, _TrainConfig):
        return trl_class(**config.trl_kwargs(work), eval_strategy="no")
    if not isinstance(config, trl_class):
        raise TypeError(
            f"config must be a {trl_class.__name__} or cowest_graph's own config, not {type(config).__name__}"
        )
    args: Any = copy.deepcopy(config)
    args.output_dir = str(work)
    return args


def check_config(config: Any, trl_class: type) -> None:
    """Refuse a config of the wrong kind (before anything is written)."""
    if not isinstance(config, _TrainConfig | trl_class):
        raise TypeError(
            f"config must be a {trl_class.__name__} or cowest_graph's own config, not {type(config).__name__}"
        )


def peft_config_for(config: Any, peft_config: Any) -> Any:
    """The PEFT `LoraConfig` to train: `peft_config` as given, else our config's `lora`."""
    if peft_config is not None:
        return peft_config
    lora = config.lora if isinstance(config, _TrainConfig) else LoraSettings()
    return lora.to_peft()


def config_dict(config: Any, peft_config: Any = None) -> dict[str, Any]:
    """A JSON-ready record of the training settings (for the manifest and the resume key)."""
    out = asdict(config) if isinstance(config, _TrainConfig) else {"trl": config.to_dict()}
    if peft_config is not None:
        out["lora"] = {"peft": peft_config.to_dict()}
    return out


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
