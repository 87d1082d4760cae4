"""A quality round's preference pairs, kept in the results (`benchmarks/results/pairs/`), so that a run
of the same (task, seed) on another machine trains the round again without collecting it again.

A run's work folder lives on one machine; a fresh machine trains its adapters again (seeded, so
they come out the same) and adopts the finished conditions from the results file
(`benchmarks/resume.py`). A round's collection cannot be adopted that way: on PubMedQA here it is
an hour of strong-model calls, and a later round needs its pairs. The pairs file holds what the
pairs are made of, without the data set's text: each pair names its question by the data set's id,
and its weak prompt (`prompt`, `prompt_text`) is rendered again from that question with the run's
own prompts and weak model. The file records the hash that `train_dpo` names its work by
(`dataset_hash` of prompt, chosen and rejected): pairs rendered again are used only when they hash
the same, the parent adapter is the one they were collected with and the run's settings are the
file's. Anything else collects the round again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasets

from benchmarks.resume import read_json
from cowest_graph.atomic import write_json_atomic
from cowest_graph.influence import PairReport
from cowest_graph.pair_dataset import PreferencePairs, dataset_hash, pair_features

Render = Callable[[str], "tuple[list[dict[str, str]], str] | None"]
"""A question -> its weak prompt as a pair holds it (`prompt` messages, `prompt_text`), or None
where it cannot be rendered again the same way (the weak model cut it to fit its context)."""

_RENDERED = ("prompt", "prompt_text", "question")


def pairs_path(folder: Path, name: str, task: str, seed: int, round_: int) -> Path:
    """Where the round of a run (results `name`) keeps its pairs in `folder`.

    >>> pairs_path(Path("results/pairs"), "quality", "pubmedqa", 0, 1).as_posix()
    'results/pairs/quality-pubmedqa-s0-round1.json'
    """
    return Path(folder) / f"{name}-{task}-s{seed}-round{round_}.json"


def save_round_pairs(
    path: Path,
    pairs: PreferencePairs,
    *,
    ids: dict[str, str],
    render: Render,
    parent_sha256: str,
    settings: dict[str, Any],
    extras: dict[str, Any] | None = None,
) -> bool:
    """Keep `pairs` (their `train` split; a round takes no eval pairs) at `path`, each question named
    by its id (`ids`: question text -> id). Nothing is written, and False returned, when a pair's
    prompt does not come out the same from `render` (it could not be used again) or its question
    has no id. `extras` (the collection's wall time, ...) travel with the pairs.

    Example:
        >>> import tempfile
        >>> render = lambda q: ([{"role": "user", "content": q}], f"<user>{q}")
        >>> pairs = make_pairs(["q1"], render)
        >>> path = Path(tempfile.mkdtemp()) / "p.json"
        >>> save_round_pairs(path, pairs, ids={"q1": "id-1"}, render=render, parent_sha256="ab",
        ...                  settings={"k": 4})
        True
        >>> "q1" in path.read_text(), read_json(path)["rows"][0]["id"]
        (False, 'id-1')
    """
    if pairs.get("eval") is not None and pairs["eval"].num_rows:
        raise ValueError("a round's pairs have no eval split; build them with eval_fraction=0.0")
    train = pairs["train"]
    rows = []
    for row in train:
        question = row["question"]
        if question not in ids:
            print(f"  {path.name}: a pair's question has no id: the pairs are not kept", flush=True)
            return False
        again = render(question)
        if again is None or again != (row["prompt"], row["prompt_text"]):
            print(
                f"  {path.name}: the weak prompt of {ids[question]} does not render again the same way "
                "(cut to fit the context?): the pairs are not kept",
                flush=True,
            )
            return False
        rows.append({"id": ids[question], **{k: v for k, v in row.items() if k not in _RENDERED}})
    write_json_atomic(
        path,
        {
            "settings": settings,
            "parent_sha256": parent_sha256,
            "pairs_sha256": dataset_hash(train),
            "report": pairs.report.as_dict(),
            "extras": extras or {},
            "rows": rows,
        },
        indent=1,
        sort_keys=True,
    )
    return True


def load_round_pairs(
    path: Path,
    *,
    questions: dict[str, str],
    render: Render,
    parent_sha256: str,
    settings: dict[str, Any],
) -> tuple[PreferencePairs, dict[str, Any]] | None:
    """The pairs kept at `path` with their weak prompts rendered again (`questions`: id -> question
    text), and the extras saved with them; None (and why, printed) when there are none, they were
    collected with another parent adapter or other settings, or they do not hash as they did.

    Example:
        >>> import tempfile
        >>> render = lambda q: ([{"role": "user", "content": q}], f"<user>{q}")
        >>> path = Path(tempfile.mkdtemp()) / "p.json"
        >>> _ = save_round_pairs(path, make_pairs(["q1"], render), ids={"q1": "id-1"},
        ...                      render=render, parent_sha256="ab", settings={"k": 4})
        >>> pairs, extras = load_round_pairs(path, questions={"id-1": "q1"}, render=render,
        ...                                  parent_sha256="ab", settings={"k": 4})
        >>> pairs["train"][0]["prompt"], pairs.report.pairs
        ([{'role': 'user', 'content': 'q1'}], 1)
        >>> load_round_pairs(path, questions={"id-1": "q1"}, render=render,
        ...                  parent_sha256="cd", settings={"k": 4}) is None
          p.json: collected with another parent adapter (ab there, cd here): collecting again
        True
    """
    if not path.exists():
        return None
    data = read_json(path)
    if data["settings"] != settings:
        print(f"  {path.name}: collected with other settings: collecting again", flush=True)
        return None
    if data["parent_sha256"] != parent_sha256:
        print(
            f"  {path.name}: collected with another parent adapter ({data['parent_sha256'][:12]} there, "
            f"{parent_sha256[:12]} here): collecting again",
            flush=True,
        )
        return None
    rows = []
    for row in data["rows"]:
        if row["id"] not in questions:
            raise SystemExit(f"{path}: question {row['id']!r} is not among this round's questions")
        question = questions[row["id"]]
        rendered = render(question)
        if rendered is None:
            print(f"  {path.name}: {row['id']} does not render again: collecting again", flush=True)
            return None
        prompt, prompt_text = rendered
        kept = {k: v for k, v in row.items() if k != "id"}
        rows.append({**kept, "question": question, "prompt": prompt, "prompt_text": prompt_text})
    pairs = make_dataset(rows)
    if dataset_hash(pairs["train"]) != data["pairs_sha256"]:
        print(f"  {path.name}: the pairs rendered again hash otherwise: collecting again", flush=True)
        return None
    pairs.report = PairReport(**data["report"])
    return pairs, data["extras"]


def make_dataset(rows: list[dict[str, Any]]) -> PreferencePairs:
    """Pair rows (all of `pair_features`' columns) as `PreferencePairs` with an empty eval split;
    its `report` counts the pairs only."""
    features = pair_features()
    train = datasets.Dataset.from_list(rows, features=features)
    empty = datasets.Dataset.from_dict({name: [] for name in features}, features=features)
    pairs = PreferencePairs({"train": train, "eval": empty})
    pairs.report = PairReport(pairs=len(rows), train_pairs=len(rows))
    return pairs


def make_pairs(questions: list[str], render: Render) -> PreferencePairs:
    """One made-up pair per question (chosen 'Answer: yes', rejected 'Answer: no'), for examples."""
    rows = []
    for i, question in enumerate(questions):
        rendered = render(question)
        assert rendered is not None
        prompt, prompt_text = rendered
        rows.append(
            {
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": "Answer: yes"}],
                "rejected": [{"role": "assistant", "content": "Answer: no"}],
                "question": question,
                "prompt_text": prompt_text,
                "run_id_chosen": f"run-{i}",
                "run_id_rejected": f"run-{i}",
                "score_chosen": 1.0,
                "score_rejected": 0.0,
                "delta_chosen": 1.0,
                "delta_rejected": -1.0,
                "margin": 2.0,
                "adapter_version": None,
            }
        )
    return make_dataset(rows)
