"""`langgraph dev` serves the cowest graph; the official SDK drives it; the tracer records it."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest
from poisoned import random_adapter_version
from servers import free_port, serve

from cowest_graph.adapters import promote
from cowest_graph.store import open_trace_store

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    langgraph = shutil.which("langgraph", path=str(Path(sys.executable).parent))
    if langgraph is None:
        pytest.fail("langgraph-cli[inmem] is a dev dependency and must be installed")
    port = free_port()
    store = f"sqlite:///{tmp_path_factory.mktemp('studio')}/served.db"
    adapters = tmp_path_factory.mktemp("adapters")
    random_adapter_version(adapters, "v0001", 0)
    random_adapter_version(adapters, "v0002", 1)
    promote(adapters, "v0001")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "COWEST_STORE": store,
        "COWEST_WEAK_ADAPTER": str(adapters / "current"),
        "COWEST_MAX_NEW_TOKENS": "8",
        "COWEST_NUM_DRAFTS": "2",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGSMITH_TRACING": "false",
        "LANGCHAIN_TRACING_V2": "false",
    }
    log = tmp_path_factory.mktemp("log") / "server.log"
    command = [
        langgraph,
        "dev",
        "--no-browser",
        "--no-reload",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--config",
        str(ROOT / "langgraph.json"),
    ]
    url = f"http://127.0.0.1:{port}"
    with serve(command, f"{url}/ok", log, env=env, cwd=ROOT):
        yield url, store, log, adapters


async def test_served_graph_waits_streams_and_is_traced(server) -> None:
    from langgraph_sdk import get_client

    url, store, log, _ = server
    client = get_client(url=url)
    thread = await client.threads.create()
    result = await client.runs.wait(
        thread["thread_id"], "cowest", input={"question": "What is the capital of France?"}
    )
    assert isinstance(result, dict) and result.get("answer"), (
        f"no answer: {result}\n{log.read_text()[-3000:]}"
    )
    assert len(result["candidates"]) == 2 and result["messages"][-1]["type"] == "ai"

    updates: set[str] = set()
    custom: list[dict] = []
    thread2 = await client.threads.create()
    async for chunk in client.runs.stream(
        thread2["thread_id"],
        "cowest",
        input={"question": "Name a planet."},
        stream_mode=["updates", "custom"],
        stream_subgraphs=True,
    ):
        if chunk.event.startswith("updates") and isinstance(chunk.data, dict):
            updates.update(chunk.data)
        elif chunk.event.startswith("custom"):
            custom.append(chunk.data)
    assert {"weak_draft", "strong_refine", "critique"} <= updates, updates
    assert any(e.get("event") == "refining" for e in custom) and any(
        e.get("event") == "scored" for e in custom
    )

    deadline = time.time() + 20  # the server's tracer writes from its writer thread, off the loop
    while time.time() < deadline and open_trace_store(store).count() < 2:
        time.sleep(0.2)
    records = {r["question"]: r for r in open_trace_store(store).iter_runs()}
    assert {"What is the capital of France?", "Name a planet."} <= set(records)
    assert all(r["status"] == "success" and len(r["drafts"]) == 2 for r in records.values())
    assert "BlockingError" not in log.read_text(), "nothing blocked the server's event loop"


def _traced(store: str, question: str) -> dict:
    deadline = time.time() + 20  # written by the server's writer thread, off its event loop
    while time.time() < deadline:
        found = [r for r in open_trace_store(store).iter_runs() if r["question"] == question]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no trace of {question!r}")


async def test_the_server_drafts_with_a_newly_promoted_adapter_without_a_restart(server) -> None:
    # The server loaded its weak model with adapter=DIR/current. Promoting another version (as
    # `cowest-graph improve` does, from another process) reaches the next run, not a restart.
    from langgraph_sdk import get_client

    url, store, log, adapters = server
    client = get_client(url=url)
    for question, version in (("Which planet is red?", "v0001"), ("Which planet has rings?", "v0002")):
        promote(adapters, version)
        thread = await client.threads.create()
        result = await client.runs.wait(thread["thread_id"], "cowest", input={"question": question})
        assert result.get("answer"), f"no answer: {result}\n{log.read_text()[-3000:]}"
        record = _traced(store, question)
        assert {d["adapter_version"] for d in record["drafts"]} == {version}, record["drafts"]
        assert record["adapter_version"] == version
