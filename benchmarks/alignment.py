"""Does collaborative-feedback alignment pay? Weak alone, strong alone, CoWest and CoWest after
each training recipe, on the large Quillfeather domain, with the real strong model.

    python -m benchmarks.alignment                     # hours on 2 cores; resumable
    python -m benchmarks.alignment --recipes dpo,rft   # a subset of the recipes

Data (`examples/data/quillfeather/large/`, templates disjoint across splits): SFT on the demo's
72 rule rows, collection on the 240 `collect` questions, every choice on the 120 `validation`
questions, report rows on the 240 `test` questions (each read once per reported row).

Recipes, all from the SFT adapter and on the same pairs: `dpo` (TRL sigmoid DPO), `robust`
(robust DPO, label smoothing 0.1), `rpo` (DPO + NLL on the chosen draft), `rft` (SFT on the chosen
drafts only: rejection-sampling fine-tuning) and `sft+1` (one more SFT epoch on the domain rows).

The primary comparison, named before the run: on the test split, CoWest after the recipe with
the best validation accuracy minus CoWest (SFT weak), for the drafter; every recipe-vs-CoWest
comparison of the table is Holm-corrected together (the primary one included).

Every step goes through one step log (`cowest_graph.pipeline.StepLog`); the log is mirrored to
`benchmarks/results/<name>-steps.json` and the pairs to `benchmarks/results/pairs/`, so a run on
a fresh machine trains SFT again and, when its adapter comes out the same (SHA-256), reuses the
kept pairs and every finished evaluation instead of paying for them again. The strong model is
greedy and answers a distinct prompt once (`SQLiteChatCache`): conditions whose drafts coincide
share its answers.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, machine, print_table, step
from cowest_graph.adapters import adapter_sha256
from cowest_graph.atomic import write_json_atomic
from cowest_graph.collect import CollectionRecipe, acollect
from cowest_graph.critique import answer_match
from cowest_graph.data import Example, load_questions
from cowest_graph.evaluate import (
    ConditionResult,
    answer_judge,
    drafts_as_answers,
    evaluate_graph,
    evaluate_model_alone,
    holm,
    paired_difference,
    wilson_interval,
)
from cowest_graph.loop import EXAMPLE_DATA, LoopConfig
from cowest_graph.pipeline import (
    AdapterArtifact,
    EvalArtifact,
    PairsArtifact,
    StepLog,
    code_version,
    decode_artifact,
)
from cowest_graph.prompts import CowestPrompts
from cowest_graph.train import DPOTrainConfig, SFTTrainConfig

LARGE = EXAMPLE_DATA / "large"
RECIPES = ("dpo", "rft", "rpo", "robust", "sft+1")
"""In the order a run measures them: the paper's DPO, then the baseline a reviewer asks for first."""
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class AlignmentConfig:
    """Settings of one alignment run (the fields marked `identity` name the run for resuming)."""

    drafter: str = field(default="smollm2-135m", metadata={"help": "The weak model (drafter) name."})
    strong: str = field(default="qwen", metadata={"help": "Strong model spec (`open_strong_model`)."})
    recipes: tuple[str, ...] = field(default=RECIPES, metadata={"help": f"Training recipes, of {RECIPES}."})
    collection: CollectionRecipe = field(default_factory=CollectionRecipe)
    limit: int | None = field(
        default=None,
        metadata={"help": "Use only the first N questions of each split (a smoke run: pass --results too)."},
    )
    max_steps: int = field(default=-1, metadata={"help": "Cap every training run (a smoke run; -1: off)."})
    work: Path = field(
        default=Path.home() / ".cache" / "cowest_graph" / "alignment-work",
        metadata={"help": "Work folder (adapters, traces, the step log, the strong-answer cache)."},
    )
    name: str = field(default="alignment", metadata={"help": "Results file stem under benchmarks/results/."})
    results: Path = field(default=RESULTS, metadata={"help": "Where the results, steps and pairs go."})

    def __post_init__(self) -> None:
        unknown = [r for r in self.recipes if r not in RECIPES]
        if unknown:
            raise ValueError(f"unknown recipe(s) {unknown}; choose from {RECIPES}")
        if self.drafter != "smollm2-135m":
            raise ValueError(f"drafter {self.drafter!r} is not available yet (only 'smollm2-135m')")


