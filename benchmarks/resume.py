"""What a (task, seed) run of the quality benchmark keeps in its folder, so that a run cut after hours
goes on where it stopped (`python -m benchmarks.quality ... --work DIR` again).

A run folder holds `settings.json` (the settings its figures depend on), `conditions/<name>.json`
(each finished condition with its per-question outcomes, so paired differences can still be taken),
`conditions/<name>.db` (the traces of a graph condition's questions, kept as they are answered: a
condition cut midway goes on from the questions it had not answered) and `steps/<name>.json` (the
SFT step and each DPO round: where the adapter is, its wall time). Every JSON file is written whole
or not at all, so a run killed while writing leaves the last good one.

A work folder lives on one machine; the results file is committed. Each results row carries its
condition's per-question outcomes (`outcomes`: one '1' or '0' per report row) and each run's extras
its settings and its adapters' fingerprints, so a run of the same (task, seed) on another machine
adopts the finished conditions from the results file (`RunFolder.adopt`), trains its adapters again
and keeps an adopted condition only while the adapter it was measured with comes out the same.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cowest_graph.adapters import adapter_sha256
from cowest_graph.atomic import write_json_atomic
from cowest_graph.evaluate import ConditionResult


def _write(path: Path, data: Any) -> None:
    write_json_atomic(path, data, indent=1, sort_keys=True)


def read_json(path: Path) -> Any:
    """A kept JSON file; one that is not valid JSON is a clear error naming it (delete it to redo it)."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise SystemExit(f"{path} is not valid JSON ({exc}); delete it to do that part again") from exc


def outcomes(correct: list[int]) -> str:
    """Per-question outcomes as one character each, the compact form a results row keeps.

    >>> outcomes([1, 0, 1])
    '101'
    """
    return "".join("1" if c else "0" for c in correct)


def fingerprint(adapter: Path) -> str:
    """SHA-256 of an adapter's weights (`cowest_graph.adapters.adapter_sha256`)."""
    return adapter_sha256(adapter)


def _file_name(name: str) -> str:
    """A condition's name as a file name.

    >>> _file_name("CoWest aligned (DPO+NLL round 1)")
    'CoWest-aligned-DPO-NLL-round-1'
    """
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")


