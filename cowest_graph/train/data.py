"""Training data: SFT rows rendered like the weak node's prompt, and preference pairs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets

from cowest_graph.models import to_chat
from cowest_graph.pair_dataset import PAIR_COLUMNS
from cowest_graph.prompts import CowestPrompts


def _load_dataset(data: Any, what: str) -> datasets.Dataset | datasets.DatasetDict:
    if isinstance(data, datasets.Dataset | datasets.DatasetDict):
        return data
    if isinstance(data, list):
        return datasets.Dataset.from_list(data)
    path = Path(str(data))
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}")
    if path.is_dir():
        try:
            return datasets.load_from_disk(str(path))
        except IndexError:  # a split saved with 0 rows (older pairs): `datasets` cannot read it
            return _nonempty_splits(path)
    if path.suffix == ".jsonl" or path.suffix == ".json":
        return datasets.Dataset.from_json(str(path))
    if path.suffix == ".csv":
        return datasets.Dataset.from_csv(str(path))
    raise ValueError(f"{what} {path}: expected a .jsonl/.json/.csv file or a saved dataset directory")


def _nonempty_splits(path: Path) -> datasets.DatasetDict:
    """The splits of a saved `DatasetDict` that can be read back (those with rows)."""
    names = json.loads((path / "dataset_dict.json").read_text())["splits"]
    kept = {}
    for name in names:
        try:
            kept[name] = datasets.load_from_disk(str(path / name))
        except IndexError:
            continue
    return datasets.DatasetDict(kept)


def _splits(
    data: datasets.Dataset | datasets.DatasetDict,
) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    if isinstance(data, datasets.DatasetDict):
        if "train" not in data:
            raise ValueError(f"dataset has splits {list(data)}, but no 'train' split")
        ev = data.get("eval") or data.get("test") or data.get("validation")
        return data["train"], (ev if ev is not None and ev.num_rows else None)
    return data, None


def load_pairs(pairs: Any) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    """Load and check DPO pairs: a `DatasetDict`/`Dataset`, a JSONL file or a saved dataset.

    Raises `ValueError` naming a missing column or an empty train split.

    Example:
        >>> train, evals = load_pairs("pairs/")  # doctest: +SKIP
    """
    train, evals = _splits(_load_dataset(pairs, "pairs"))
    for split, name in ((train, "train"), (evals, "eval")):
        if split is None:
            continue
        missing = [c for c in PAIR_COLUMNS if c not in split.column_names]
        if missing:
            raise ValueError(f"pairs ({name} split) are missing column(s): {', '.join(missing)}")
    if train.num_rows == 0:
        raise ValueError("no training pairs: the train split is empty")
    keep = list(PAIR_COLUMNS)
    return train.select_columns(keep), (evals.select_columns(keep) if evals is not None else None)


def sft_examples(
    data: Any, prompts: CowestPrompts | None = None
) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    """Domain data as conversational prompt/completion rows rendered like the weak node's prompt.

    Accepts columns `question` + `answer` (the prompt is the weak node's own prompt, so SFT
    teaches exactly the call the graph makes), `prompt` + `completion`, or `messages`.

    Example:
        >>> train, _ = sft_examples([{"question": "Q?", "answer": "A."}])
        >>> train[0]["completion"]
        [{'role': 'assistant', 'content': 'A.'}]
    """
    prompts = prompts or CowestPrompts()
    train, evals = _splits(_load_dataset(data, "SFT data"))

    def convert(split: datasets.Dataset) -> datasets.Dataset:
        cols = set(split.column_names)
        if {"prompt", "completion"} <= cols or "messages" in cols:
            return split
        if {"question", "answer"} <= cols:

            def row(ex: dict[str, Any]) -> dict[str, Any]:
                prompt = to_chat(prompts.weak_messages(ex["question"]))
                return {"prompt": prompt, "completion": [{"role": "assistant", "content": ex["answer"]}]}

            return split.map(row, remove_columns=list(cols))
        raise ValueError(
            f"SFT data has columns {sorted(cols)}: expected question+answer, prompt+completion, or messages"
        )

    train = convert(train)
    if train.num_rows == 0:
        raise ValueError("no SFT examples: the train split is empty")
    return train, (convert(evals) if evals is not None else None)


# -- shared training flow ------------------------------------------------------------------