def train_configs(max_steps: int) -> dict[str, Any]:
    """Each recipe's training config: the demo's SFT and DPO settings, changed only where the
    recipe is defined by the change."""
    loop = LoopConfig()
    dpo = replace(loop.dpo, max_steps=max_steps)
    return {
        "sft": replace(loop.sft, max_steps=max_steps),
        "dpo": dpo,
        "robust": replace(dpo, loss_type="robust", label_smoothing=0.1),
        "rpo": replace(dpo, loss_type=("sigmoid", "sft"), loss_weights=(1.0, 1.0)),
        "rft": SFTTrainConfig(
            num_train_epochs=2, learning_rate=2e-4, per_device_train_batch_size=8, max_steps=max_steps
        ),
        "sft+1": replace(loop.sft, num_train_epochs=1, max_steps=max_steps),
    }


def condition_name(recipe: str) -> str:
    """The display name of CoWest with a recipe's adapter ('sft': the SFT adapter itself)."""
    return "CoWest (SFT weak)" if recipe == "sft" else f"CoWest aligned ({recipe})"


def _config_key(config: Any) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(config), default=str))


def chosen_rows(pairs_path: Path) -> list[dict[str, Any]]:
    """The distinct (prompt, chosen draft) rows of a pairs file: the rejection-sampling SFT data.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "pairs.jsonl"
    >>> row = {"prompt": [{"role": "user", "content": "q"}],
    ...        "chosen": [{"role": "assistant", "content": "a"}]}
    >>> _ = p.write_text(json.dumps(row) + "\\n" + json.dumps(row) + "\\n")
    >>> [r["completion"][0]["content"] for r in chosen_rows(p)]
    ['a']
    """
    seen: dict[str, dict[str, Any]] = {}
    for line in pairs_path.read_text().splitlines():
        row = json.loads(line)
        key = json.dumps([row["prompt"], row["chosen"]])
        seen.setdefault(key, {"prompt": row["prompt"], "completion": row["chosen"]})
    return list(seen.values())


