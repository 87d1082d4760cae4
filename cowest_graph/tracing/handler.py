"""`CowestTracer`: the LangChain callback handler that turns callback events into trace records
(folding in `record.py`, scrubbing in `redact.py`, writing in `writer.py`)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, cast
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult

from cowest_graph.store import TraceStore, open_trace_store
from cowest_graph.tracing.record import (
    PARAM_KEYS,
    RunTrace,
    fold_outputs,
    jsonable,
    message_dict,
    node_inputs,
    role_of,
    str_or_none,
    summarise,
)
from cowest_graph.tracing.redact import Redactor, scrub_secrets
from cowest_graph.tracing.schema import WEAK_CALL_KEYS, CallRecord, CallUsage, NodeRecord
from cowest_graph.tracing.writer import TraceWriter


class CowestTracer(BaseCallbackHandler):
    """Record every cowest node run (also nested, or behind a tool) into a trace store.

    Args:
        store: a `TraceStore` or a store URL (`sqlite:///traces.db`, `postgresql://...`).
        redact: applied to each record before it is persisted (after secrets are scrubbed).
        metadata: extra fields stored with every trace (e.g. an experiment name).

    Example:
        >>> tracer = CowestTracer("sqlite:///traces.db")
        >>> graph.invoke({"question": "..."}, config={"callbacks": [tracer]})  # doctest: +SKIP
        >>> tracer.store.count()  # doctest: +SKIP
        1
    """

    raise_error = False
    run_inline = True

    def __init__(
        self,
        store: TraceStore | str,
        *,
        redact: Redactor | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.store = open_trace_store(store) if isinstance(store, str) else store
        self.redact = redact
        self.metadata = dict(metadata or {})
        self._lock = threading.RLock()
        self._parent: dict[str, str | None] = {}
        self._owner: dict[str, tuple[RunTrace, NodeRecord]] = {}  # run -> (trace, node)
        self._traces: dict[str, RunTrace] = {}
        self._calls: dict[str, CallRecord] = {}
        self._writer = TraceWriter(self.store)

    # -- chains: the subgraph, its nodes and anything inside them --------------------------
    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        rid, pid = str(run_id), str_or_none(parent_run_id)
        metadata = metadata or {}
        with self._lock:
            self._parent[rid] = pid
            if pid in self._owner:  # inside a cowest node: remember which
                self._owner[rid] = self._owner[pid]
                return
            node_name = metadata.get("cowest_node")
            if not node_name or metadata.get("langgraph_node") != node_name or pid is None:
                return
            trace = self._traces.get(pid)
            if trace is None:
                grand = self._parent.get(pid)
                trace = self._traces[pid] = RunTrace(pid, grand, metadata)
            node: NodeRecord = {
                "node": node_name,
                "run_id": rid,
                "step": metadata.get("langgraph_step"),
                "started_at": time.time(),
                "inputs": node_inputs(node_name, inputs),
                "calls": [],
            }
            if node_name == "prepare" and isinstance(inputs, dict):
                trace.record["reference"] = inputs.get("reference")
            trace.nodes[rid] = node
            trace.record["nodes"].append(node)
            self._owner[rid] = (trace, node)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end_chain(str(run_id), outputs, None)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end_chain(str(run_id), None, error)

    def _end_chain(self, rid: str, outputs: Any, error: BaseException | None) -> None:
        with self._lock:
            self._parent.pop(rid, None)
            owned = self._owner.pop(rid, None)
            if owned is not None and rid in owned[0].nodes:
                trace, node = owned
                node["latency_s"] = time.time() - node["started_at"]
                if error is not None:
                    node["error"] = f"{type(error).__name__}: {error}"
                else:
                    node["outputs"] = jsonable(outputs)
                    fold_outputs(trace.record, node)
                return
            finished = self._traces.pop(rid, None)
        if finished is not None:
            self._finish(finished, outputs, error)

    # -- model calls -----------------------------------------------------------------------
    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        invocation_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        rid, pid = str(run_id), str_or_none(parent_run_id)
        with self._lock:
            owned = self._owner.get(pid) if pid else None
            if owned is None:
                return
            trace, node = owned
            metadata = metadata or {}
            params = invocation_params or {}
            call: CallRecord = {
                "run_id": rid,
                "role": role_of(node["node"], metadata.get("cowest_item")),
                "item": metadata.get("cowest_item"),
                "messages": [message_dict(m) for m in messages[0]] if messages else [],
                "model": metadata.get("ls_model_name")
                or params.get("model_name")
                or params.get("model")
                or params.get("model_id")
                or (serialized or {}).get("name"),
                "params": {k: v for k, v in params.items() if k in PARAM_KEYS},
                "started_at": time.time(),
            }
            node["calls"].append(call)
            self._calls[rid] = call
            self._owner[rid] = owned

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            call = self._calls.pop(str(run_id), None)
            self._owner.pop(str(run_id), None)
            if call is None:
                return
            call["latency_s"] = time.time() - call["started_at"]
            out = response.llm_output or {}
            gens = response.generations[0] if response.generations else []
            call["outputs"] = [g.text for g in gens]
            usage: CallUsage = {"input_tokens": 0, "output_tokens": 0}
            for i, g in enumerate(gens):
                meta = getattr(getattr(g, "message", None), "usage_metadata", None) or {}
                usage["input_tokens"] += int(meta.get("input_tokens", 0)) if i == 0 else 0
                usage["output_tokens"] += int(meta.get("output_tokens", 0))
                resp = getattr(getattr(g, "message", None), "response_metadata", None) or {}
                call["model"] = resp.get("model_name") or call["model"]
            if not any(usage.values()) and isinstance(out.get("token_usage"), dict):
                usage = {
                    "input_tokens": int(out["token_usage"].get("prompt_tokens", 0)),
                    "output_tokens": int(out["token_usage"].get("completion_tokens", 0)),
                }
            call["usage"] = usage
            call["model"] = out.get("model_name") or call["model"]
            # What a WeakModel reports (prompt as rendered, adapter, sampling, ...).
            cast(dict[str, Any], call).update({k: out[k] for k in WEAK_CALL_KEYS if k in out})

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            call = self._calls.pop(str(run_id), None)
            self._owner.pop(str(run_id), None)
            if call is not None:
                call["latency_s"] = time.time() - call["started_at"]
                call["error"] = f"{type(error).__name__}: {error}"

    # -- persisting ------------------------------------------------------------------------
    def _finish(self, trace: RunTrace, outputs: Any, error: BaseException | None) -> None:
        record = trace.record
        record["ended_at"] = time.time()
        record["latency_s"] = record["ended_at"] - record["started_at"]
        record["status"] = "error" if error is not None else "success"
        if error is not None:
            record["error"] = f"{type(error).__name__}: {error}"
        summarise(record)
        # The tracer's own metadata (e.g. an experiment name) rides along as extra keys.
        out: dict[str, Any] = {**record, **{k: v for k, v in self.metadata.items() if k not in record}}
        out = scrub_secrets(out)
        if self.redact is not None:
            out = self.redact(out)
        self._persist(out)

    def _persist(self, record: dict[str, Any]) -> None:
        self._writer.persist(record)

    def flush(self) -> None:
        """Wait for queued traces to be written and retry any whose write failed; raise if the
        store still fails. Call it before reading traces of async runs.

        Example:
            >>> await graph.ainvoke(..., config={"callbacks": [tracer]})  # doctest: +SKIP
            >>> tracer.flush(); tracer.store.count()  # doctest: +SKIP
        """
        self._writer.flush()

    async def aflush(self) -> None:
        """`flush()` without blocking the event loop."""
        await asyncio.to_thread(self.flush)

    @property
    def written(self) -> int:
        """How many traces this tracer has persisted."""
        return self._writer.written

    @property
    def pending(self) -> int:
        """Traces not yet written (queued, or the store failed); `flush()` writes them."""
        return self._writer.pending
