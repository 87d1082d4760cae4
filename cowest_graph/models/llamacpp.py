"""The weak model's llama.cpp backend: `LlamaCppWeakModel`, in-process through llama-cpp-python.

Same contract as the Hugging Face backend (`cowest_graph.models.weak.WeakModel`): prompts are
rendered and tokenised by the base model's Hugging Face tokenizer, so llama.cpp sees exactly the
tokens training uses. One llama.cpp context holds up to `max_batch_size` sequences in a unified
KV cache: each distinct prompt is evaluated once, copied to the sequences that sample from it
(prefix sharing), and all sequences advance together, one `llama_decode` per generated token.
Concurrent callers share those batches through the batching queue, and a lock keeps the
(not thread-safe) context to one generation at a time. LoRA adapters are applied at run time
from their GGUF form (`adapter_model.gguf`, written by training; converted on first use if absent).
"""

from __future__ import annotations

import ctypes
import math
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from cowest_graph.adapters import read_manifest, validate_adapter_dir
from cowest_graph.models.files import DEFAULT_MODEL_ID, ensure_default_model
from cowest_graph.models.gguf_convert import ADAPTER_GGUF, lora_to_gguf, weak_gguf
from cowest_graph.models.weak import Sample, WeakModel

DEFAULT_PRECISION = "F16"
"""Tensor type of the embedded model under llama.cpp. Measured here (8 greedy prompts, 16 tokens):
F16 gives the HF backend's text on 8/8, Q8_0 on 3/8 and the shipped Q4_1 on 4/8 (their matrix
products quantise activations too); Q8_0 drafts ~1.3x faster. F16 keeps inference equal to what
training sees; `precision="Q8_0"` trades that for speed."""


@dataclass
class _Unit:
    prompt: int
    count: int
    first_sample: int