class AlignmentRun:
    """One drafter's run: its step log, models, data and results file."""

    def __init__(self, config: AlignmentConfig, strong: Any) -> None:
        from cowest_graph.models.cache import SQLiteChatCache, cached

        self.config = config
        self.work = Path(config.work) / config.drafter
        self.work.mkdir(parents=True, exist_ok=True)
        self.kept_steps = config.results / f"{config.name}-steps.json"
        log_path = self.work / "steps.json"
        if not log_path.exists() and self.kept_steps.exists():
            shutil.copyfile(self.kept_steps, log_path)  # a fresh machine starts from the kept log
        self.log = StepLog(log_path)
        self.cache = SQLiteChatCache(self.work / "strong-cache.db")
        self.strong = cached(strong, self.cache)
        loop = LoopConfig()
        self.loop = loop
        self.prompts = CowestPrompts(
            weak_system=loop.weak_system, weak_user="Question: {question}"
        ).with_format(loop.answer_format)
        self.splits: dict[str, list[Example]] = {
            split: load_questions(LARGE / f"{split}.jsonl")[: config.limit]
            for split in ("collect", "validation", "test")
        }
        self.trains = train_configs(config.max_steps)
        self.weak: Any = None
        self.results_path = config.results / f"{config.name}.json"
        self.kept_traces = config.results / "traces" / f"{config.name}-{config.drafter}-collect.jsonl.gz"

    # -- steps -----------------------------------------------------------------------------------
    def _weak(self, adapter: str) -> Any:
        from cowest_graph.models import load_weak_model

        if self.weak is None:
            self.weak = load_weak_model(
                adapter=adapter,
                max_new_tokens=self.loop.weak_max_new_tokens,
                temperature=self.loop.weak_temperature,
            )
        else:
            self.weak.load_adapter(adapter)
        return self.weak

    def _adapter(self, kind: str, train: Callable[[], Any], rows: int) -> AdapterArtifact:
        start = time.perf_counter()
        result = train()
        return AdapterArtifact(
            path=str(result.adapter_dir),
            sha256=adapter_sha256(result.adapter_dir),
            kind=kind,
            train_rows=rows,
            wall_s=time.perf_counter() - start,
        )

    async def _kept(self, name: str, key: dict[str, Any], fn: Callable[[], Any], kind: type) -> Any:
        """A step through the log (`fn` sync or async); an adapter whose directory is gone (the log
        came from another machine) is trained again. The log is mirrored to the results."""
        got = self.log.get(name, key)
        if got is not None and kind is AdapterArtifact and not Path(got["path"]).exists():
            self.log.forget(name)

        async def call() -> Any:
            out = fn()
            return await out if asyncio.iscoroutine(out) else out

        artifact = await self.log.arun(name, key, call, kind)
        write_json_atomic(self.kept_steps, self.log.steps, indent=1, sort_keys=True)
        return artifact

    async def sft(self) -> AdapterArtifact:
        from cowest_graph.train import train_sft

        config = self.trains["sft"]
        data = EXAMPLE_DATA / "sft.jsonl"
        key = {"config": _config_key(config), "data": data.read_text()}
        step("1. SFT of the weak model on the domain rows")
        art = await self._kept(
            "sft",
            key,
            lambda: self._adapter(
                "sft",
                lambda: train_sft(
                    data, output_dir=self.work / "adapters", config=config, prompts=self.prompts
                ),
                len(data.read_text().splitlines()),
            ),
            AdapterArtifact,
        )
        if self.log.steps.get("sft", {}).get("artifact", {}).get("sha256") != art.sha256:
            raise RuntimeError("the SFT step log and its adapter disagree")
        return art

    async def pairs(self, sft: AdapterArtifact) -> PairsArtifact:
        recipe = self.config.collection
        key = {
            "sft": sft.sha256,
            "recipe": recipe.as_dict(),
            "questions": [e.id for e in self.splits["collect"]],
        }
        pairs_file = self.config.results / "pairs" / f"{self.config.name}-{self.config.drafter}.jsonl"

        async def collect_and_pair() -> PairsArtifact:
            from cowest_graph.tracing import CowestTracer

            step(f"2. collect: {len(self.splits['collect'])} questions x {recipe.num_drafts} drafts")
            start = time.perf_counter()
            weak = self._weak(sft.path)
            graph = recipe.graph(
                weak, self.strong, scorer=answer_match, prompts=self.prompts, cache=self.cache
            )
            tracer = CowestTracer(
                f"sqlite:///{self.work / 'traces-collect.db'}", metadata={"phase": "collect"}
            )
            adopted = adopt_traces(self.kept_traces, key, tracer.store)
            if adopted:
                step(f"adopted {adopted} collected runs kept by an earlier machine ({self.kept_traces.name})")
            report = await acollect(graph, self.splits["collect"], tracer, concurrency=1)
            step(f"collected {report.succeeded} new, skipped {report.skipped}, failed {report.failed}")
            pairs = recipe.pairs(tracer.store, eval_fraction=0.0)
            rows = [
                {k: r[k] for k in ("prompt", "chosen", "rejected", "question", "margin")}
                for r in pairs["train"]
            ]
            pairs_file.parent.mkdir(parents=True, exist_ok=True)
            pairs_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
            rep = pairs.report
            return PairsArtifact(
                path=str(pairs_file.relative_to(ROOT) if pairs_file.is_relative_to(ROOT) else pairs_file),
                pairs=rep.pairs,
                prompts=rep.prompts,
                prompts_with_pairs=rep.prompts_with_pairs,
                report=rep.as_dict(),
                wall_s=time.perf_counter() - start,
            )

        art = await self._kept("pairs", key, collect_and_pair, PairsArtifact)
        if not self._path(art.path).exists():
            raise FileNotFoundError(
                f"kept pairs {art.path} are missing: delete the 'pairs' step to collect again"
            )
        return art

    def _path(self, path: str) -> Path:
        return repo_path(path)

    def _train_data(self, recipe: str, pairs: PairsArtifact) -> tuple[Any, int]:
        """What `recipe` trains on, and how many rows that is."""
        if recipe == "sft+1":
            data = EXAMPLE_DATA / "sft.jsonl"
            return data, len(data.read_text().splitlines())
        if recipe == "rft":
            rows = chosen_rows(self._path(pairs.path))
            return rows, len(rows)
        return self._path(pairs.path), pairs.pairs

    def train_key(self, recipe: str, sft: AdapterArtifact, pairs: PairsArtifact) -> dict[str, Any]:
        """What a recipe's adapter depends on: the SFT adapter, the recipe's config, the pairs."""
        if recipe == "sft":
            return {"sft": sft.sha256}
        config = self.trains[recipe]
        return {"sft": sft.sha256, "recipe": recipe, "config": _config_key(config), "pairs": pairs.report}

    async def train(self, recipe: str, sft: AdapterArtifact, pairs: PairsArtifact) -> AdapterArtifact:
        """The recipe's adapter, trained from the SFT adapter (only when an evaluation needs it)."""
        from cowest_graph.train import train_dpo, train_sft

        if recipe == "sft":
            return sft
        config = self.trains[recipe]
        rows, n_rows = self._train_data(recipe, pairs)
        out = self.work / "adapters"

        def fit() -> Any:
            step(f"3. train {recipe} from the SFT adapter ({n_rows} rows)")
            if isinstance(config, DPOTrainConfig):
                return train_dpo(rows, output_dir=out, adapter=sft.path, config=config)
            return train_sft(rows, output_dir=out, adapter=sft.path, config=config, prompts=self.prompts)

        key = self.train_key(recipe, sft, pairs)
        return await self._kept(
            f"train:{recipe}", key, lambda: self._adapter(recipe, fit, n_rows), AdapterArtifact
        )

    async def evaluate(
        self, recipe: str, split: str, sft: AdapterArtifact | None = None, pairs: PairsArtifact | None = None
    ) -> EvalArtifact:
        """CoWest with `recipe`'s adapter (one greedy draft), or strong alone (`recipe` "strong"),
        on `split`. A kept evaluation needs no adapter: the adapter is trained only to measure."""
        from cowest_graph.tracing import CowestTracer

        examples = self.splits[split]
        alone = recipe == "strong"
        name = "strong alone" if alone else condition_name(recipe)
        adapter_key = None if alone or sft is None or pairs is None else self.train_key(recipe, sft, pairs)
        key = {"adapter": adapter_key, "questions": [e.id for e in examples]}

        async def measure() -> ConditionResult:
            if alone or sft is None or pairs is None:
                return await evaluate_model_alone(
                    name,
                    self.strong,
                    examples,
                    judge=answer_judge,
                    prompts=self.prompts,
                    counts_as_strong=True,
                    concurrency=1,
                    progress=True,
                )
            from cowest_graph.graph import create_cowest_graph

            adapter = await self.train(recipe, sft, pairs)
            weak = self._weak(adapter.path)
            drafter = weak.model_copy(update={"temperature": 0.0})
            graph = create_cowest_graph(
                drafter, self.strong, scorer=answer_match, num_drafts=1, prompts=self.prompts
            ).compile()
            tracer = CowestTracer(f"sqlite:///{self.work / f'eval-{recipe}-{split}.db'}")
            return await evaluate_graph(
                name,
                graph,
                examples,
                judge=answer_judge,
                concurrency=1,
                tracer=tracer,
                resume=True,
                progress=True,
            )

        async def run() -> EvalArtifact:
            step(f"4. evaluate {name} on {split} ({len(examples)} questions)")
            before = len(self.cache)
            result = await measure()
            low, high = wilson_interval(sum(result.correct), result.n)
            return EvalArtifact(
                condition=name,
                split=split,
                n=result.n,
                accuracy=result.accuracy,
                ci_low=low,
                ci_high=high,
                strong_calls_per_q=(len(self.cache) - before) / max(1, result.n),
                wall_s=result.wall_s,
                correct=result.correct,
                answers=result.answers,
                drafts=result.drafts,
            )

        return await self._kept(f"eval:{recipe}:{split}", key, run, EvalArtifact)

    # -- the run ---------------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        """Every step in order of what the table needs first; each finished row is written at once."""
        sft = await self.sft()
        pairs = await self.pairs(sft)
        evals: dict[tuple[str, str], EvalArtifact] = {}

        async def row(recipe: str, split: str) -> None:
            evals[(recipe, split)] = await self.evaluate(recipe, split, sft, pairs)
            self.write(evals, pairs)

        await row("strong", "test")
        await row("sft", "test")
        await row("sft", "validation")
        # Recipe by recipe, validation then test: every row is measured and reported (the choice
        # reads validation only), and a cut run has whole recipes, not all validations and no test.
        for recipe in self.config.recipes:
            await row(recipe, "validation")
            await row(recipe, "test")
        return self.write(evals, pairs)

    def write(self, evals: dict[tuple[str, str], EvalArtifact], pairs: PairsArtifact) -> dict[str, Any]:
        """The results file as it stands (written after every finished row)."""
        payload = summarise(self.config, evals, pairs, self.splits, self.log)
        write_json_atomic(self.results_path, {"machine": machine(), **payload}, indent=1)
        return payload


