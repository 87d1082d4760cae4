from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402
from servers import required_service  # noqa: E402

from cowest_graph.models import WeakModel, load_weak_model  # noqa: E402


@pytest.fixture(scope="session")
def weak() -> WeakModel:
    """The real embedded SmolLM2-135M-Instruct on transformers (tests spy on its `generate`),
    loaded once, short generations."""
    return load_weak_model(backend="hf", max_new_tokens=16, temperature=0.8)


def postgres_url_or_skip() -> str:
    """The test PostgreSQL server; in CI its absence is a failure, elsewhere a skip."""
    return required_service(
        "COWEST_TEST_POSTGRES_URL", "a PostgreSQL server", "bash scripts/postgres.sh start"
    )


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh, empty trace store URL on each backend (a private schema on PostgreSQL)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/traces.db"
        return
    import uuid

    import psycopg

    base = postgres_url_or_skip()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield base + ("&" if "?" in base else "?") + f"options=-csearch_path%3D{schema}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