class LlamaCppEngine:
    """One llama.cpp model and context with multi-sequence batched sampling (not thread-safe).

    Example:
        >>> engine = LlamaCppEngine(weak_gguf("Q8_0"), max_sequences=4)  # doctest: +SKIP
        >>> engine.generate([[1, 2, 3]], [2], temperature=0.0, top_p=1.0, max_new_tokens=4)  # doctest: +SKIP
        [[([5, 6, 7, 8], 'length'), ([5, 6, 7, 8], 'length')]]
    """

    def __init__(
        self,
        gguf_path: str | Path,
        *,
        n_ctx: int = 8192,
        max_sequences: int = 16,
        n_threads: int | None = None,
        kv_unified: bool = True,
    ) -> None:
        try:
            import llama_cpp
            from llama_cpp import _internals
            from llama_cpp._logger import set_verbose
        except ImportError as exc:
            raise ImportError(
                "the llama.cpp weak backend needs llama-cpp-python: pip install 'cowest-graph[llamacpp]' "
                "(or bash scripts/setup.sh --with-llama-server), or use backend='hf'"
            ) from exc

        # Quiet through llama.cpp's log callback. `verbose=False` below would instead swap
        # sys.stdout/sys.stderr for the whole process while loading (not thread-safe: a model
        # loading in a background thread, as the Studio factory does, lost other threads' output).
        set_verbose(False)
        llama_cpp.llama_backend_init()
        self._lib, self._internals = llama_cpp, _internals
        self.path = str(gguf_path)
        self.model = _internals.LlamaModel(
            path_model=self.path, params=llama_cpp.llama_model_default_params(), verbose=True
        )
        threads = n_threads or os.cpu_count() or 1
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = params.n_batch = n_ctx
        params.n_seq_max = max_sequences
        params.kv_unified = kv_unified
        params.n_threads = params.n_threads_batch = threads
        params.no_perf = True
        self.ctx = _internals.LlamaContext(model=self.model, params=params, verbose=True)
        self.n_ctx, self.max_sequences = n_ctx, max_sequences
        self.batch = _internals.LlamaBatch(n_tokens=n_ctx, embd=0, n_seq_max=max_sequences, verbose=False)
        vocab = self.model.vocab
        self.eog = frozenset(
            t for t in range(llama_cpp.llama_vocab_n_tokens(vocab)) if llama_cpp.llama_vocab_is_eog(vocab, t)
        )
        self.n_ctx_train = self.model.n_ctx_train()
        self._adapters: dict[str, Any] = {}
        self._active: str | None = None

    # -- adapters ----------------------------------------------------------------------------
    def use_adapter(self, path: str | None) -> None:
        """Apply the GGUF LoRA adapter at `path` (None: none) to the next generations."""
        lib = self._lib
        if path == self._active:
            return
        if path is None:
            lib.llama_set_adapters_lora(self.ctx.ctx, None, 0, None)
        else:
            if path not in self._adapters:
                handle = lib.llama_adapter_lora_init(self.model.model, path.encode())
                if not handle:
                    raise ValueError(f"llama.cpp could not load the LoRA adapter {path}")
                self._adapters[path] = handle
            adapters = (lib.llama_adapter_lora_p_ctypes * 1)(self._adapters[path])
            scales = (ctypes.c_float * 1)(1.0)
            if lib.llama_set_adapters_lora(self.ctx.ctx, adapters, 1, scales) != 0:
                raise ValueError(f"llama.cpp could not apply the LoRA adapter {path}")
        self._active = path

    # -- generation --------------------------------------------------------------------------
    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        ns: Sequence[int],
        *,
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        seed: int | None = None,
        min_new_tokens: int = 0,
    ) -> list[list[tuple[list[int], str]]]:
        """`ns[i]` continuations (token ids, finish reason) of each tokenised prompt."""
        if any(len(p) + max_new_tokens > self.n_ctx for p in prompts):
            raise ValueError(f"a prompt plus {max_new_tokens} new tokens exceeds the context ({self.n_ctx})")
        results: list[list[tuple[list[int], str]]] = [[None] * n for n in ns]  # type: ignore[list-item]
        for chunk in self._chunks(prompts, ns, max_new_tokens):
            for unit, samples in zip(
                chunk,
                self._run(prompts, chunk, temperature, top_p, max_new_tokens, seed, min_new_tokens),
                strict=True,
            ):
                results[unit.prompt][unit.first_sample : unit.first_sample + unit.count] = samples
        return results

    def _chunks(self, prompts: Sequence[Sequence[int]], ns: Sequence[int], max_new: int) -> list[list[_Unit]]:
        """Pack (prompt, samples) units so that each chunk fits the sequences and the KV cache."""
        units = [
            _Unit(i, min(self.max_sequences, n - start), start)
            for i, n in enumerate(ns)
            for start in range(0, n, self.max_sequences)
        ]
        chunks: list[list[_Unit]] = [[]]
        seqs = cells = 0
        for unit in units:
            need = len(prompts[unit.prompt]) + unit.count * max_new
            if chunks[-1] and (seqs + unit.count > self.max_sequences or cells + need > self.n_ctx):
                chunks.append([])
                seqs = cells = 0
            chunks[-1].append(unit)
            seqs, cells = seqs + unit.count, cells + need
        return [c for c in chunks if c]

    def _sampler(self, temperature: float, top_p: float, seed: int) -> Any:
        sampler = self._internals.LlamaSampler()
        if temperature <= 0:
            sampler.add_greedy()
            return sampler
        sampler.add_temp(temperature)  # temperature, then nucleus: the order transformers uses
        if top_p < 1.0:
            sampler.add_top_p(top_p, 1)
        sampler.add_dist(seed)
        return sampler

    def _run(
        self,
        prompts: Sequence[Sequence[int]],
        chunk: list[_Unit],
        temperature: float,
        top_p: float,
        max_new: int,
        seed: int | None,
        min_new: int,
    ) -> list[list[tuple[list[int], str]]]:
        lib, ctx, batch = self._lib, self.ctx, self.batch
        lib.llama_memory_clear(ctx.memory, True)
        batch.reset()
        seq_of_unit, seq = [], 0
        last_index: list[int] = []
        for unit in chunk:  # prefill: each distinct prompt once, in its unit's first sequence
            ids = prompts[unit.prompt]
            for pos, token in enumerate(ids):
                self._add(token, pos, seq, pos == len(ids) - 1)
            last_index.append(batch.batch.n_tokens - 1)
            seq_of_unit.append(seq)
            seq += unit.count
        ctx.decode(batch)
        seqs = []  # per sequence: (unit index, logits row, position, sampler, tokens, finish)
        for u, unit in enumerate(chunk):
            first = seq_of_unit[u]
            for j in range(unit.count):
                if j:
                    lib.llama_memory_seq_cp(ctx.memory, first, first + j, -1, -1)
                s = random.getrandbits(32) if seed is None else (seed + unit.first_sample + j) % 2**32
                seqs.append(
                    {
                        "id": first + j,
                        "row": last_index[u],
                        "pos": len(prompts[unit.prompt]),
                        "sampler": self._sampler(temperature, top_p, s),
                        "tokens": [],
                        "finish": None,
                    }
                )
        active = seqs
        while active:
            advancing = []
            for sq in active:
                if len(sq["tokens"]) < min_new:
                    logits = lib.llama_get_logits_ith(ctx.ctx, sq["row"])
                    for token in self.eog:
                        logits[token] = -math.inf
                token = sq["sampler"].sample(ctx, sq["row"])
                if token in self.eog:
                    sq["finish"] = "stop"
                    continue
                sq["tokens"].append(token)
                if len(sq["tokens"]) >= max_new:
                    sq["finish"] = "length"
                    continue
                advancing.append((sq, token))
            if not advancing:
                break
            batch.reset()
            for row, (sq, token) in enumerate(advancing):
                self._add(token, sq["pos"], sq["id"], True)
                sq["row"], sq["pos"] = row, sq["pos"] + 1
            ctx.decode(batch)
            active = [sq for sq, _ in advancing]
        out: list[list[tuple[list[int], str]]] = []
        k = 0
        for unit in chunk:
            out.append([(sq["tokens"], sq["finish"]) for sq in seqs[k : k + unit.count]])
            k += unit.count
        return out

    def _add(self, token: int, pos: int, seq: int, logits: bool) -> None:
        b = self.batch.batch
        i = b.n_tokens
        b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = token, pos, 1, logits
        b.seq_id[i][0] = seq
        b.n_tokens = i + 1


