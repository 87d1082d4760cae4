"""Continuous improvement: traces -> pairs -> DPO -> promotion gate -> `DIR/current`, in rounds.

Each round takes the traces no earlier round used (run ids recorded per round in
`DIR/rounds/rNNN.json`, so a trace never trains twice), builds collaborative-feedback pairs,
trains DPO from the current adapter, evaluates candidate and current CoWest on the same held-out
questions, and promotes the candidate only when the gate passes (`cowest_graph.gate`). With
`collect=` it first runs the graph over those questions with the current adapter (a closed loop
without live traffic). A round's steps are recorded as they finish, so a killed run resumes at
the step it was in; a second `improve` on the same directory refuses to start (a lock).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cowest_graph.atomic import write_json_atomic
from cowest_graph.data import Example
from cowest_graph.evaluate import ConditionResult, evaluate_graph, keyword_judge
from cowest_graph.gate import GateConfig
from cowest_graph.prompts import CowestPrompts

LOCK = ".improve.lock"


class ImproveLockedError(RuntimeError):
    """Another `improve` holds the adapters directory."""


@contextmanager
def improve_lock(root: str | Path) -> Iterator[None]:
    """Hold `root/.improve.lock` (an OS file lock, released when the process dies).

    Example:
        >>> with improve_lock("adapters"):  # doctest: +SKIP
        ...     pass
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    handle = (root / LOCK).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ImproveLockedError(
            f"{root} is being improved by {holder}: one `improve` per adapters directory at a time"
        ) from exc
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
    handle.flush()
    try:
        yield
    finally:
        handle.close()


async def evaluate_adapter(
    name: str,
    weak: Any,
    adapter: str | Path,
    examples: Sequence[Example],
    strong: Any,
    *,
    prompts: CowestPrompts | None = None,
    scorer: Callable[[str, str, str | None], float] | None = None,
    judge: Callable[[str, str | None], tuple[bool, bool]] = keyword_judge,
    concurrency: int = 1,
) -> ConditionResult:
    """CoWest with `adapter` on the weak model: one greedy draft per question, the reference
    withheld; the weak model is left with `adapter` loaded.

    Example:
        >>> asyncio.run(evaluate_adapter("v0002", weak, "adapters/v0002", examples, strong))  # doctest: +SKIP
    """
    from cowest_graph.graph import create_cowest_graph

    weak.load_adapter(adapter)
    drafter = weak.model_copy(update={"temperature": 0.0})
    graph = create_cowest_graph(drafter, strong, scorer=scorer, num_drafts=1, prompts=prompts).compile()
    return await evaluate_graph(name, graph, examples, judge=judge, concurrency=concurrency)


def read_rounds(root: str | Path) -> list[dict[str, Any]]:
    """The recorded rounds, oldest first."""
    folder = Path(root) / "rounds"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("r*.json"))]


def write_round(root: str | Path, record: dict[str, Any]) -> Path:
    """Record (atomically) one round's state; a finished round has `done: true`."""
    return write_json_atomic(Path(root) / "rounds" / f"r{record['round']:03d}.json", record)


def used_run_ids(root: str | Path) -> set[str]:
    """Run ids that earlier rounds trained on."""
    return {run_id for r in read_rounds(root) for run_id in r.get("run_ids", [])}


_SEED_STRIDE = 1_000_003
"""Distance between two rounds' sampling seeds (a draft's seed is the round's + its index)."""


