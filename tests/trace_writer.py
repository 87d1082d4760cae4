"""Subprocess for the SIGKILL test: runs the cowest graph forever, printing DONE i per run."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(__file__))

from cowest_graph import create_cowest_graph, load_weak_model  # noqa: E402
from cowest_graph.testing import ScriptedChatModel  # noqa: E402
from cowest_graph.tracing import CowestTracer  # noqa: E402


def main(url: str) -> None:
    weak = load_weak_model(max_new_tokens=3)
    strong = ScriptedChatModel(respond=lambda m: "answer " + m[-1].text.split("\n")[0])
    graph = create_cowest_graph(weak, strong, scorer=lambda q, a, r: 0.5, num_drafts=2).compile()
    tracer = CowestTracer(url)
    i = 0
    while True:
        graph.invoke({"question": f"q{i}: name a colour"}, config={"callbacks": [tracer]})
        print(f"DONE {i}", flush=True)
        i += 1


if __name__ == "__main__":
    main(sys.argv[1])
