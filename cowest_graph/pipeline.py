"""Typed pipeline steps with one step log: a run killed anywhere resumes at its first unfinished step.

A step is a name, a key (the settings its result depends on) and a function returning a typed
artifact (a dataclass of JSON values). `StepLog.run` returns the recorded artifact when the log
holds the step under the same key, else runs the function and records the artifact at once,
written atomically (`steps.json` is the old file or the new one, never half of one). A step
whose key changed runs again and replaces its record. What a step leaves on disk (an adapter
directory, a trace store, a saved dataset) is named by its artifact, so later steps read it from
there.

    log = StepLog(work / "steps.json")
    sft = log.run("sft", {"data": data_hash}, lambda: train_sft_step(...), AdapterArtifact)
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from cowest_graph.atomic import write_json_atomic

A = TypeVar("A")


@dataclass
class AdapterArtifact:
    """A trained adapter: where it is, its weights' SHA-256, how long training took."""

    path: str
    sha256: str
    kind: str
    train_rows: int
    wall_s: float


@dataclass
class PairsArtifact:
    """Preference pairs saved as a dataset directory, with what the pair builder reported."""

    path: str
    pairs: int
    prompts: int
    prompts_with_pairs: int
    report: dict[str, Any]
    wall_s: float


@dataclass
class CollectArtifact:
    """A collection pass: the trace store it wrote and what it did."""

    store: str
    questions: int
    succeeded: int
    failed: int
    wall_s: float


@dataclass
class EvalArtifact:
    """One condition measured on one split, with its per-question outcomes (for paired tests)."""

    condition: str
    split: str
    n: int
    accuracy: float
    ci_low: float
    ci_high: float
    strong_calls_per_q: float
    wall_s: float
    correct: list[int] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    drafts: list[str] = field(default_factory=list)


def decode_artifact(kind: type[A], data: dict[str, Any]) -> A:
    """A recorded artifact as its dataclass (a missing field is an error naming it)."""
    names = {f.name for f in fields(kind)}  # type: ignore[arg-type]
    missing = names - set(data)
    if missing:
        raise ValueError(f"a recorded {kind.__name__} lacks {sorted(missing)}")
    return kind(**{k: v for k, v in data.items() if k in names})


class StepLog:
    """The one record of a pipeline run's finished steps (a JSON file, written atomically).

    Example:
        >>> import tempfile
        >>> log = StepLog(Path(tempfile.mkdtemp()) / "steps.json")
        >>> calls = []
        >>> step = lambda: calls.append(1) or CollectArtifact("sqlite:///t.db", 3, 3, 0, 1.5)
        >>> log.run("collect", {"k": 8}, step, CollectArtifact).succeeded
        3
        >>> StepLog(log.path).run("collect", {"k": 8}, step, CollectArtifact).store, len(calls)
        ('sqlite:///t.db', 1)
        >>> _ = log.run("collect", {"k": 4}, step, CollectArtifact); len(calls)  # another key: again
        2
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.steps: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                self.steps = json.loads(self.path.read_text())
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"step log {self.path} is not valid JSON ({exc}); delete it to start over"
                ) from exc

    def get(self, name: str, key: dict[str, Any]) -> dict[str, Any] | None:
        """The recorded artifact of step `name` when it finished under `key`, else None."""
        entry = self.steps.get(name)
        if entry is None or entry.get("key") != json.loads(json.dumps(key, default=str)):
            return None
        return dict(entry["artifact"])

    def record(self, name: str, key: dict[str, Any], artifact: Any) -> None:
        """Record a finished step (its key, its artifact, when, the code's commit) and write the
        log at once."""
        data = asdict(artifact) if hasattr(artifact, "__dataclass_fields__") else artifact
        entry = {
            "key": key,
            "artifact": data,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "commit": code_version(),
        }
        self.steps[name] = json.loads(json.dumps(entry, default=str))
        write_json_atomic(self.path, self.steps, indent=1, sort_keys=True)

    def forget(self, name: str) -> None:
        """Drop step `name`'s record (what it left on disk is gone), so it runs again."""
        if self.steps.pop(name, None) is not None:
            write_json_atomic(self.path, self.steps, indent=1, sort_keys=True)

    def run(self, name: str, key: dict[str, Any], fn: Callable[[], A], kind: type[A]) -> A:
        """Step `name`: its recorded artifact when finished under `key`, else `fn()` recorded."""
        kept = self.get(name, key)
        if kept is not None:
            return decode_artifact(kind, kept)
        artifact = fn()
        self.record(name, key, artifact)
        return artifact

    async def arun(self, name: str, key: dict[str, Any], fn: Callable[[], Awaitable[A]], kind: type[A]) -> A:
        """`run` for a step that awaits (a collection or an evaluation on one event loop)."""
        kept = self.get(name, key)
        if kept is not None:
            return decode_artifact(kind, kept)
        artifact = await fn()
        self.record(name, key, artifact)
        return artifact


def code_version(root: str | Path | None = None) -> str:
    """The git commit of the code that produces a result (`+dirty` when the tree has changes),
    or "unknown" outside a git checkout.

    Example:
        >>> len(code_version().split("+")[0]) in (7, 40) or code_version() == "unknown"
        True
    """
    cwd = str(root or Path(__file__).resolve().parent)
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")
