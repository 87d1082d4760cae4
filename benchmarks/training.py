"""Training throughput: `train_dpo` / `train_sft` against a plain TRL script on the same data and
settings, each variant in a fresh subprocess (peak RSS or peak CUDA memory of that process).

Speed is timed per optimizer step by a `TrainerCallback` in both variants; the first `--warmup`
steps of every run are dropped (allocation, first-call compilation), the rest are pooled over
alternating repeats, and the throughput ratio plain-time / cowest-time gets a 95% bootstrap
interval over steps.

    python -m benchmarks.training [--repeats 2] [--steps 12] [--warmup 2] [--model DIR]

Writes benchmarks/results/training.json. On a GPU machine, pass --model with a randomly
initialised larger model directory (see --make-random) for timing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import print_table, save, step

ROOT = Path(__file__).resolve().parent.parent


def make_data(folder: Path, n: int = 32) -> tuple[Path, Path]:
    import datasets

    filler = "The handbook says reports are filed on Fridays and reviewed by the duty officer. " * 2
    pairs = [
        {
            "prompt": [{"role": "user", "content": f"Question {i}: when are reports filed?"}],
            "chosen": [{"role": "assistant", "content": f"{filler} Answer: Friday ({i})."}],
            "rejected": [{"role": "assistant", "content": f"I am not sure about rule {i}."}],
        }
        for i in range(n)
    ]
    qa = [
        {"question": f"Question {i}: when are reports filed?", "answer": f"{filler} Answer: Friday."}
        for i in range(n)
    ]
    p, q = folder / "pairs", folder / "qa"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(pairs)}).save_to_disk(str(p))
    datasets.DatasetDict({"train": datasets.Dataset.from_list(qa)}).save_to_disk(str(q))
    return p, q


WORKER = r"""
import json, os, resource, sys, time
os.environ.setdefault("HF_HUB_OFFLINE", "1")
kind, variant, data, out, steps, batch, model_dir = sys.argv[1:8]
steps, batch = int(steps), int(batch)
import datasets, torch
from transformers import TrainerCallback
class StepTimer(TrainerCallback):
    def __init__(self):
        self.times, self.t0 = [], None
    def on_step_begin(self, args, state, control, **kw):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.t0 = time.perf_counter()
    def on_step_end(self, args, state, control, **kw):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - self.t0)
timer = StepTimer()
common = dict(max_steps=steps, per_device_train_batch_size=batch, learning_rate=5e-5, max_length=256,
              logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
              use_cpu=not torch.cuda.is_available(), bf16=torch.cuda.is_available(),
              gradient_checkpointing=False, seed=0, dataloader_num_workers=0)
if variant == "cowest":
    from cowest_graph.train import DPOTrainConfig, SFTTrainConfig, train_dpo, train_sft
    extra = {"save_strategy": "no"}
    cfg_cls = DPOTrainConfig if kind == "dpo" else SFTTrainConfig
    cfg = cfg_cls(max_steps=steps, per_device_train_batch_size=batch, learning_rate=5e-5, max_length=256,
                  disable_tqdm=True, extra=extra)
    base = None if model_dir == "-" else model_dir
    fn = train_dpo if kind == "dpo" else train_sft
    result = fn(data, output_dir=out, base_model=base, config=cfg, callbacks=[timer])
    m = result.metrics
    sps, runtime = m["train_samples_per_second"], m["train_runtime"]
else:
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer
    if model_dir == "-":
        from cowest_graph.models import ensure_default_model
        model_dir = str(ensure_default_model())
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto")
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05,
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM")
    ds = datasets.load_from_disk(data)["train"]
    if kind == "dpo":
        trainer = DPOTrainer(model=model, args=DPOConfig(output_dir=out, beta=0.1, **common),
                             train_dataset=ds, processing_class=tok, peft_config=lora, callbacks=[timer])
    else:
        from cowest_graph.prompts import CowestPrompts
        P = CowestPrompts()
        def row(ex):
            msgs = P.weak_messages(ex["question"])
            prompt = [{"role": "system", "content": msgs[0].text},
                      {"role": "user", "content": msgs[1].text}]
            return {"prompt": prompt,
                    "completion": [{"role": "assistant", "content": ex["answer"]}]}
        ds = ds.map(row, remove_columns=ds.column_names)
        trainer = SFTTrainer(model=model, args=SFTConfig(output_dir=out, **common), train_dataset=ds,
                             processing_class=tok, peft_config=lora, callbacks=[timer])
    trainer.train()
    logs = [h for h in trainer.state.log_history if "train_runtime" in h][-1]
    sps, runtime = logs["train_samples_per_second"], logs["train_runtime"]
