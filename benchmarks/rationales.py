"""Rationales for train-side rows whose data set has none (ETHICS), written by the strong model.

    python -m benchmarks.rationales ethics --seeds 0,1 --n-sft 800   # those seeds' SFT rows and shots

Rationalisation, as in STaR: the strong model sees a train-side question *and its correct label*
and writes one or two sentences of background and reasoning that lead to that label. The weak model
then learns `rationale + "Answer: <label>"` (`benchmarks/quality.py --sft-target rationale`), so its
drafts carry reasoning, not only a label. Only train-side rows are written (never dev or report
rows). Each rationale is appended to `<cache>/rationales/<task>.jsonl` as soon as it is written, with
the model that wrote it, so a cut run resumes where it stopped and nothing written is lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SYSTEM = (
    "You explain moral judgements concretely and briefly, in one or two sentences. Start with what in the "
    "scenario matters. Never write 'the correct answer' and never write an 'Answer:' line."
)
USER = "{question}\nA typical person judges this {reference}. Why?"


def rationale_path(task: str) -> Path:
    """Where the rationales of `task` live (under the cowest_graph cache directory).

    >>> rationale_path("ethics").name
    'ethics.jsonl'
    """
    from cowest_graph.models.files import model_cache_dir

    return model_cache_dir() / "rationales" / f"{task}.jsonl"


def clean_rationale(text: str) -> str:
    """The reasoning alone: any `Answer:` line (the label is appended at SFT), blank space and a last
    sentence cut off by the token limit removed.

    >>> clean_rationale("  It harms a child.\\nAnswer: unacceptable ")
    'It harms a child.'
    >>> clean_rationale("It harms a child. Children are owed")
    'It harms a child.'
    >>> clean_rationale("Children are owed")
    'Children are owed'
    """
    text = re.split(r"(?im)^\s*(?:final\s+)?answer\s*:", text, maxsplit=1)[0]
    text = " ".join(text.split())
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", text)]
    return text[: ends[-1]] if ends else text


def read_rationales(path: str | Path) -> dict[str, str]:
    """Row id -> rationale, from a file written by `awrite_rationales` (empty if there is none).

    Raises `ValueError` naming the file and line of a line that is not a rationale record.

    >>> read_rationales("/nonexistent/ethics.jsonl")
    {}
    """
    path = Path(path)
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            out[str(record["id"])] = str(record["rationale"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: not a rationale record ({exc})") from exc
    return out


async def awrite_rationales(
    examples: Sequence[Any],
    chat_model: Any,
    path: str | Path,
    *,
    concurrency: int = 4,
    progress: bool = True,
) -> dict[str, str]:
    """Write a rationale for every example (`id`, `question`, `reference`) that has none in `path`.

    Returns all rationales in the file afterwards. A reply that holds no reasoning (empty once its
    answer line is cut) is not written, so the row is asked again on the next run.

    Example:
        >>> from cowest_graph.data import Example
        >>> from cowest_graph.testing import ScriptedChatModel
        >>> model = ScriptedChatModel(respond=lambda m: "Taking it is theft.\\nAnswer: unacceptable")
        >>> rows = [Example("r1", "Scenario: I took her purse.", "unacceptable")]
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "ethics.jsonl"
        >>> asyncio.run(awrite_rationales(rows, model, path, progress=False))
        {'r1': 'Taking it is theft.'}
    """
    from langchain_core.messages import HumanMessage, SystemMessage
    from rich.progress import Progress

    path = Path(path)
    done = read_rationales(path)
    todo = [e for e in examples if e.id not in done]
    path.parent.mkdir(parents=True, exist_ok=True)
    gate = asyncio.Semaphore(concurrency)
    name = getattr(chat_model, "model_name", None) or type(chat_model).__name__
    with path.open("a") as sink, Progress(disable=not progress) as bar:
        task = bar.add_task("writing rationales", total=len(todo))

        async def one(example: Any) -> None:
            async with gate:
                messages = [
                    SystemMessage(SYSTEM),
                    HumanMessage(USER.format(question=example.question, reference=example.reference)),
                ]
                reply = await chat_model.ainvoke(messages)
            text = clean_rationale(str(reply.content))
            if text:
                record = {"id": example.id, "rationale": text, "reference": example.reference, "model": name}
                sink.write(json.dumps(record) + "\n")
                sink.flush()
                done[example.id] = text
            bar.advance(task)

        await asyncio.gather(*(one(e) for e in todo))
    return done


def main() -> None:
    from benchmarks.quality import draw_samples, load_ethics, shot_examples, split_dev

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("task", choices=["ethics"])
    parser.add_argument("--seeds", default="0,1", help="the quality seeds whose SFT rows get rationales")
    parser.add_argument("--n-sft", type=int, default=800)
    parser.add_argument("--n-dev", type=int, default=100)
    parser.add_argument("--shots", type=int, default=2, help="the weak model's worked examples need one too")
    parser.add_argument("--strong", default="qwen")
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()

    task = split_dev(load_ethics(), args.n_dev)
    rows: dict[str, Any] = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        sft = draw_samples(task, seed, n_report=0, n_sft=args.n_sft, n_collect=0, rounds=0).sft
        for e in [*sft, *shot_examples(task, args.shots, seed)]:
            rows[e.id] = e
    from cowest_graph.models.strong import open_strong_model

    path = rationale_path(args.task)
    with open_strong_model(args.strong, max_tokens=args.max_tokens) as strong:
        written = asyncio.run(awrite_rationales(list(rows.values()), strong, path))
    print(f"{sum(i in written for i in rows)} of {len(rows)} train-side rows have a rationale in {path}")


if __name__ == "__main__":
    main()