def keep_traces(store_url: str, key: dict[str, Any], path: Path) -> int:
    """Keep a (maybe unfinished) collection's traces in the results, gzipped, under the key of the
    collection they belong to, so a session cut mid-collection loses none of its strong calls.

    >>> import tempfile
    >>> from cowest_graph.store import open_trace_store
    >>> d = Path(tempfile.mkdtemp())
    >>> record = {"run_id": "r1", "started_at": 0.0, "status": "success"}
    >>> open_trace_store(f"sqlite:///{d}/a.db").write_run(record)
    >>> keep_traces(f"sqlite:///{d}/a.db", {"sft": "x"}, d / "kept.jsonl.gz")
    1
    >>> store = open_trace_store(f"sqlite:///{d}/b.db")
    >>> kept = d / "kept.jsonl.gz"
    >>> adopt_traces(kept, {"sft": "y"}, store), adopt_traces(kept, {"sft": "x"}, store)
    (0, 1)
    """
    import gzip

    from cowest_graph.store import open_trace_store

    store = open_trace_store(store_url, create=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    n = 0
    with gzip.open(tmp, "wt") as out:
        out.write(json.dumps({"key": key}) + "\n")
        for record in store.iter_runs(status="success"):
            out.write(json.dumps(record, default=str) + "\n")
            n += 1
    tmp.replace(path)
    return n


def adopt_traces(path: Path, key: dict[str, Any], store: Any) -> int:
    """Write the kept runs of `path` into `store` when they were collected under `key` and the
    store lacks them; return how many were written."""
    import gzip

    if not path.exists():
        return 0
    with gzip.open(path, "rt") as handle:
        header = json.loads(handle.readline())
        if header.get("key") != json.loads(json.dumps(key, default=str)):
            return 0
        have = {r.run_id for r in store.list_runs()}
        n = 0
        for line in handle:
            record = json.loads(line)
            if record["run_id"] not in have:
                store.write_run(record)
                n += 1
    return n


def _as_condition(art: EvalArtifact) -> ConditionResult:
    return ConditionResult(
        art.condition,
        art.n,
        art.accuracy,
        art.ci_low,
        art.ci_high,
        None,
        0.0,
        art.strong_calls_per_q,
        0.0,
        art.wall_s,
        correct=list(art.correct),
        answers=list(art.answers),
        drafts=list(art.drafts),
    )


def rules_changed(first: EvalArtifact, second: EvalArtifact, examples: list[Example]) -> dict[str, list[str]]:
    """Which rules `second` fixed (right where `first` was wrong) and broke, question by question.

    >>> a = EvalArtifact("a", "test", 2, 0.5, 0, 1, 1, 0, correct=[1, 0])
    >>> b = EvalArtifact("b", "test", 2, 0.5, 0, 1, 1, 0, correct=[0, 1])
    >>> ex = [Example("1", "q", "3", {"rule": "expense"}), Example("2", "q", "4", {"rule": "team"})]
    >>> rules_changed(a, b, ex)
    {'fixed': ['team'], 'broke': ['expense']}
    """
    fixed = [
        e.meta.get("rule", "?")
        for e, x, y in zip(examples, first.correct, second.correct, strict=True)
        if y > x
    ]
    broke = [
        e.meta.get("rule", "?")
        for e, x, y in zip(examples, first.correct, second.correct, strict=True)
        if y < x
    ]
    return {"fixed": sorted(fixed), "broke": sorted(broke)}


def summarise(
    config: AlignmentConfig,
    evals: dict[tuple[str, str], EvalArtifact],
    pairs: PairsArtifact,
    splits: dict[str, list[Example]],
    log: StepLog,
) -> dict[str, Any]:
    """Rows, paired differences (Holm across the recipe-vs-CoWest comparisons), the recipe chosen
    on validation, and what each recipe fixed and broke."""
    commit = code_version(ROOT)
    rows: list[dict[str, Any]] = []
    for (recipe, split), art in evals.items():
        rows.append(
            {
                "drafter": config.drafter,
                "recipe": recipe,
                "condition": art.condition,
                "split": split,
                "n": art.n,
                "accuracy": art.accuracy,
                "ci_low": art.ci_low,
                "ci_high": art.ci_high,
                "strong_calls_per_q": art.strong_calls_per_q,
                "wall_s": art.wall_s,
                "commit": log.steps.get(f"eval:{recipe}:{split}", {}).get("commit", commit),
                "outcomes": "".join(str(c) for c in art.correct),
                "drafts_state_rule": rule_stated(list(art.drafts), splits[split]),
            }
        )
        if (recipe, split) == ("sft", "test"):
            weak = drafts_as_answers(
                "weak alone (SFT)", _as_condition(art), splits[split], judge=answer_judge
            )
            low, high = wilson_interval(sum(weak.correct), weak.n)
            rows.append(
                {
                    "drafter": config.drafter,
                    "recipe": "sft",
                    "condition": "weak alone (SFT)",
                    "split": split,
                    "n": weak.n,
                    "accuracy": weak.accuracy,
                    "ci_low": low,
                    "ci_high": high,
                    "commit": rows[-1]["commit"],
                    "outcomes": "".join(str(c) for c in weak.correct),
                }
            )
    validation = {r: a.accuracy for (r, s), a in evals.items() if s == "validation" and r != "sft"}
    chosen = max(validation, key=lambda r: (validation[r], -list(RECIPES).index(r))) if validation else None
    paired: list[dict[str, Any]] = []
    changes: dict[str, dict[str, list[str]]] = {}
    base = evals.get(("sft", "test"))
    if base is not None:
        if ("strong", "test") in evals:
            d = paired_difference(_as_condition(evals[("strong", "test")]), _as_condition(base))
            paired.append(_paired_row(config, "sft", "strong alone", d))
        for (recipe, split), art in evals.items():
            if split != "test" or recipe in ("sft", "strong"):
                continue
            d = paired_difference(_as_condition(base), _as_condition(art))
            paired.append(_paired_row(config, recipe, "CoWest (SFT weak)", d))
            changes[recipe] = rules_changed(base, art, splits["test"])
    family = [p for p in paired if p["against"] == "CoWest (SFT weak)"]
    for p, adjusted in zip(family, holm([p["p"] for p in family]), strict=True):
        p["p_holm"] = adjusted
    reading = pair_reading(pairs, splits)
    return {
        "benchmark": "alignment",
        "commit": commit,
        "primary": "test: CoWest after the recipe chosen on validation - CoWest (SFT weak)",
        "chosen_on_validation": chosen,
        "collection": config.collection.as_dict(),
        "pairs": {
            "path": pairs.path,
            "pairs": pairs.pairs,
            "prompts": pairs.prompts,
            "prompts_with_pairs": pairs.prompts_with_pairs,
            "rules": len(reading.get("pairs_per_rule", {})),
            "dropped": pairs.report.get("dropped"),
            "wall_s": pairs.wall_s,
        },
        "pair_reading": reading,
        "steps_wall_s": {name: s["artifact"].get("wall_s") for name, s in log.steps.items()},
        "rows": rows,
        "paired": paired,
        "rules_changed": changes,
    }


def _paired_row(config: AlignmentConfig, recipe: str, against: str, d: dict[str, Any]) -> dict[str, Any]:
    return {
        "drafter": config.drafter,
        "recipe": recipe,
        "against": against,
        "diff": d["difference"],
        "ci_low": d["ci_low"],
        "ci_high": d["ci_high"],
        "wins": d["second_only"],
        "losses": d["first_only"],
        "p": d["mcnemar_p"],
        "p_holm": None,
    }


@functools.cache
def _domain() -> Any:
    """The large domain's template module (`examples/data/quillfeather/templates.py`)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("quillfeather_templates", EXAMPLE_DATA / "templates.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look it up
    spec.loader.exec_module(module)
    return module


def rule_stated(drafts: list[str], examples: list[Example]) -> float | None:
    """The share of `drafts` that state their question's rule (`templates.states_rule`, a heuristic)."""
    if not drafts:
        return None
    domain = _domain()
    hits = [domain.states_rule(d, e.meta["rule"]) for d, e in zip(drafts, examples, strict=True)]
    return sum(hits) / len(hits)


def pair_reading(pairs: PairsArtifact, splits: dict[str, list[Example]]) -> dict[str, Any]:
    """What chosen and rejected drafts differ in: how often each states its question's rule."""
    path = repo_path(pairs.path)
    if not path.exists():
        return {}
    rule_of = {e.question: e.meta.get("rule") for e in splits["collect"]}
    domain = _domain()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows = [r for r in rows if rule_of.get(r["question"])]
    if not rows:
        return {}

    def share(side: str) -> float:
        return sum(domain.states_rule(r[side][0]["content"], rule_of[r["question"]]) for r in rows) / len(
            rows
        )

    per_rule: dict[str, int] = {}
    for r in rows:
        per_rule[rule_of[r["question"]]] = per_rule.get(rule_of[r["question"]], 0) + 1
    return {
        "chosen_states_rule": share("chosen"),
        "rejected_states_rule": share("rejected"),
        "pairs_per_rule": dict(sorted(per_rule.items())),
        "questions_with_pairs": len({r["question"] for r in rows}),
    }


def repo_path(path: str) -> Path:
    """An artifact's path: as recorded when absolute, else relative to the repository root."""
    return Path(path) if Path(path).is_absolute() else ROOT / path


def print_results(payload: dict[str, Any]) -> None:
    print_table(
        f"alignment ({payload['rows'][0]['drafter'] if payload['rows'] else '-'})",
        [
            {
                k: r.get(k)
                for k in ("condition", "split", "n", "accuracy", "ci_low", "ci_high", "strong_calls_per_q")
            }
            for r in payload["rows"]
        ],
    )
    if payload["paired"]:
        print_table(
            "paired on test (McNemar exact; Holm across recipe-vs-CoWest)",
            [
                {k: p[k] for k in ("recipe", "against", "diff", "wins", "losses", "p", "p_holm")}
                for p in payload["paired"]
            ],
        )
    print(f"chosen on validation: {payload['chosen_on_validation']}; pairs: {payload['pairs']}")


def plot(payload: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = [r for r in payload["rows"] if r["split"] == "test"]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(8, 3.8))
    acc = [r["accuracy"] for r in rows]
    err = [[r["accuracy"] - r["ci_low"] for r in rows], [r["ci_high"] - r["accuracy"] for r in rows]]
    ax.bar(range(len(rows)), acc, yerr=err, capsize=4, color="#66c2a5")
    ax.set_xticks(range(len(rows)), [r["condition"] for r in rows], rotation=15, ha="right", fontsize=8)
    ax.set_ylabel("test accuracy (95% Wilson)")
    ax.set_ylim(0, 1)
    ax.set_title(f"alignment on the large Quillfeather domain (n={rows[0]['n']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def report_from_log(config: AlignmentConfig) -> dict[str, Any]:
    """The results file again from the step log alone (no model is loaded): after a change to the
    summary, or to read a run in progress."""

    path = Path(config.work) / config.drafter / "steps.json"
    log = StepLog(path if path.exists() else config.results / f"{config.name}-steps.json")
    if "pairs" not in log.steps:
        raise SystemExit(f"no pairs step in {log.path}: nothing to report yet")
    pairs = decode_artifact(PairsArtifact, log.steps["pairs"]["artifact"])
    splits = {
        s: load_questions(LARGE / f"{s}.jsonl")[: config.limit] for s in ("collect", "validation", "test")
    }
    evals = {}
    for name, entry in log.steps.items():
        if name.startswith("eval:"):
            _, recipe, split = name.split(":")
            evals[(recipe, split)] = decode_artifact(EvalArtifact, entry["artifact"])
    order = ["strong", "sft", *config.recipes, *(r for r in RECIPES if r not in config.recipes)]

    def run_order(item: tuple[tuple[str, str], EvalArtifact]) -> tuple[int, int]:  # as `run` measures
        recipe, split = item[0]
        if recipe in ("strong", "sft"):
            return (0, 0 if recipe == "strong" else 1 + (split == "validation"))
        return (1 + order.index(recipe), split == "test")

    evals = dict(sorted(evals.items(), key=run_order))
    payload = summarise(config, evals, pairs, splits, log)
    write_json_atomic(config.results / f"{config.name}.json", {"machine": machine(), **payload}, indent=1)
    return payload


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from cowest_graph.models.strong import open_strong_model

    defaults = AlignmentConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strong", default=defaults.strong)
    parser.add_argument("--recipes", default=",".join(defaults.recipes))
    parser.add_argument("--num-drafts", type=int, default=defaults.collection.num_drafts)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument("--work", type=Path, default=defaults.work)
    parser.add_argument("--name", default=defaults.name)
    parser.add_argument("--results", type=Path, default=defaults.results)
    parser.add_argument(
        "--report-only", action="store_true", help="Only write the results again from the step log."
    )
    parser.add_argument(
        "--keep-traces",
        action="store_true",
        help="Only copy the collection's traces so far into the results (while a run collects).",
    )
    args = parser.parse_args(argv)
    config = AlignmentConfig(
        strong=args.strong,
        recipes=tuple(r for r in args.recipes.split(",") if r),
        collection=CollectionRecipe(num_drafts=args.num_drafts),
        limit=args.limit,
        max_steps=args.max_steps,
        work=args.work,
        name=args.name,
        results=args.results,
    )
    if args.report_only:
        payload = report_from_log(config)
        print_results(payload)
        plot(payload, config.results / f"{config.name}.png")
        return payload
    if args.keep_traces:
        work = Path(config.work) / config.drafter
        sft = StepLog(work / "steps.json").steps["sft"]["artifact"]
        questions = [e.id for e in load_questions(LARGE / "collect.jsonl")[: config.limit]]
        key = {"sft": sft["sha256"], "recipe": config.collection.as_dict(), "questions": questions}
        path = config.results / "traces" / f"{config.name}-{config.drafter}-collect.jsonl.gz"
        url = f"sqlite:///{work / 'traces-collect.db'}"
        print(f"kept {keep_traces(url, key, path)} runs in {path}")
        return {}
    with open_strong_model(config.strong, max_tokens=LoopConfig().strong_max_new_tokens) as strong:
        # One event loop for the whole run: ChatOpenAI binds its async client to the first loop.
        payload = asyncio.run(AlignmentRun(config, strong).run())
    print_results(payload)
    chart = plot(payload, config.results / f"{config.name}.png")
    print(f"results: {config.results / f'{config.name}.json'}" + (f", chart: {chart}" if chart else ""))
    return payload


if __name__ == "__main__":
    main()