def improve(
    store: str,
    adapters: str | Path,
    eval_file: str | Path,
    *,
    strong: Any = "qwen",
    rounds: int = 1,
    collect: str | Path | None = None,
    since: float | None = None,
    prompts: CowestPrompts | None = None,
    scorer: Callable[[str, str, str | None], float] | None = None,
    judge: Callable[[str, str | None], tuple[bool, bool]] | None = None,
    gate: GateConfig | None = None,
    dpo: Any = None,
    min_margin: float = 0.1,
    num_drafts: int = 4,
    weak_backend: str | None = None,
    weak_temperature: float = 1.0,
    weak_max_new_tokens: int = 32,
    strong_max_new_tokens: int = 64,
    on_step: Callable[[int, str], None] | None = None,
) -> list[dict[str, Any]]:
    """Run `rounds` improvement rounds on the adapters directory and return their records.

    `strong` is a spec for `open_strong_model` (`qwen`, `smollm2`, a URL...) or a chat model.
    `DIR/current` must name the starting adapter; without it the newest version is promoted
    first. `on_step(round, step)` is called after every finished step (progress, tests).

    Example:
        >>> improve("sqlite:///traces.db", "adapters", "held_out.jsonl", rounds=3,
        ...         collect="questions.jsonl")  # doctest: +SKIP
    """
    import asyncio
    import contextlib

    from cowest_graph.adapters import current_adapter, latest_adapter, promote
    from cowest_graph.critique import answer_match
    from cowest_graph.data import load_questions
    from cowest_graph.evaluate import answer_judge
    from cowest_graph.models import load_weak_model
    from cowest_graph.models.strong import open_strong_model

    root = Path(adapters)
    held_out = load_questions(eval_file)  # bad input fails before anything is written
    questions = load_questions(collect) if collect is not None else None
    prompts = prompts or CowestPrompts()
    scorer = scorer or answer_match
    judge = judge or answer_judge
    gate = gate or GateConfig()
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    with improve_lock(root):
        if current_adapter(root) is None:
            start = latest_adapter(root)
            if start is None:
                raise FileNotFoundError(
                    f"no adapter under {root} to improve: train one first (cowest-graph sft)"
                )
            promote(root, start.name, action="initial")
        opened = (
            open_strong_model(strong, max_tokens=strong_max_new_tokens)
            if isinstance(strong, str)
            else contextlib.nullcontext(strong)
        )
        with opened as strong_model:
            weak = load_weak_model(
                backend=weak_backend,  # type: ignore[arg-type]
                adapter=root / "current",
                max_new_tokens=weak_max_new_tokens,
                temperature=weak_temperature,
            )
            records = asyncio.run(
                _rounds(
                    root,
                    store,
                    weak,
                    strong_model,
                    held_out,
                    questions,
                    rounds,
                    since,
                    prompts,
                    scorer,
                    judge,
                    gate,
                    dpo,
                    min_margin,
                    num_drafts,
                    on_step,
                )
            )
    return records


