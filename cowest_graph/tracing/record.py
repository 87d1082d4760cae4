"""Building a trace record from callback events: JSON-safe values, the per-run trace, each
model call's role, what a node read, and folding node outputs into the run's record."""

from __future__ import annotations

import time
from typing import Any, cast

from langchain_core.messages import BaseMessage

from cowest_graph.state import upsert_by_id
from cowest_graph.tracing.schema import ROLES, NodeRecord, Role, TraceRecord, Usage


def message_dict(message: BaseMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.type, "content": message.content}
    if message.name:
        out["name"] = message.name
    return out


def jsonable(value: Any) -> Any:
    if isinstance(value, BaseMessage):
        return message_dict(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items() if k != "__pregel_runtime"}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "value") and type(value).__name__ == "Overwrite":
        return jsonable(value.value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


class RunTrace:
    def __init__(self, run_id: str, parent_run_id: str | None, metadata: dict[str, Any]) -> None:
        self.record: TraceRecord = {
            "run_id": run_id,
            "parent_run_id": parent_run_id,
            "thread_id": str_or_none(metadata.get("thread_id")),
            "example_id": str_or_none(metadata.get("cowest_example_id")),
            # The node's own namespace segment is the last one; the rest locates the subgraph.
            "checkpoint_ns": "|".join(str(metadata.get("langgraph_checkpoint_ns", "")).split("|")[:-1])
            or None,
            "started_at": time.time(),
            "status": "running",
            "nodes": [],
            "drafts": [],
            "candidates": [],
            "alone": None,
        }
        self.nodes: dict[str, NodeRecord] = {}


def str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


PARAM_KEYS = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_new_tokens",
    "n",
    "seed",
    "stop",
    "model",
    "model_name",
    "timeout",
)


def role_of(node: str, item: Any) -> Role:
    if node == "weak_draft":
        return "weak"
    if node == "critique":
        return "judge"
    if item == "alone" or node == "strong_alone":
        return "alone"
    return "strong"


def node_inputs(node: str, inputs: Any) -> Any:
    """What a node read: the question and the parts of the state it works on (not everything)."""
    if not isinstance(inputs, dict):
        return jsonable(inputs)
    keep = {"question", "reference", "round", "feedback"}
    if node == "prepare":
        keep |= {"messages"}
    return jsonable({k: v for k, v in inputs.items() if k in keep})


def fold_outputs(record: TraceRecord, node: NodeRecord) -> None:
    out = node.get("outputs")
    if not isinstance(out, dict):
        return
    if "round" in out and isinstance(out["round"], int):
        node["round"] = out["round"]
        record["rounds"] = max(record.get("rounds") or 0, out["round"])
    elif record.get("rounds"):
        node["round"] = record["rounds"]
    if node["node"] == "prepare":
        record["question"] = out.get("question")
    if node["node"] == "weak_draft":
        weak_call = next((c for c in node["calls"] if c.get("outputs") is not None), None)
        drafts = []
        for d in out.get("drafts") or []:
            d = dict(d)
            if weak_call is not None:
                d.update(
                    prompt_messages=weak_call["messages"],
                    rendered_messages=weak_call.get("rendered_messages"),
                    rendered_prompt=weak_call.get("rendered_prompt"),
                    adapter_version=weak_call.get("adapter_version"),
                    weak_model=weak_call.get("model"),
                    sampling=weak_call.get("sampling"),
                )
            drafts.append(d)
        record["drafts"] = upsert_by_id(record["drafts"], drafts)
    if out.get("candidates"):
        record["candidates"] = upsert_by_id(record["candidates"], list(out["candidates"]))
    if out.get("alone"):
        record["alone"] = {**(record.get("alone") or {}), **out["alone"]}
    for key in ("answer", "best"):
        if key in out:
            record[key] = out[key]


def summarise(record: TraceRecord) -> None:
    best = record.get("best") or {}
    record["best_score"] = best.get("score")
    calls = [c for n in record["nodes"] for c in n["calls"]]
    weak = [c for c in calls if c["role"] == "weak"]
    strong = [c for c in calls if c["role"] in ("strong", "alone")]
    if weak:
        record["weak_model"] = weak[-1].get("model")
        record["adapter_version"] = weak[-1].get("adapter_version")
    if strong:
        record["strong_model"] = strong[-1].get("model")
    usage: dict[str, Any] = {}
    for role in ROLES:
        mine = [c for c in calls if c["role"] == role]
        usage[role] = {
            "calls": len(mine),
            "input_tokens": sum(c["usage"]["input_tokens"] for c in mine if "usage" in c),
            "output_tokens": sum(c["usage"]["output_tokens"] for c in mine if "usage" in c),
        }
    record["usage"] = cast(Usage, usage)