class RunFolder:
    """One (task, seed) run's folder: what it finished, so a later run with the same settings skips it.

    Example:
        >>> import tempfile
        >>> folder = RunFolder(Path(tempfile.mkdtemp()) / "ethics-s0", {"n_sft": 8})
        >>> folder.condition("strong alone") is None
        True
        >>> r = ConditionResult("strong alone", 2, 0.5, 0.0, 1.0, None, 0.0, 1.0, 9.0, 3.0, correct=[1, 0])
        >>> folder.save_condition(r)
        >>> RunFolder(folder.path, {"n_sft": 8}).condition("strong alone").correct
        [1, 0]
        >>> RunFolder(folder.path, {"n_sft": 16})
        Traceback (most recent call last):
        ...
        SystemExit: ... was run with other settings (n_sft: 8 there, 16 now); ...
    """

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path = Path(path)
        self.settings = settings
        kept = self.path / "settings.json"
        if kept.exists():
            before = read_json(kept)
            changed = [
                f"{key}: {before.get(key)!r} there, {settings.get(key)!r} now"
                for key in sorted(set(before) | set(settings))
                if before.get(key) != settings.get(key)
            ]
            if changed:
                raise SystemExit(
                    f"{self.path} was run with other settings ({'; '.join(changed)}); give the same "
                    f"settings to go on with it, or another --work folder to start afresh"
                )
        else:
            _write(kept, settings)

    def condition(self, name: str) -> ConditionResult | None:
        """The finished condition called `name`, or None if this folder has not measured it."""
        path = self.path / "conditions" / f"{_file_name(name)}.json"
        return ConditionResult(**read_json(path)) if path.exists() else None

    def save_condition(self, result: ConditionResult) -> None:
        """Keep a finished condition, per-question outcomes included."""
        _write(self.path / "conditions" / f"{_file_name(result.name)}.json", asdict(result))

    def adopt(self, rows: list[dict[str, Any]], settings: dict[str, Any] | None, n: int) -> list[str]:
        """Keep the finished conditions of an earlier run of this (task, seed), read from the rows it
        wrote to the results file (possibly on another machine), so this folder goes on from them.

        Only rows with per-question `outcomes`, and only when `settings` (the earlier run's) are this
        folder's; a condition this folder already holds stays as it is. The per-question answers and
        drafts are not in a results row: an adopted condition has outcomes and figures only. Returns
        the names of the adopted conditions this folder holds (adopted now or by an earlier run of it).

        Example:
            >>> import tempfile
            >>> folder = RunFolder(Path(tempfile.mkdtemp()), {"n_sft": 8})
            >>> row = {"name": "strong alone", "n": 2, "accuracy": 0.5, "ci_low": 0.0, "ci_high": 1.0,
            ...        "macro_f1": None, "unparseable_rate": 0.0, "strong_calls_per_q": 1.0,
            ...        "strong_tokens_per_q": 9.0, "wall_s": 3.0, "outcomes": "10"}
            >>> folder.adopt([row], {"n_sft": 16}, 2)  # other settings: nothing
            []
            >>> folder.adopt([row], {"n_sft": 8}, 2)
            ['strong alone']
            >>> folder.condition("strong alone").correct
            [1, 0]
        """
        if settings != self.settings:
            return []
        adopted = []
        for row in rows:
            kept = row.get("outcomes")
            if kept is None:
                continue
            held = self.condition(row["name"])
            if held is not None:
                if not held.answers:  # adopted by an earlier run of this folder (a measured one has them)
                    adopted.append(row["name"])
                continue
            if len(kept) != n or set(kept) - {"0", "1"}:
                raise SystemExit(
                    f"the results row {row['name']!r} holds {len(kept)} outcomes for {n} report rows "
                    f"(or other characters than 0 and 1): it is not this run's; run without --append"
                )
            fields = {f: row[f] for f in ConditionResult.__dataclass_fields__ if f in row}
            if fields.get("wall_s") is None:  # derived from another condition's drafts, not timed
                fields["wall_s"] = math.nan
            self.save_condition(ConditionResult(**fields, correct=[int(c) for c in kept]))
            adopted.append(row["name"])
        return adopted

    def forget(self, names: list[str]) -> None:
        """Drop kept conditions (their outcomes and traces): they are measured again."""
        for name in names:
            for suffix in (".json", ".db"):
                (self.path / "conditions" / f"{_file_name(name)}{suffix}").unlink(missing_ok=True)

    def condition_store(self, name: str) -> str:
        """The trace store (SQLite URL) the condition `name` answers into while it runs: a cut
        condition goes on from the questions it traced (`evaluate_graph(..., resume=True)`)."""
        folder = self.path / "conditions"
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / _file_name(name)}.db"

    def step(self, name: str) -> dict[str, Any] | None:
        """A finished step ('sft', 'round-1', ...), or None. Its `adapter` is an absolute path."""
        path = self.path / "steps" / f"{name}.json"
        if not path.exists():
            return None
        data = read_json(path)
        adapter = self.path / data["adapter"]  # relative to the folder, unless it was given outside it
        if not (adapter / "adapter_config.json").exists():
            return None  # its adapter is gone: the step is done again
        return {**data, "adapter": str(adapter)}

    def save_step(self, name: str, data: dict[str, Any]) -> None:
        """Keep a finished step; `data["adapter"]` is the adapter it produced (or reused)."""
        adapter = Path(data["adapter"]).resolve()
        here = self.path.resolve()
        relative = adapter.relative_to(here) if adapter.is_relative_to(here) else adapter
        _write(self.path / "steps" / f"{name}.json", {**data, "adapter": str(relative)})