async def _rounds(
    root: Path,
    store: str,
    weak: Any,
    strong: Any,
    held_out: Sequence[Example],
    questions: Sequence[Example] | None,
    rounds: int,
    since: float | None,
    prompts: CowestPrompts,
    scorer: Any,
    judge: Any,
    gate: GateConfig,
    dpo: Any,
    min_margin: float,
    num_drafts: int,
    on_step: Callable[[int, str], None] | None,
) -> list[dict[str, Any]]:
    from cowest_graph.adapters import CURRENT, current_adapter, promote, read_manifest, write_manifest
    from cowest_graph.collect import acollect
    from cowest_graph.feedback import build_preference_pairs
    from cowest_graph.gate import gate_decision
    from cowest_graph.graph import create_cowest_graph
    from cowest_graph.report import write_report
    from cowest_graph.store import RunFilter, open_trace_store
    from cowest_graph.tracing import CowestTracer
    from cowest_graph.train import DPOTrainConfig, train_dpo

    done_rounds = [r for r in read_rounds(root) if r.get("done")]
    out: list[dict[str, Any]] = []
    first = len(done_rounds) + 1
    for number in range(first, first + rounds):
        existing = next((r for r in read_rounds(root) if r["round"] == number), None)
        rec: dict[str, Any] = existing or {"round": number, "steps": [], "done": False}
        parent = Path(rec.get("parent") or current_adapter(root) or "")
        rec["parent"] = str(parent)

        def finish(step: str, rec: dict[str, Any] = rec, number: int = number) -> None:
            rec["steps"].append(step)
            write_round(root, rec)
            if rec.get("done"):  # every finished round is in the report at once
                write_report(root, read_rounds(root))
            if on_step is not None:
                on_step(number, step)

        # The current adapter drafts this round's traces: follow the link again, since the last
        # round's evaluation left the weak model on a version directory.
        weak.load_adapter(root / CURRENT)
        if questions is not None and "collected" not in rec["steps"]:
            tracer = CowestTracer(store, metadata={"improve_round": number})
            # Each round samples its own drafts: training reseeds the global RNGs (TRL's
            # set_seed), so unseeded sampling would replay the previous round's drafts. A seed per
            # round keeps a resumed round's drafts the same, and rounds apart (strided past k).
            drafter = weak.model_copy(update={"seed": number * _SEED_STRIDE})
            graph = create_cowest_graph(
                drafter, strong, scorer=scorer, num_drafts=num_drafts, prompts=prompts, measure_influence=True
            ).compile()
            report = await acollect(graph, questions, tracer, concurrency=1, resume=False, progress=False)
            await tracer.aflush()
            tracer.store.close()
            rec["collected"] = report.succeeded
            finish("collected")
        if "pairs" not in rec["steps"]:
            used = used_run_ids(root)
            with open_trace_store(store, create=False) as reader:  # ids from the summaries only
                fresh = [r.run_id for r in reader.list_runs(RunFilter(since=since)) if r.run_id not in used]
            rec["run_ids"] = fresh
            try:
                pairs = build_preference_pairs(
                    _Runs(store, since, set(fresh)), min_margin=min_margin, eval_fraction=0.0
                )
            except ValueError as exc:  # no pairs: the round ends without a candidate
                rec.update(pairs=0, skipped=str(exc), done=True)
                finish("pairs")
                out.append(rec)
                continue
            pairs.save_to_disk(str(root / "rounds" / f"r{number:03d}-pairs"))
            rec["pairs"] = pairs["train"].num_rows
            rec["mean_delta"] = pairs.report.mean_delta
            rec["examples"] = [
                {
                    "question": row["question"],
                    "chosen": row["chosen"][0]["content"],
                    "rejected": row["rejected"][0]["content"],
                    "delta_chosen": row["delta_chosen"],
                    "delta_rejected": row["delta_rejected"],
                }
                for row in pairs["train"].select(range(min(3, pairs["train"].num_rows)))
            ]
            finish("pairs")
        if "trained" not in rec["steps"]:
            import datasets

            pairs = datasets.load_from_disk(str(root / "rounds" / f"r{number:03d}-pairs"))
            result = train_dpo(
                pairs, output_dir=root, adapter=parent, config=dpo or DPOTrainConfig(), resume=True
            )
            rec["candidate"] = str(result.adapter_dir)
            metrics = result.metrics
            rec["dpo"] = {k: metrics.get(k) for k in ("steps", "first_loss", "last_loss", "log")}
            finish("trained")
        if "evaluated" not in rec["steps"]:
            kw: dict[str, Any] = {"prompts": prompts, "scorer": scorer, "judge": judge}
            current = await evaluate_adapter("current", weak, parent, held_out, strong, **kw)
            candidate = await evaluate_adapter("candidate", weak, rec["candidate"], held_out, strong, **kw)
            rec["results"] = {
                name: {**r.summary(), "correct": r.correct, "answers": r.answers}
                for name, r in (("current", current), ("candidate", candidate))
            }
            finish("evaluated")
        if "decided" not in rec["steps"]:
            current, candidate = (_condition(rec["results"][k]) for k in ("current", "candidate"))
            decision = gate_decision(current, candidate, held_out, gate)
            manifest = read_manifest(rec["candidate"]) or {}
            write_manifest(rec["candidate"], {**manifest, "gate": decision.as_dict()})
            if decision.promote:
                promote(root, Path(rec["candidate"]).name)
            rec.update(gate=decision.as_dict(), promoted=decision.promote, done=True)
            finish("decided")
        out.append(rec)
    return out


class _Runs:
    """The runs of `store` whose ids are in `ids`, read from the store afresh on every iteration
    (the pair builder reads them twice, streaming, instead of holding them all)."""

    def __init__(self, store: str, since: float | None, ids: set[str]) -> None:
        self.store, self.since, self.ids = store, since, ids

    def __iter__(self) -> Iterator[dict[str, Any]]:
        from cowest_graph.store import RunFilter, open_trace_store

        with open_trace_store(self.store, create=False) as reader:
            for record in reader.iter_runs(RunFilter(since=self.since)):
                if record["run_id"] in self.ids:
                    yield record


def _condition(data: dict[str, Any]) -> ConditionResult:
    fields = {k: v for k, v in data.items() if k in ConditionResult.__dataclass_fields__}
    return ConditionResult(**fields)
