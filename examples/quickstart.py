"""Quick start: the cowest subgraph on the embedded weak model, offline.

    HF_HUB_OFFLINE=1 python examples/quickstart.py

The strong model here is the general SmolLM2 (no adapter), the offline stand-in; point it at any
LangChain chat model instead (ChatOpenAI, a vLLM endpoint, ...).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from cowest_graph import create_cowest_graph, load_weak_model, token_f1  # noqa: E402

QUESTIONS = [
    ("What is the capital of France?", "Paris"),
    ("Which planet is known as the Red Planet?", "Mars"),
]


def main(num_drafts: int = 2, max_new_tokens: int = 48) -> list[dict]:
    weak = load_weak_model(max_new_tokens=max_new_tokens, temperature=0.8, seed=0)
    strong = load_weak_model(max_new_tokens=max_new_tokens, temperature=0.0)
    graph = create_cowest_graph(weak, strong, scorer=token_f1, num_drafts=num_drafts).compile()
    outputs = []
    for question, reference in QUESTIONS:
        out = graph.invoke({"question": question, "reference": reference})
        print(f"\nQ: {question}")
        for cand in out["candidates"]:
            print(f"  draft {cand['id']}: {cand['draft'][:80]!r}")
            print(f"    -> answer {cand['answer'][:80]!r}  score={cand['score']}")
        print(f"A: {out['answer']}")
        outputs.append(out)
    return outputs


if __name__ == "__main__":
    main()
