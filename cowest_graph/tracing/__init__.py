"""Tracing: `CowestTracer`, a LangChain callback handler that records every cowest run into a TraceStore.

Pass it as `config={"callbacks": [CowestTracer(store)]}` to the subgraph, to a parent graph
that contains it, or to an agent that calls it as a tool. It finds the cowest nodes by the
`cowest_node` metadata the subgraph puts on them (and LangGraph's `langgraph_node`,
`langgraph_checkpoint_ns`, `thread_id`), groups them by subgraph run, and writes one trace per
run when the run ends, successful or not.

A trace record (a JSON object) holds: `run_id`, `thread_id`, `parent_run_id`, `checkpoint_ns`,
`started_at`/`ended_at`, `status`, `error`, `question`, `reference`, `answer`, `best_score`,
`rounds`, `weak_model`, `adapter_version`, `strong_model`, `drafts` (each with the weak prompt as
messages and as rendered by the chat template, the adapter version and sampling parameters),
`candidates`, `alone`, and `nodes` (per node execution: inputs, outputs, latency, error, and every
model call with its exact messages, outputs, model id, tokens, latency and error).

- `handler.py`: `CowestTracer` (the callbacks);
- `schema.py`: the record's types (`TraceRecord`, `NodeRecord`, `CallRecord`, `Usage`);
- `record.py`: building and folding a run's record;
- `redact.py`: secret scrubbing;
- `writer.py`: `TraceWriter` (writes without blocking an event loop, retries, drains at exit).
"""

from __future__ import annotations

from cowest_graph.tracing.handler import CowestTracer
from cowest_graph.tracing.redact import REDACTED, Redactor, scrub_secrets
from cowest_graph.tracing.schema import CallRecord, DraftRecord, NodeRecord, TraceRecord, Usage
from cowest_graph.tracing.writer import TraceWriter

__all__ = [
    "REDACTED",
    "CallRecord",
    "CowestTracer",
    "DraftRecord",
    "NodeRecord",
    "Redactor",
    "TraceRecord",
    "TraceWriter",
    "Usage",
    "scrub_secrets",
]
