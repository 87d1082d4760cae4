"""A trace record as a collection writes it, built by hand for the tests that read traces."""

from __future__ import annotations


def traced_run(
    question: str,
    drafts: list[tuple[str, float | None]],
    alone: float | None = None,
    run_id: str | None = None,
    **extra,
) -> dict:
    """One run of `question`: its drafts (text, score of the strong answer built on it) and the
    strong-alone score; `extra` adds or replaces record fields."""
    prompt = f"<|im_start|>user\nQuestion: {question}<|im_end|>\n<|im_start|>assistant\n"
    return {
        "run_id": run_id or f"run-{question}-{len(drafts)}",
        "question": question,
        "alone": None if alone is None else {"answer": "alone", "score": alone},
        "drafts": [
            {
                "id": f"r1d{i}",
                "round": 1,
                "text": text,
                "rendered_prompt": prompt,
                "prompt_messages": [{"role": "human", "content": f"Question: {question}"}],
                "adapter_version": "v0001",
            }
            for i, (text, _) in enumerate(drafts)
        ],
        "candidates": [
            {"id": f"r1d{i}", "round": 1, "answer": f"a{i}", "score": score}
            for i, (_, score) in enumerate(drafts)
        ],
        **extra,
    }