class LlamaCppWeakModel(WeakModel):
    """The weak model under llama.cpp (in-process): the `WeakModel` contract, 4-10x faster
    drafting on a CPU than transformers' `generate` (see `benchmarks/throughput.py`).

    Example:
        >>> weak = load_weak_model(backend="llama.cpp", max_new_tokens=16)  # doctest: +SKIP
        >>> len(weak.generate([[HumanMessage("Name a colour.")]], n=2).generations[0])  # doctest: +SKIP
        2
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    backend: ClassVar[str] = "llama.cpp"

    engine: Any = Field(exclude=True, repr=False)
    """The `LlamaCppEngine` (shared by copies of this model; a lock serialises its use)."""
    gguf_path: str
    adapter_gguf: str | None = None

    @property
    def context_length(self) -> int:
        return min(int(self.engine.n_ctx_train), int(self.engine.n_ctx))

    def _generate_batch(
        self, prompts: Sequence[str], ns: Sequence[int], params: dict[str, Any]
    ) -> list[list[Sample]]:
        tok = self.tokenizer
        ids = [tok(p, add_special_tokens=False).input_ids for p in prompts]
        with self._lock:
            self.engine.use_adapter(self.adapter_gguf)
            raw = self.engine.generate(
                ids,
                ns,
                temperature=float(params["temperature"]),
                top_p=float(params["top_p"]),
                max_new_tokens=int(params["max_new_tokens"]),
                seed=params["seed"],
                min_new_tokens=self.min_new_tokens or 0,
            )
        return [
            [Sample(tok.decode(t, skip_special_tokens=True).strip(), len(t), finish) for t, finish in row]
            for row in raw
        ]

    def load_adapter(self, path: str | Path, *, version: str | None = None) -> LlamaCppWeakModel:
        """Make a LoRA adapter active (hot swap under the generation lock); its GGUF form is
        `adapter_model.gguf` in the adapter directory, converted now if training did not write it.

        Example:
            >>> weak.load_adapter("adapters/v0002").adapter_version  # doctest: +SKIP
            'v0002'
        """
        path = Path(path)
        validate_adapter_dir(path, base_path=self.base_path)
        manifest = read_manifest(path)
        name = str(version or (manifest or {}).get("version") or path.name).replace(".", "_")
        gguf_file = path / ADAPTER_GGUF
        if not gguf_file.exists():
            gguf_file = lora_to_gguf(path, base_gguf=self.gguf_path)
        with self._lock:
            self.engine.use_adapter(str(gguf_file))  # fails here, not at the next draft
            self.adapter_gguf = str(gguf_file)
            self.adapter_path = str(path)
            self.adapter_version = name
        return self

    def unload_adapter(self) -> LlamaCppWeakModel:
        """Return to the base weights."""
        with self._lock:
            self.adapter_gguf = self.adapter_path = self.adapter_version = None
        return self


def load_llamacpp_weak_model(
    model: str | Path | None = None,
    *,
    adapter: str | Path | None = None,
    precision: str = DEFAULT_PRECISION,
    n_threads: int | None = None,
    **sampling: Any,
) -> LlamaCppWeakModel:
    """The llama.cpp backend of `load_weak_model`.

    `model=None`: the embedded SmolLM2 in `precision` (Q4_1 as shipped, Q8_0, F16). Otherwise a
    local Hugging Face model directory (its tokenizer and chat template) holding one `.gguf` file
    of the same weights.

    Example:
        >>> weak = load_llamacpp_weak_model(max_new_tokens=32, temperature=0.7)  # doctest: +SKIP
    """
    from transformers import AutoTokenizer

    if model is None:
        base, model_id, gguf_path = ensure_default_model(), DEFAULT_MODEL_ID, weak_gguf(precision)
    else:
        base = Path(model).expanduser()
        found = sorted(base.glob("*.gguf")) if base.is_dir() else []
        if not (base / "config.json").exists() or len(found) != 1:
            raise FileNotFoundError(
                f"weak model {model!r}: the llama.cpp backend needs a local Hugging Face model "
                "directory (config.json, tokenizer) with exactly one .gguf file of its weights"
            )
        model_id, gguf_path = str(base), found[0]
    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    max_batch = int(sampling.get("max_batch_size", 16))
    engine = LlamaCppEngine(gguf_path, max_sequences=max_batch, n_threads=n_threads)
    weak = LlamaCppWeakModel(
        engine=engine,
        tokenizer=tokenizer,
        model_id=model_id,
        base_path=str(base),
        gguf_path=str(gguf_path),
        **sampling,
    )
    if adapter is not None:
        weak.load_adapter(adapter)
    return weak
