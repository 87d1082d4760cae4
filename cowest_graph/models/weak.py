"""The weak-model contract: what every weak backend gives the graph, the tracer and the trainer.

`WeakModel` is a LangChain chat model over a local causal LM that:
- renders messages with the base model's Hugging Face chat template (the exact rendering the
  trainer uses), truncating the last user message to the prompt budget;
- samples `n` continuations of one prompt per call, and lets concurrent callers share one batched
  call (`cowest_graph.models.batching`);
- returns, per call, a `WeakCallOutput` in `llm_output` (rendered prompt, sampling parameters,
  model and adapter ids, tokens, time queued), which the tracer records;
- hot-swaps LoRA adapters (`load_adapter`), never in the middle of a generation.

A backend subclasses it and fills in `backend`, `context_length`, `_generate_batch`,
`load_adapter` and `unload_adapter`: `cowest_graph.models.hf.HFWeakModel` (transformers) and
`cowest_graph.models.llamacpp.LlamaCppWeakModel` (llama.cpp in-process).
"""

from __future__ import annotations

import asyncio
import threading
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypedDict

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from cowest_graph.models.batching import BatchFuture, GenerationBatcher
from cowest_graph.models.files import DEFAULT_MODEL_ID
from cowest_graph.models.messages import to_chat


@dataclass(frozen=True)
class Sample:
    """One generated continuation: its text and why generation stopped."""

    text: str
    output_tokens: int
    finish_reason: str


