"""Preference pairs as a `datasets.DatasetDict`: the columns TRL needs, the features, saving
with empty splits, streaming rows into Arrow, and the hash recorded in adapter manifests."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import datasets

PAIR_COLUMNS = ("prompt", "chosen", "rejected")
"""The columns TRL's DPOTrainer needs (conversational format)."""


class PreferencePairs(datasets.DatasetDict):
    """A `DatasetDict` with `train` / `eval` splits and the `report` that built it."""

    report: Any
    """The `PairReport` of what was kept and dropped."""

    def save_to_disk(self, dataset_dict_path: Any, *args: Any, **kwargs: Any) -> None:
        """Save the splits that hold pairs: `datasets` cannot load back a split saved with 0 rows
        (a small store often gives no eval pairs), and `load_pairs` treats a missing eval as none.
        """
        kept = {name: split for name, split in self.items() if split.num_rows > 0}
        datasets.DatasetDict(kept or dict(self)).save_to_disk(dataset_dict_path, *args, **kwargs)


def stream_to_dataset(
    rows: Callable[[str], Iterator[dict[str, Any]]], split: str, n: int
) -> datasets.Dataset:
    """The `n` pair rows that `rows(split)` yields, written to Arrow as they come (not a list)."""
    features = pair_features()
    empty = datasets.Dataset.from_dict({name: [] for name in features}, features=features)
    if n == 0:
        return empty
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # its bar would name every split "train"
    try:
        # A fresh fingerprint: the generator reads a temporary file, never a stale cache.
        return datasets.Dataset.from_generator(
            rows,
            gen_kwargs={"split": split},
            features=features,
            fingerprint=uuid.uuid4().hex,
            writer_batch_size=100,  # rows buffered in Python before each Arrow write
        )
    except ValueError as exc:  # every pair of the split lost its run while reading
        if "corresponds to no data" not in str(exc):
            raise
        return empty
    finally:
        if bars:
            datasets.enable_progress_bars()


def pair_features() -> datasets.Features:
    turn = {"role": datasets.Value("string"), "content": datasets.Value("string")}
    return datasets.Features(
        {
            "prompt": datasets.List(turn),
            "chosen": datasets.List(turn),
            "rejected": datasets.List(turn),
            "question": datasets.Value("string"),
            "prompt_text": datasets.Value("string"),
            "run_id_chosen": datasets.Value("string"),
            "run_id_rejected": datasets.Value("string"),
            "score_chosen": datasets.Value("float64"),
            "score_rejected": datasets.Value("float64"),
            "delta_chosen": datasets.Value("float64"),
            "delta_rejected": datasets.Value("float64"),
            "margin": datasets.Value("float64"),
            "adapter_version": datasets.Value("string"),
        }
    )


def dataset_hash(ds: datasets.Dataset, columns: Iterable[str] = PAIR_COLUMNS) -> str:
    """A stable hash of the given columns of a dataset (recorded in adapter manifests).

    Example:
        >>> len(dataset_hash(pairs["train"]))  # doctest: +SKIP
        64
    """
    digest = hashlib.sha256()
    cols = [c for c in columns if c in ds.column_names]
    for row in ds.select_columns(cols):
        digest.update(json.dumps(row, sort_keys=True).encode())
    return digest.hexdigest()
