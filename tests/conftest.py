from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402

from cowest_graph.models import WeakModel, load_weak_model  # noqa: E402


@pytest.fixture(scope="session")
def weak() -> WeakModel:
    """The real embedded SmolLM2-135M-Instruct, loaded once, short generations."""
    return load_weak_model(max_new_tokens=16, temperature=0.8)
