"""The strong model over real HTTP: `ChatOpenAI` against llama.cpp's OpenAI-compatible server.

The server (`python -m llama_cpp.server`, from `llama-cpp-python[server]`, which `scripts/setup.sh`
builds once and caches as a wheel) serves the embedded SmolLM2 GGUF on a free loopback port with an
API key. The graph runs with the local weak model and the served strong model, exactly as a user
points it at OpenAI or a vLLM endpoint.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from servers import free_port, serve

from cowest_graph import create_cowest_graph, resolve_chat_model
from cowest_graph.critique import contains_match
from cowest_graph.graph import CowestRunError
from cowest_graph.models import WeakModel, embedded_gguf_path
from cowest_graph.tracing import CowestTracer

pytestmark = pytest.mark.slow
API_KEY = "sk-cowest-local-test"
ALIAS = "smollm2-served"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """(base_url, log path) of a running llama.cpp OpenAI-compatible server."""
    if importlib.util.find_spec("llama_cpp") is None:
        reason = "llama-cpp-python[server] is not installed (bash scripts/setup.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the OpenAI-server tests but {reason}")
        pytest.skip(reason)
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(embedded_gguf_path()),
        "--model_alias",
        ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--api_key",
        API_KEY,
        "--n_ctx",
        "2048",
        "--n_threads",
        "1",
    ]
    base_url = f"http://127.0.0.1:{port}/v1"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # the access log is read while it runs
    with serve(command, f"http://127.0.0.1:{port}/docs", log, env=env):
        yield base_url, log


def _requests(log: Path) -> int:
    return log.read_text().count("POST /v1/chat/completions")


def _chat_openai(base_url: str, api_key: str = API_KEY):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        base_url=base_url,
        api_key=api_key,  # type: ignore[arg-type]
        model=ALIAS,
        max_tokens=24,
        # ChatOpenAI sends `max_completion_tokens`, which llama-cpp-python ignores (its issue #1907)
        extra_body={"max_tokens": 24},
        temperature=0.0,
        timeout=120,
    )


def test_graph_with_a_served_strong_model_records_real_token_usage(
    served, weak: WeakModel, tmp_path: Path
) -> None:
    base_url, log = served
    before = _requests(log)
    tracer = CowestTracer(f"sqlite:///{tmp_path}/traces.db")
    graph = create_cowest_graph(weak, _chat_openai(base_url), scorer=contains_match, num_drafts=2).compile()
    out = graph.invoke(
        {"question": "What is the capital of France?", "reference": "Paris"}, config={"callbacks": [tracer]}
    )
    assert out["answer"].strip(), "the served strong model answered"
    assert len(out["candidates"]) == 2 and all(c["answer"].strip() for c in out["candidates"])
    assert _requests(log) - before == 2, "one HTTP chat completion per draft reached the server"
    # A second sync invoke: ChatOpenAI's async client is cached process-wide, so a node that called
    # it from a throwaway event loop failed here with "Event loop is closed" (fixed in graph.py).
    again = graph.invoke({"question": "Name a planet.", "reference": "Mars"}, config={"callbacks": [tracer]})
    assert all(c.get("error") is None and c["answer"].strip() for c in again["candidates"])

    summary = next(r for r in tracer.store.list_runs() if r.question.startswith("What is the capital"))
    rec = tracer.store.get_run(summary.run_id)
    assert rec["strong_model"] == ALIAS, "the model name the server reported is recorded"
    strong_calls = [c for n in rec["nodes"] for c in n["calls"] if c["role"] == "strong"]
    assert len(strong_calls) == 2
    drafts = [d["text"] for d in rec["drafts"]]
    for call in strong_calls:
        usage = call["usage"]
        sent = call["messages"][-1]["content"]
        mine = [d for d in drafts if d.strip()[:40] in sent]
        assert mine, "a draft reached the server"
        # The prompt holds the system prompt, the question and a whole draft: far more than 20 tokens.
        assert usage["input_tokens"] > 20 + min(len(d.split()) for d in mine) // 2, usage
        assert 0 < usage["output_tokens"] <= 24, usage
    assert rec["usage"]["strong"]["calls"] == 2
    assert rec["usage"]["strong"]["output_tokens"] == sum(c["usage"]["output_tokens"] for c in strong_calls)


def test_resolve_chat_model_reaches_the_endpoint_from_a_url(served, monkeypatch) -> None:
    base_url, log = served
    monkeypatch.setenv("COWEST_STRONG_MODEL", ALIAS)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    model = resolve_chat_model(base_url, max_tokens=8, temperature=0.0)
    reply = model.invoke("Say hello.")
    assert reply.text.strip()
    assert reply.usage_metadata and 0 < reply.usage_metadata["output_tokens"] <= 8
    assert reply.response_metadata.get("model_name") == ALIAS


def test_rejected_api_key_fails_once_without_retries(served, weak: WeakModel, tmp_path: Path) -> None:
    base_url, log = served
    before = _requests(log)
    tracer = CowestTracer(f"sqlite:///{tmp_path}/traces.db")
    bad = _chat_openai(base_url, api_key="sk-wrong")
    graph = create_cowest_graph(weak, bad, scorer=contains_match, num_drafts=2).compile()
    with pytest.raises(CowestRunError):
        graph.invoke({"question": "Name a planet.", "reference": "Mars"}, config={"callbacks": [tracer]})
    assert _requests(log) - before == 2, "an authentication error (401) is not transient: no retries"
    [summary] = tracer.store.list_runs()
    rec = tracer.store.get_run(summary.run_id)
    errors = [c.get("error") or "" for n in rec["nodes"] for c in n["calls"] if c["role"] == "strong"]
    assert len(errors) == 2 and all("AuthenticationError" in e for e in errors), errors
    assert len(rec["drafts"]) == 2, "the completed drafts of the failed run are kept"
