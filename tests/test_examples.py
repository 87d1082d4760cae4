"""Every example runs offline (short runs)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_quickstart() -> None:
    outs = load("quickstart").main(num_drafts=2, max_new_tokens=12)
    assert len(outs) == 2
    for out in outs:
        assert len(out["candidates"]) == 2 and out["answer"] == out["best"]["answer"]
        assert all(0.0 <= c["score"] <= 1.0 for c in out["candidates"])


def test_drop_in_agent() -> None:
    result = load("drop_in_agent").main(max_new_tokens=8)
    agent_reply = result["agent"]["messages"][-1].text
    tool_reply = next(m for m in result["agent"]["messages"] if m.type == "tool").text
    assert agent_reply == f"According to the experts: {tool_reply}"
    assert [m.type for m in result["parent"]["messages"]] == ["human", "ai"]


@pytest.mark.slow
def test_full_loop(tmp_path: Path) -> None:
    result = load("full_loop").main(tmp_path / "work", questions=4, dpo_steps=1)
    assert result["pairs"].pairs >= 1
    assert (
        result["adapter"].version == "v0001"
        and (result["adapter"].adapter_dir / "adapter_config.json").exists()
    )
    last = list(result["tracer"].store.iter_runs())[-1]
    assert last["adapter_version"] == "v0001", "the reloaded adapter drafted the last run"