class TokenUsage(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class WeakCallOutput(TypedDict):
    """What a weak model reports for one call (`ChatResult.llm_output`); the tracer records it."""

    model_name: str
    backend: str
    adapter_version: str | None
    rendered_prompt: str
    """The exact text the model continued (chat template applied, after truncation)."""
    truncated_tokens: int
    rendered_messages: list[dict[str, str]] | None
    """The chat as rendered when it was truncated (what training must use), else None."""
    sampling: dict[str, Any]
    token_usage: TokenUsage
    queue_wait_s: float | None
    """Seconds the request waited in the batching queue before its batch started."""


class WeakModel(BaseChatModel):
    """The CoWest weak model: a LangChain chat model over a local causal LM (see the module doc).

    Use `load_weak_model(..., backend="hf" | "llama.cpp")` to get one.

    Example:
        >>> weak = load_weak_model(max_new_tokens=16)  # doctest: +SKIP
        >>> result = weak.generate([[HumanMessage("Name a colour.")]], n=2)  # doctest: +SKIP
        >>> len(result.generations[0])  # doctest: +SKIP
        2
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    backend: ClassVar[str]
    """The backend's name, recorded in every call's output."""

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
        return f"cowest-weak-{self.backend}"

    # -- what a backend fills in -----------------------------------------------------------
    @property
    @abstractmethod
    def context_length(self) -> int:
        """Tokens the model attends to (prompt + generation)."""

    @abstractmethod
    def _generate_batch(
        self, prompts: Sequence[str], ns: Sequence[int], params: dict[str, Any]
    ) -> list[list[Sample]]:
        """ONE batched generation: `ns[i]` samples of rendered prompt i (runs in the batcher's thread)."""

    @abstractmethod
    def load_adapter(self, path: str | Path, *, version: str | None = None) -> WeakModel:
        """Make the LoRA adapter at `path` active (hot swap, never within a generation)."""

    @abstractmethod
    def unload_adapter(self) -> WeakModel:
        """Return to the base weights."""

    def refresh_adapter(self) -> bool:
        """Follow a symbolic link: when the adapter was loaded through one (`adapters/current`,
        which promotion swaps atomically) and it now names another version, load that version.
        The graph calls this at the start of every run, so a swap never splits a run's first
        round between two adapters. Returns True when it swapped.

        Example:
            >>> weak = load_weak_model(adapter="adapters/current")  # doctest: +SKIP
            >>> promote("adapters", "v0003"); weak.refresh_adapter()  # doctest: +SKIP
            True
        """
        link = Path(self.adapter_path) if self.adapter_path else None
        if link is None or not link.is_symlink():
            return False
        from cowest_graph.adapters import read_manifest

        target = link.resolve()
        version = str((read_manifest(target) or {}).get("version") or target.name).replace(".", "_")
        if version == self.adapter_version:
            return False
        self.load_adapter(link, version=version)
        return True

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
        return max(32, self.context_length - max_new_tokens)

    def render(
        self, messages: Sequence[BaseMessage], *, max_new_tokens: int | None = None
    ) -> tuple[str, int]:
        """Render messages through the chat template; return `(prompt, truncated_tokens)`.

        Truncation rule: when the rendered prompt exceeds the budget, the content of the LAST
        user message is cut from its end (the instructions before it and the template's framing
        are kept) until the prompt fits; the number of tokens removed is returned and traced.

        Example:
            >>> prompt, cut = weak.render([HumanMessage("hi")])  # doctest: +SKIP
            >>> prompt.endswith("<|im_start|>assistant\\n"), cut  # doctest: +SKIP
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
            >>> prompt, _ = weak.render([HumanMessage("hi")])  # doctest: +SKIP
            >>> [len(s) for s in weak.generate_from_prompts([prompt, prompt], n=3)]  # doctest: +SKIP
            [3, 3]
        """
        return self._submit(prompts, n, sampling).result()

    async def agenerate_from_prompts(
        self, prompts: Sequence[str], *, n: int = 1, **sampling: Any
    ) -> list[list[Sample]]:
        """Async `generate_from_prompts`: waits without holding a thread or blocking the loop."""
        return await asyncio.wrap_future(self._submit(prompts, n, sampling))

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> WeakModel:
        """A copy (e.g. with other sampling settings) sharing the weights and the generation lock.

        The copy gets its own batching queue: the queue's worker is bound to one instance, so a
        copy that later loads an adapter generates with its own weights.
        """
        copy = super().model_copy(update=update, deep=deep)
        copy._batcher = None
        return copy

    def _submit(self, prompts: Sequence[str], n: int, sampling: dict[str, Any]) -> BatchFuture[Sample]:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        params = self.sampling_params(**sampling)
        if self._batcher is None:
            self._batcher = GenerationBatcher(
                self._generate_batch, max_batch=self.max_batch_size, max_wait_s=self.batch_wait_ms / 1000
            )
        # A seeded call runs alone, so its samples do not depend on what else was queued.
        return self._batcher.submit(prompts, n=n, params=params, solo=params["seed"] is not None)

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
        future = self._submit([prompt], n, params)
        samples = future.result()[0]
        return self._result(samples, stop, prompt, truncated, chat, input_tokens, params, n, future.wait_s)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        n: int = 1,
        **kwargs: Any,
    ) -> ChatResult:
        prompt, truncated, chat, input_tokens, params = self._prepare(messages, kwargs)
        future = self._submit([prompt], n, params)
        samples = (await asyncio.wrap_future(future))[0]
        return self._result(samples, stop, prompt, truncated, chat, input_tokens, params, n, future.wait_s)

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
        wait_s: float | None = None,
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
        llm_output = WeakCallOutput(
            model_name=self.model_id,
            backend=self.backend,
            adapter_version=self.adapter_version,
            rendered_prompt=prompt,
            truncated_tokens=truncated,
            rendered_messages=chat if truncated else None,
            sampling=params | {"n": n},
            token_usage=TokenUsage(
                prompt_tokens=input_tokens,
                completion_tokens=output_tokens,
                total_tokens=input_tokens + output_tokens,
            ),
            queue_wait_s=wait_s,
        )
        return ChatResult(generations=generations, llm_output=dict(llm_output))

    def _combine_llm_outputs(self, llm_outputs: list[dict[str, Any] | None]) -> dict[str, Any]:
        outputs = [o for o in llm_outputs if o]
        if len(outputs) == 1:
            return outputs[0]
        return {"model_name": self.model_id, "runs": outputs}


def _cut_at_stop(text: str, stop: list[str] | None) -> str:
    if not stop:
        return text
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]
