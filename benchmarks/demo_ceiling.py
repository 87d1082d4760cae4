"""The demo's ceiling: the strong model given the *true* rule as its draft, on the held-out questions.

CoWest on the demo domain can reach at most what the strong model makes of a perfect draft; the
gap between this ceiling and CoWest is what better drafts (more SFT, DPO) could still win, and the
gap between this ceiling and 1.0 is the strong model's own reasoning errors.

    python -m benchmarks.demo_ceiling [--strong qwen]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.common import print_table, save, step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--strong", default="qwen")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "data" / "quillfeather"))
    from make_data import RULES

    from cowest_graph.critique import answer_match
    from cowest_graph.evaluate import bootstrap_ci
    from cowest_graph.loop import LoopConfig
    from cowest_graph.models import open_strong_model
    from cowest_graph.prompts import CowestPrompts

    config = LoopConfig()
    prompts = CowestPrompts().with_format(config.answer_format)
    rows = [(q, ref, fact) for _key, fact, _rq, _train, test in RULES for q, ref in test]
    with open_strong_model(args.strong, max_tokens=config.strong_max_new_tokens) as strong:
        with_rule, alone = [], []
        for i, (question, ref, fact) in enumerate(rows):
            if i % 8 == 0:
                step(f"question {i + 1}/{len(rows)}")
            with_rule.append(
                answer_match(question, strong.invoke(prompts.strong_messages(question, fact)).text, ref)
            )
            alone.append(answer_match(question, strong.invoke(prompts.alone_messages(question)).text, ref))
    table = []
    for name, scores in (("strong, true rule as the draft", with_rule), ("strong alone", alone)):
        low, high = bootstrap_ci(scores)
        table.append(
            {
                "condition": name,
                "n": len(scores),
                "accuracy": sum(scores) / len(scores),
                "ci": f"[{low:.3f}, {high:.3f}]",
            }
        )
    print_table("demo ceiling (held-out questions)", table)
    path = save("demo_ceiling", {"strong": args.strong, "rows": table})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
