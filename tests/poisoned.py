"""A LoRA adapter whose weights are NaN: the first training loss is NaN (for the divergence guard)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_nan_adapter(peft_model: Any, path: Path) -> Path:
    """Fill every `lora_B` weight of `peft_model` with NaN and save it as an adapter at `path`."""
    import torch

    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.fill_(float("nan"))
    peft_model.save_pretrained(str(path))
    return path
