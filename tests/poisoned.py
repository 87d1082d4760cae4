"""LoRA adapters made for tests: NaN weights (the first training loss is NaN, for the divergence
guard) and random weights (a strong, reproducible change of the model)."""

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


def save_random_adapter(path: Path, targets: list[str], *, r: int, alpha: int, seed: int) -> Path:
    """A LoRA adapter on the embedded SmolLM2 with random B matrices (N(0, 0.02), seeded), saved
    by PEFT as training saves one."""
    import torch
    from peft import LoraConfig, get_peft_model

    from cowest_graph.models import load_hf_weak_model

    torch.manual_seed(seed)
    model = get_peft_model(
        load_hf_weak_model().hf_model, LoraConfig(r=r, lora_alpha=alpha, target_modules=targets)
    )
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.02)
    model.save_pretrained(str(path))
    return path


def random_adapter_version(root: Path, version: str, seed: int) -> Path:
    """A real PEFT LoRA adapter version (random B, so it changes the model) with a manifest, as
    training writes one under an adapters root."""
    from cowest_graph.adapters import write_manifest
    from cowest_graph.models import DEFAULT_MODEL_ID, base_model_fingerprint, ensure_default_model

    path = save_random_adapter(root / version, ["q_proj", "v_proj"], r=4, alpha=8, seed=seed)
    write_manifest(
        path,
        {
            "version": version,
            "kind": "sft",
            "base_model_id": DEFAULT_MODEL_ID,
            "base_model_fingerprint": base_model_fingerprint(ensure_default_model()),
            "counts": {"train": 8},
            "created_at": "2026-11-26T00:00:00Z",
        },
    )
    return path