peak = (torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available()
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print("RESULT " + json.dumps({"samples_per_s": sps, "train_runtime": runtime, "peak_mib": peak,
                              "step_s": timer.times}))
"""


def run_worker(kind: str, variant: str, data: Path, steps: int, batch: int, model: str) -> dict:
    out = tempfile.mkdtemp()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, kind, variant, str(data), out, str(steps), str(batch), model],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=3600,
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"{kind}/{variant} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[7:])


def make_random(path: Path, hidden: int, layers: int, base: str | None = None) -> None:
    """A randomly initialised Llama-shaped model (SmolLM2 tokenizer) for GPU timing; `base` is a
    directory with SmolLM2's config and tokenizer files (default: the embedded model)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from cowest_graph.models import ensure_default_model

    base = base or str(ensure_default_model())
    cfg = AutoConfig.from_pretrained(base)
    cfg.hidden_size, cfg.num_hidden_layers = hidden, layers
    cfg.intermediate_size, cfg.num_attention_heads, cfg.num_key_value_heads = (
        hidden * 3,
        hidden // 64,
        hidden // 256,
    )
    AutoModelForCausalLM.from_config(cfg).save_pretrained(path)
    AutoTokenizer.from_pretrained(base).save_pretrained(path)


def ratio_interval(
    plain: list[float], ours: list[float], *, seed: int = 0, n: int = 4000
) -> tuple[float, float]:
    """95% bootstrap interval of mean(plain) / mean(ours) over steps (throughput ours / plain)."""
    import random

    rng = random.Random(seed)
    ratios = sorted(
        statistics.fmean(rng.choices(plain, k=len(plain))) / statistics.fmean(rng.choices(ours, k=len(ours)))
        for _ in range(n)
    )
    return ratios[int(0.025 * n)], ratios[int(0.975 * n) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2, help="steps dropped at the start of every run")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--model", default="-", help="model directory (default: embedded SmolLM2)")
    parser.add_argument("--make-random", default=None, help="write a random 1.2B-ish model here and use it")
    parser.add_argument("--random-from", default=None, help="config + tokenizer dir for --make-random")
    parser.add_argument("--name", default="training")
    args = parser.parse_args()
    if args.make_random:
        make_random(Path(args.make_random), hidden=2048, layers=20, base=args.random_from)
        args.model = args.make_random
    pairs, qa = make_data(Path(tempfile.mkdtemp()))
    rows = []
    for kind, data in (("dpo", pairs), ("sft", qa)):
        results: dict[str, list[dict]] = {"cowest": [], "plain_trl": []}
        for i in range(args.repeats):
            order = ["cowest", "plain_trl"] if i % 2 == 0 else ["plain_trl", "cowest"]
            for variant in order:
                step(f"{kind}: {variant}, repeat {i + 1}/{args.repeats}")
                results[variant].append(run_worker(kind, variant, data, args.steps, args.batch, args.model))
        steps = {v: [t for r in rs for t in r["step_s"][args.warmup :]] for v, rs in results.items()}
        ours, plain = statistics.fmean(steps["cowest"]), statistics.fmean(steps["plain_trl"])
        low, high = ratio_interval(steps["plain_trl"], steps["cowest"])
        rows.append(
            {
                "trainer": kind,
                "cowest_s_per_step": ours,
                "plain_trl_s_per_step": plain,
                "throughput_ratio": plain / ours,
                "ci_low": low,
                "ci_high": high,
                "steps_timed": len(steps["cowest"]),
                "cowest_peak_mib": statistics.median(r["peak_mib"] for r in results["cowest"]),
                "plain_trl_peak_mib": statistics.median(r["peak_mib"] for r in results["plain_trl"]),
            }
        )
    print_table(
        f"train_* vs plain TRL ({args.steps} steps - {args.warmup} warm-up, batch {args.batch}, "
        f"{args.repeats} repeats; ratio = cowest samples/s / plain, 95% bootstrap CI)",
        rows,
    )
    path = save(args.name, {"rows": rows, "settings": vars(args), "goal_ratio": 0.95})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
