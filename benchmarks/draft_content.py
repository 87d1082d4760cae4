"""What the drafts carried in a collection round: read from its traces, for a closed-label task.

    python -m benchmarks.draft_content sqlite:///path/traces.db --labels acceptable,unacceptable

For every traced run (k drafts, the strong model's answer on each draft, its answer alone, the
reference): how often the strong answer repeats the draft's label, how often the drafts of one
question disagree, and, for the drafts that scored apart (the preference pairs' raw material),
whether the better and the worse draft name different labels (content) or the same label in other
words (form). Prints a table and returns the counts.
"""

from __future__ import annotations

import argparse
import itertools
from collections import Counter
from typing import Any


def draft_content(records: Any, labels: tuple[str, ...]) -> dict[str, Any]:
    """Count what the drafts of traced runs carried (see the module docstring).

    >>> rec = {"reference": "yes", "alone": {"answer": "Answer: no", "score": 0.0},
    ...        "drafts": [{"id": "a", "text": "Answer: yes"}, {"id": "b", "text": "Answer: no"}],
    ...        "candidates": [{"id": "a", "answer": "Answer: yes", "score": 1.0},
    ...                       {"id": "b", "answer": "Answer: no", "score": 0.0}]}
    >>> c = draft_content([rec], ("yes", "no"))
    >>> c["strong_repeats_draft_label"], c["scored_apart_pairs"], c["apart_pairs_differ_in_label"]
    (2, 1, 1)
    """
    from cowest_graph.critique import extract_label

    c: Counter[str] = Counter()
    for rec in records:
        c["runs"] += 1
        gold = (rec.get("reference") or "").lower()
        alone = rec.get("alone") or {}
        alone_label = extract_label(alone.get("answer") or "", labels)
        c["alone_right"] += int(bool(alone.get("score")))
        candidates = {x.get("id"): x for x in rec.get("candidates") or []}
        scored: list[tuple[str | None, float]] = []
        draft_labels = []
        for draft in rec.get("drafts") or []:
            c["drafts"] += 1
            label = extract_label(draft.get("text") or "", labels)
            draft_labels.append(label)
            c["draft_has_label"] += label is not None
            c["draft_right"] += label is not None and label.lower() == gold
            cand = candidates.get(draft.get("id")) or {}
            answer = extract_label(cand.get("answer") or "", labels)
            if label is not None and answer is not None:
                c["strong_with_label"] += 1
                c["strong_repeats_draft_label"] += answer == label
                c["strong_keeps_alone_label"] += answer == alone_label
            if label is not None and label.lower() == gold and not alone.get("score"):
                c["right_draft_alone_wrong"] += 1
                c["right_draft_alone_wrong_rescued"] += int(bool(cand.get("score")))
            if label is not None and label.lower() != gold and alone.get("score"):
                c["wrong_draft_alone_right"] += 1
                c["wrong_draft_alone_right_spoiled"] += int(not cand.get("score"))
            if cand.get("score") is not None:
                scored.append((label, float(cand["score"])))
        c["runs_with_disagreeing_drafts"] += len({x for x in draft_labels if x}) > 1
        for (la, sa), (lb, sb) in itertools.combinations(scored, 2):
            if sa != sb:
                c["scored_apart_pairs"] += 1
                c["apart_pairs_differ_in_label"] += la != lb
    return dict(c)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("store", help="trace store URL, e.g. sqlite:///traces.db")
    parser.add_argument("--labels", required=True, help="comma-separated labels of the task")
    args = parser.parse_args()
    from cowest_graph.store import open_trace_store

    store = open_trace_store(args.store, create=False)
    counts = draft_content(store.iter_runs(), tuple(args.labels.split(",")))
    for key, value in counts.items():
        print(f"{key:36s} {value}")


if __name__ == "__main__":
    main()
