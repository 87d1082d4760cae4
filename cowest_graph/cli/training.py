"""`cowest-graph pairs|sft|train`: preference pairs from traces, SFT and DPO of the weak model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from cowest_graph.cli.common import STORE_OPTION, _fail, _open_store, app, console

if TYPE_CHECKING:
    from cowest_graph.train import DPOTrainConfig, SFTTrainConfig


@app.command()
def pairs(
    out: str = typer.Argument(..., help="Directory to save the pairs (a datasets.DatasetDict)."),
    store: str = STORE_OPTION,
    min_margin: float = typer.Option(
        0.1, min=0.0, max=1.0, help="Least influence gap for a pair (scores in [0, 1])."
    ),
    max_pairs_per_prompt: int = typer.Option(4, min=1, help="At most this many pairs per weak prompt."),
    eval_fraction: float = typer.Option(0.1, min=0.0, max=0.9, help="Share of questions held out for eval."),
    seed: int = typer.Option(0, help="Seed of the grouped split."),
    adapter: str | None = typer.Option(None, help="Only runs drafted with this adapter version."),
) -> None:
    """Build collaborative-feedback preference pairs from the traces in a store."""
    import json

    from cowest_graph.feedback import build_preference_pairs
    from cowest_graph.store import RunFilter

    db = _open_store(store)
    with console.status(f"building pairs from the runs in {db.display_url}..."):
        try:
            built = build_preference_pairs(
                db,
                min_margin=min_margin,
                max_pairs_per_prompt=max_pairs_per_prompt,
                eval_fraction=eval_fraction,
                seed=seed,
                flt=RunFilter(adapter_version=adapter),
            )
        except ValueError as exc:
            _fail(str(exc))
    built.save_to_disk(out)
    report = built.report.as_dict()
    table = Table(title=f"preference pairs -> {out}")
    table.add_column("what")
    table.add_column("value")
    for key, value in report.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    console.print(table)


def _train_config(kind: str, **values: Any) -> SFTTrainConfig | DPOTrainConfig:
    """The CLI's flags, mapped onto the SFT or DPO config (flags left out keep its defaults)."""
    from cowest_graph.train import DPOTrainConfig, SFTTrainConfig

    cls = SFTTrainConfig if kind == "sft" else DPOTrainConfig
    return cls(**{k: v for k, v in values.items() if v is not None})


@app.command()
def sft(
    data: str = typer.Argument(..., help="question/answer data: .jsonl, .csv or a saved dataset."),
    adapters: str = typer.Option("adapters", help="Adapters root; a new version is written under it."),
    base_model: str | None = typer.Option(None, help="Local HF model dir (default: embedded SmolLM2)."),
    max_steps: int | None = typer.Option(None, help="Optimizer steps (default: one epoch)."),
    epochs: float | None = typer.Option(None, help="Epochs when --max-steps is not given."),
    learning_rate: float | None = typer.Option(None),
    batch_size: int | None = typer.Option(None),
    save_steps: int | None = typer.Option(None, help="Checkpoint every N steps."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run."),
) -> None:
    """Specialise the weak model on domain data (LoRA SFT)."""
    from cowest_graph.train import train_sft

    config = _train_config(
        "sft",
        max_steps=max_steps,
        num_train_epochs=epochs,
        learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        save_steps=save_steps,
    )
    try:
        result = train_sft(data, output_dir=adapters, base_model=base_model, config=config, resume=resume)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    console.print(f"adapter {result.version} -> {result.adapter_dir}  metrics: {result.metrics}")


@app.command()
def train(
    pairs_dir: str = typer.Argument(..., help="Pairs from `cowest-graph pairs` (or a .jsonl)."),
    adapters: str = typer.Option("adapters", help="Adapters root; a new version is written under it."),
    adapter: str | None = typer.Option(None, help="Start from this adapter (e.g. the SFT one)."),
    base_model: str | None = typer.Option(None, help="Local HF model dir (default: embedded SmolLM2)."),
    max_steps: int | None = typer.Option(None, help="Optimizer steps (default: one epoch)."),
    epochs: float | None = typer.Option(None),
    learning_rate: float | None = typer.Option(None),
    beta: float | None = typer.Option(None, help="DPO beta."),
    batch_size: int | None = typer.Option(None),
    save_steps: int | None = typer.Option(None, help="Checkpoint every N steps."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run."),
) -> None:
    """Align the weak model with collaborative-feedback DPO."""
    from cowest_graph.adapters import AdapterError
    from cowest_graph.train import TrainingDivergedError, train_dpo

    config = _train_config(
        "dpo",
        max_steps=max_steps,
        num_train_epochs=epochs,
        learning_rate=learning_rate,
        beta=beta,
        per_device_train_batch_size=batch_size,
        save_steps=save_steps,
    )
    try:
        result = train_dpo(
            pairs_dir,
            output_dir=adapters,
            adapter=adapter,
            base_model=base_model,
            config=config,
            resume=resume,
        )
    except (AdapterError, TrainingDivergedError):
        raise  # `main` prints them with their own exit status (5, 7)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    console.print(f"adapter {result.version} -> {result.adapter_dir}  metrics: {result.metrics}")
